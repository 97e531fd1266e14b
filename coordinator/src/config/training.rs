//! `[training]`: the fitting algorithm and how updates are combined, the
//! checks of the training values, and the choice `algorithm = "auto"`
//! makes for a model.

use medfed_wire::Task;
use serde::Deserialize;

use super::ConfigError;
use super::file::TrainingSection;

/// How the model is fitted across the members.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    /// The closed form for linear models and Newton for the others while
    /// the (d+1)² matrix they exchange stays small
    /// ([`EXACT_MAX_PARAMETERS`] parameters), FedAvg beyond.
    Auto,
    /// Local gradient steps, updates averaged (McMahan et al., 2017).
    Fedavg,
    /// FedAvg with a proximal term `prox_mu` that keeps local models near the
    /// global one (Li et al., 2020).
    Fedprox,
    /// Federated Newton (logistic, Poisson): nodes send loss, gradient and Hessian
    /// sums; the coordinator takes damped Newton steps. Reaches the pooled
    /// optimum in a handful of rounds.
    Newton,
    /// Closed-form ridge regression (linear): one round of XᵀX and Xᵀy sums;
    /// exactly the pooled least-squares fit.
    ClosedForm,
}

/// Above this many parameters, `algorithm = "auto"` picks FedAvg: a Newton
/// or normal-equation round sends (d+1)(d+2)/2 numbers per node.
pub const EXACT_MAX_PARAMETERS: usize = 500;

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Algorithm::Auto => "auto",
            Algorithm::Fedavg => "fedavg",
            Algorithm::Fedprox => "fedprox",
            Algorithm::Newton => "newton",
            Algorithm::ClosedForm => "closed-form",
        })
    }
}

impl Algorithm {
    /// The resolved algorithm as a task announces it to the members
    /// (`"auto"` is resolved before a task is made, and stands for FedAvg
    /// only where it was not).
    pub fn announced(self) -> medfed_wire::TrainingAlgorithm {
        match self {
            Algorithm::Auto | Algorithm::Fedavg => medfed_wire::TrainingAlgorithm::Fedavg,
            Algorithm::Fedprox => medfed_wire::TrainingAlgorithm::Fedprox,
            Algorithm::Newton => medfed_wire::TrainingAlgorithm::Newton,
            Algorithm::ClosedForm => medfed_wire::TrainingAlgorithm::ClosedForm,
        }
    }
}

/// How a round's updates are combined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Aggregation {
    /// Mean weighted by row count (FedAvg).
    Fedavg,
    /// Coordinate-wise median (robust to a hostile minority).
    Median,
    /// Coordinate-wise trimmed mean, dropping `trim_fraction` at each end.
    TrimmedMean,
}

/// The checked quorum, trimmed-mean fraction, norm bounds and tolerance of
/// `[training]` for a task of `members` members; returns the quorum.
pub(super) fn check_training(
    training: &TrainingSection,
    members: usize,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<usize, ConfigError> {
    let quorum = training.quorum.unwrap_or(members);
    if !(1..=members).contains(&quorum) {
        return Err(invalid(
            "training.quorum",
            format!("{quorum} is out of range 1 to {members} (the number of members)"),
        ));
    }
    if medfed_aggregate::TrimmedMean::new(training.trim_fraction).is_err() {
        return Err(invalid(
            "training.trim_fraction",
            format!(
                "{} is out of range: expected 0 <= x < 0.5",
                training.trim_fraction
            ),
        ));
    }
    for (key, bound) in [
        ("training.clip_norm", training.clip_norm),
        ("training.max_update_norm", training.max_update_norm),
    ] {
        if let Some(bound) = bound
            && !(bound.is_finite() && bound > 0.0)
        {
            return Err(invalid(
                key,
                format!("{bound} is not allowed: expected a finite number > 0"),
            ));
        }
    }
    if !(training.tolerance.is_finite() && training.tolerance >= 0.0) {
        return Err(invalid(
            "training.tolerance",
            format!(
                "{} is not allowed: expected a finite number >= 0",
                training.tolerance
            ),
        ));
    }
    Ok(quorum)
}

/// The algorithm `training.algorithm` comes to for `task` (`"auto"`
/// resolved by the model's kind, size and differential privacy), refusing
/// one the model or DP rules out; then the checks of `prox_mu` and of the
/// aggregation the algorithm allows.
pub(super) fn resolve_algorithm(
    training: &TrainingSection,
    task: &Task,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Algorithm, ConfigError> {
    let exact_fits = task.dimension() <= EXACT_MAX_PARAMETERS;
    let dp = task.differential_privacy.is_some();
    let algorithm = match (training.algorithm, task.model) {
        // DP-FedAvg noises clipped model deltas; "auto" means FedAvg.
        (Algorithm::Auto, _) if dp => Algorithm::Fedavg,
        (Algorithm::Newton | Algorithm::ClosedForm, _) if dp => {
            return Err(invalid(
                "privacy.dp",
                format!(
                    "DP-FedAvg clips and noises model updates, but training.algorithm = \
                     \"{}\" exchanges Hessian or normal-equation sums, which are not \
                     clipped or noised: use \"fedavg\" or \"fedprox\" (or \"auto\")",
                    training.algorithm
                ),
            ));
        }
        // A family with a closed form is fitted in one round by it;
        // the others by Newton's method.
        (Algorithm::Auto, kind) if exact_fits && kind.has_closed_form() => Algorithm::ClosedForm,
        (Algorithm::Auto, _) if exact_fits => Algorithm::Newton,
        (Algorithm::Auto, _) => Algorithm::Fedavg,
        (Algorithm::Newton, kind) if kind.has_closed_form() => {
            return Err(invalid(
                "training.algorithm",
                format!(
                    "\"newton\" fits models without a closed form; a {kind} model has one: \
                     use \"closed-form\""
                ),
            ));
        }
        (Algorithm::ClosedForm, kind) if !kind.has_closed_form() => {
            return Err(invalid(
                "training.algorithm",
                format!(
                    "\"closed-form\" fits models with a closed form (linear); a {kind} model \
                     has none: use \"newton\""
                ),
            ));
        }
        (chosen, _) => chosen,
    };
    if algorithm == Algorithm::Fedprox && !(training.prox_mu.is_finite() && training.prox_mu > 0.0)
    {
        return Err(invalid(
            "training.prox_mu",
            format!(
                "{} is not allowed: expected a finite number > 0",
                training.prox_mu
            ),
        ));
    }
    let exact = matches!(algorithm, Algorithm::Newton | Algorithm::ClosedForm);
    if exact && training.aggregation != Aggregation::Fedavg {
        return Err(invalid(
            "training.aggregation",
            format!(
                "\"{algorithm}\" sums exact terms; median and trimmed mean apply to \
                 \"fedavg\" and \"fedprox\" updates only"
            ),
        ));
    }
    Ok(algorithm)
}
