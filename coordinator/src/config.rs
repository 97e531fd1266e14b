//! The operator's task file (TOML): what to train, on which members, how.
//!
//! Unknown keys are refused, and every value is checked before anything
//! starts, with an error that names the key and what is allowed.

use std::path::Path;
use std::time::Duration;

use medfed_model::{DEFAULT_SCORE_BINS, ModelKind};
use medfed_wire::Task;
use serde::Deserialize;

mod locate;

/// Why a task file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read task file {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a task (unknown key, wrong type...).
    #[error("{}: {}", at(path, *line, *column), keyed(key.as_deref(), message))]
    Parse {
        /// The file.
        path: String,
        /// Line of the problem, when the parser gives a position.
        line: Option<usize>,
        /// Column of the problem, when the parser gives a position.
        column: Option<usize>,
        /// The key concerned: a dotted path such as `training.rounds`, or
        /// for an unknown key the table it is in, such as `[training]`.
        key: Option<String>,
        /// What is wrong, with what is allowed.
        message: String,
    },
    /// A value is out of range.
    #[error("{}: {key}: {problem}", at(path, *line, None))]
    Invalid {
        /// The file.
        path: String,
        /// Line of the key (or of its table when the value is a default).
        line: Option<usize>,
        /// Dotted key.
        key: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
}

/// `key: message`, or `[table] unknown key ...` for an unknown key.
fn keyed(key: Option<&str>, message: &str) -> String {
    match key {
        Some(table) if message.starts_with("unknown key") => format!("{table} {message}"),
        Some(key) => format!("{key}: {message}"),
        None => message.to_owned(),
    }
}

/// `file, line L, column C` with what is known.
fn at(path: &str, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{path}, line {line}, column {column}"),
        (Some(line), None) => format!("{path}, line {line}"),
        _ => path.to_owned(),
    }
}

/// The task file as written by the operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskFile {
    task: TaskSection,
    /// Per-feature preprocessing; features not listed are standardised and
    /// their missing values filled with the global mean.
    #[serde(default)]
    columns: Vec<medfed_model::ColumnSpec>,
    #[serde(default)]
    training: TrainingSection,
    #[serde(default)]
    evaluation: EvaluationSection,
    #[serde(default)]
    timeouts: TimeoutSection,
    #[serde(default)]
    privacy: PrivacySection,
}

/// `[privacy]`: how members' contributions are protected beyond TLS.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct PrivacySection {
    /// Mask every training update so the coordinator learns only the sum
    /// (Bonawitz et al., CCS 2017).
    secure_aggregation: bool,
    /// Shares that rebuild a secret and the fewest members every stage
    /// needs; default ⌊n/2⌋ + 1.
    threshold: Option<u32>,
    /// Fractional bits of the fixed-point encoding; default 24.
    fixed_point_bits: Option<u32>,
    /// What a training round that cannot be summed does: `"stop"` the run
    /// (default) or `"skip"` the round, keeping the model, and go on.
    failed_round: Option<FailedRound>,
    /// `[privacy.dp]`: DP-FedAvg on the training rounds.
    dp: Option<DpSection>,
}

/// What a securely aggregated training round that cannot be summed (fewer
/// than the threshold survive a stage, or the sum is refused) does to the
/// run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailedRound {
    /// The run stops with an error and writes no model (the checkpoint
    /// keeps the last completed round).
    #[default]
    Stop,
    /// The round is recorded as failed, the model stays as it was, and
    /// training goes on with the next round (members that come back take
    /// part again).
    Skip,
}

/// `[privacy.dp]`: DP-FedAvg (McMahan et al., ICLR 2018).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DpSection {
    /// The noise multiplier σ: noise of standard deviation σ·C protects the
    /// sum of clipped updates.
    noise_multiplier: f64,
    /// The L2 norm C every site clips its round update to.
    clip_norm: f64,
}

/// The δ at which `coordinator config check` states the ε a whole run
/// costs a site (each site holds its own budget and δ).
pub const REFERENCE_DELTA: f64 = 1e-5;

/// Default fractional bits of the secure-aggregation fixed point: a
/// precision of 2^-24 (6e-8) per value, and room for values up to about
/// 2^39 / n for n members.
pub const DEFAULT_FIXED_POINT_BITS: u32 = 24;

/// The default secure-aggregation threshold for `members` members:
/// ⌊n/2⌋ + 1, the smallest that keeps the protocol's guarantee (a
/// coordinator that tells members different dropped sets can never gather
/// enough shares of both secrets of one member), and so the one that
/// survives the most dropouts.
pub fn default_threshold(members: usize) -> u32 {
    (members / 2 + 1) as u32
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskSection {
    id: String,
    members: Vec<String>,
    model: ModelKind,
    features: Vec<String>,
    target: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TrainingSection {
    rounds: u32,
    local_steps: u32,
    learning_rate: f64,
    l2: f64,
    algorithm: Algorithm,
    prox_mu: f64,
    tolerance: f64,
    aggregation: Aggregation,
    trim_fraction: f64,
    clip_norm: Option<f64>,
    max_update_norm: Option<f64>,
    quorum: Option<usize>,
}

impl Default for TrainingSection {
    fn default() -> Self {
        TrainingSection {
            rounds: 20,
            local_steps: 5,
            learning_rate: 0.5,
            l2: 0.0,
            algorithm: Algorithm::Auto,
            prox_mu: 0.01,
            tolerance: 1e-8,
            aggregation: Aggregation::Fedavg,
            trim_fraction: 0.1,
            clip_norm: None,
            max_update_norm: None,
            quorum: None,
        }
    }
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct EvaluationSection {
    holdout_fraction: f64,
    split_seed: u64,
    score_bins: u32,
    baselines: bool,
    every_rounds: u32,
}

impl Default for EvaluationSection {
    fn default() -> Self {
        EvaluationSection {
            holdout_fraction: 0.25,
            split_seed: 1,
            score_bins: DEFAULT_SCORE_BINS as u32,
            baselines: false,
            every_rounds: 1,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct TimeoutSection {
    join_seconds: u64,
    step_seconds: u64,
}

impl Default for TimeoutSection {
    fn default() -> Self {
        TimeoutSection {
            join_seconds: 300,
            step_seconds: 300,
        }
    }
}

/// A checked task configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskConfig {
    /// The task as sent to members.
    pub task: Task,
    /// Also train each site alone and compare.
    pub baselines: bool,
    /// How long to wait for every member to join.
    pub join_timeout: Duration,
    /// How long to wait for every answer to one step: after this deadline a
    /// step closes if at least `quorum` members answered.
    pub step_timeout: Duration,
    /// Fewest answers a step may close with at its deadline.
    pub quorum: usize,
    /// How updates are combined.
    pub aggregation: Aggregation,
    /// Share dropped at each end by the trimmed mean.
    pub trim_fraction: f64,
    /// Updates longer than this are scaled down to it before combining.
    pub clip_norm: Option<f64>,
    /// Updates longer than this are refused outright.
    pub max_update_norm: Option<f64>,
    /// The fitting algorithm (never `Auto`: resolved when the file is read).
    pub algorithm: Algorithm,
    /// FedProx proximal weight (0 unless the algorithm is FedProx).
    pub prox_mu: f64,
    /// Training stops early when the largest parameter change of a round,
    /// or the gradient norm (Newton), falls below this, or the relative
    /// change of the objective below a hundredth of it.
    pub tolerance: f64,
    /// Score the round's model on the held-out rows every this many rounds
    /// (0: only after training).
    pub evaluate_every: u32,
    /// Under secure aggregation: what a training round that cannot be
    /// summed does to the run.
    pub failed_round: FailedRound,
}

impl TaskConfig {
    /// The aggregation strategy this configuration asks for.
    ///
    /// # Errors
    /// A `trim_fraction` or `clip_norm` out of range (checked already when
    /// the configuration comes from a task file), naming the key.
    pub fn strategy(&self) -> Result<Box<dyn medfed_aggregate::Strategy>, ConfigError> {
        use medfed_aggregate::{FedAvg, Median, NormClip, Strategy, TrimmedMean};
        let invalid = |key: &str, value: f64| ConfigError::Invalid {
            path: "(task)".into(),
            line: None,
            key: key.into(),
            problem: format!("{value} is out of range"),
        };
        let clipped = |s: Box<dyn Strategy>| -> Result<Box<dyn Strategy>, ConfigError> {
            match self.clip_norm {
                Some(c) => NormClip::new(s, c)
                    .map(|clipping| Box::new(clipping) as Box<dyn Strategy>)
                    .map_err(|v| invalid("training.clip_norm", v)),
                None => Ok(s),
            }
        };
        match self.aggregation {
            Aggregation::Fedavg => clipped(Box::new(FedAvg)),
            Aggregation::Median => clipped(Box::new(Median)),
            Aggregation::TrimmedMean => clipped(Box::new(
                TrimmedMean::new(self.trim_fraction)
                    .map_err(|v| invalid("training.trim_fraction", v))?,
            )),
        }
    }
}

impl TaskConfig {
    /// Reads and checks a task file.
    ///
    /// # Errors
    /// The file is unreadable, not TOML, has an unknown key, or a value out of
    /// range; the error names the file and the key.
    pub fn load(path: &Path) -> Result<TaskConfig, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and checks task-file text; `path` is only used in errors.
    ///
    /// # Errors
    /// See [`TaskConfig::load`].
    pub fn parse(text: &str, path: &str) -> Result<TaskConfig, ConfigError> {
        let file: TaskFile = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            line: locate::line_of(text, key),
            key: key.to_owned(),
            problem,
        };
        let TaskFile {
            task,
            columns: specs,
            training,
            evaluation,
            timeouts,
            privacy,
        } = file;
        for (i, spec) in specs.iter().enumerate() {
            if !task.features.contains(&spec.name) {
                return Err(invalid(
                    &format!("columns[{i}].name"),
                    format!("{:?} is not one of task.features", spec.name),
                ));
            }
            if specs[..i].iter().any(|s| s.name == spec.name) {
                return Err(invalid(
                    &format!("columns[{i}].name"),
                    format!("{:?} is specified twice", spec.name),
                ));
            }
            spec.validate()
                .map_err(|e| invalid(&format!("columns[{i}] ({})", spec.name), e.to_string()))?;
        }
        let columns: Vec<medfed_model::ColumnSpec> = task
            .features
            .iter()
            .map(|f| {
                specs
                    .iter()
                    .find(|s| &s.name == f)
                    .cloned()
                    .unwrap_or_else(|| medfed_model::ColumnSpec::numeric(f.clone()))
            })
            .collect();
        for (key, names) in [
            ("task.members", &task.members),
            ("task.features", &task.features),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(invalid(key, format!("lists {dup:?} twice")));
            }
        }
        for (key, seconds) in [
            ("timeouts.join_seconds", timeouts.join_seconds),
            ("timeouts.step_seconds", timeouts.step_seconds),
        ] {
            if !(1..=86_400).contains(&seconds) {
                return Err(invalid(
                    key,
                    format!("{seconds} is out of range 1 to 86400"),
                ));
            }
        }
        let secure_aggregation = privacy_settings(&privacy, task.members.len(), &invalid)?;
        let differential_privacy = dp_settings(&privacy, &invalid)?;
        let task = Task {
            task_id: task.id,
            features: task.features,
            columns,
            target: task.target,
            model: task.model,
            l2: training.l2,
            local_steps: training.local_steps,
            learning_rate: training.learning_rate,
            holdout_fraction: evaluation.holdout_fraction,
            split_seed: evaluation.split_seed,
            rounds: training.rounds,
            score_bins: evaluation.score_bins,
            members: task.members,
            secure_aggregation,
            differential_privacy,
        };
        medfed_wire::convert::validate_task(&task)
            .map_err(|e| invalid(&file_key(e.field().unwrap_or("task")), e.to_string()))?;
        let members = task.members.len();
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
        let exact_fits = task.dimension() <= EXACT_MAX_PARAMETERS;
        let secure = task.secure_aggregation.is_some();
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
            (Algorithm::Auto, kind) if exact_fits && kind.has_closed_form() => {
                Algorithm::ClosedForm
            }
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
        if algorithm == Algorithm::Fedprox
            && !(training.prox_mu.is_finite() && training.prox_mu > 0.0)
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
        if dp {
            let refused =
                |key: &str, problem: &str| invalid(key, format!("{problem} (privacy.dp is set)"));
            if training.aggregation != Aggregation::Fedavg {
                return Err(refused(
                    "training.aggregation",
                    &format!(
                        "\"{}\" is not covered by DP-FedAvg's guarantee, which needs the \
                         plain sum of clipped updates: use \"fedavg\"",
                        format!("{:?}", training.aggregation).to_lowercase()
                    ),
                ));
            }
            if training.clip_norm.is_some() {
                return Err(refused(
                    "training.clip_norm",
                    "every site clips its own update to privacy.dp.clip_norm; remove \
                     training.clip_norm",
                ));
            }
            if evaluation.baselines {
                return Err(refused(
                    "evaluation.baselines",
                    "site-alone models are released without clipping or noise, outside the \
                     privacy budget: set evaluation.baselines = false",
                ));
            }
        }
        if secure {
            let refused = |key: &str, what: &str| {
                invalid(
                    key,
                    format!(
                        "{what} needs every member's update in clear; with \
                         privacy.secure_aggregation = true the coordinator sees only their sum"
                    ),
                )
            };
            if training.aggregation != Aggregation::Fedavg {
                return Err(refused(
                    "training.aggregation",
                    &format!("\"{:?}\"", training.aggregation).to_lowercase(),
                ));
            }
            if training.clip_norm.is_some() {
                return Err(refused("training.clip_norm", "clipping at the coordinator"));
            }
            if training.max_update_norm.is_some() {
                return Err(refused(
                    "training.max_update_norm",
                    "refusing long updates at the coordinator",
                ));
            }
            if privacy.failed_round == Some(FailedRound::Skip)
                && !matches!(algorithm, Algorithm::Fedavg | Algorithm::Fedprox)
            {
                return Err(invalid(
                    "privacy.failed_round",
                    format!(
                        "\"skip\" applies to \"fedavg\" and \"fedprox\" rounds; a {} step \
                         that cannot be summed stops the run",
                        algorithm
                    ),
                ));
            }
            if evaluation.baselines {
                return Err(invalid(
                    "evaluation.baselines",
                    "a site-alone model is one site's model, sent in clear; with \
                     privacy.secure_aggregation = true the coordinator sees only sums over the \
                     sites: set evaluation.baselines = false"
                        .into(),
                ));
            }
        }
        Ok(TaskConfig {
            algorithm,
            prox_mu: if algorithm == Algorithm::Fedprox {
                training.prox_mu
            } else {
                0.0
            },
            tolerance: training.tolerance,
            evaluate_every: evaluation.every_rounds,
            failed_round: privacy.failed_round.unwrap_or_default(),
            task,
            baselines: evaluation.baselines,
            join_timeout: Duration::from_secs(timeouts.join_seconds),
            step_timeout: Duration::from_secs(timeouts.step_seconds),
            quorum,
            aggregation: training.aggregation,
            trim_fraction: training.trim_fraction,
            clip_norm: training.clip_norm,
            max_update_norm: training.max_update_norm,
        })
    }
}

/// The checked `[privacy.dp]` settings (`None`: DP off).
fn dp_settings(
    privacy: &PrivacySection,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<medfed_wire::DifferentialPrivacy>, ConfigError> {
    let Some(dp) = &privacy.dp else {
        return Ok(None);
    };
    for (key, value) in [
        ("privacy.dp.noise_multiplier", dp.noise_multiplier),
        ("privacy.dp.clip_norm", dp.clip_norm),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(invalid(
                key,
                format!("{value} is not allowed: expected a finite number > 0"),
            ));
        }
    }
    Ok(Some(medfed_wire::DifferentialPrivacy {
        noise_multiplier: dp.noise_multiplier,
        clip_norm: dp.clip_norm,
    }))
}

/// The checked `[privacy]` settings for `members` members (`None`: secure
/// aggregation off).
fn privacy_settings(
    privacy: &PrivacySection,
    members: usize,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<medfed_wire::SecureAggregation>, ConfigError> {
    if !privacy.secure_aggregation {
        for (key, set) in [
            ("privacy.threshold", privacy.threshold.is_some()),
            (
                "privacy.fixed_point_bits",
                privacy.fixed_point_bits.is_some(),
            ),
            ("privacy.failed_round", privacy.failed_round.is_some()),
        ] {
            if set {
                return Err(invalid(
                    key,
                    "applies to secure aggregation only: set privacy.secure_aggregation = true"
                        .into(),
                ));
            }
        }
        return Ok(None);
    }
    if members < 2 {
        return Err(invalid(
            "privacy.secure_aggregation",
            format!("needs at least 2 members, the task has {members}"),
        ));
    }
    let threshold = privacy
        .threshold
        .unwrap_or_else(|| default_threshold(members));
    let t = threshold as usize;
    if t * 2 <= members || t > members {
        return Err(invalid(
            "privacy.threshold",
            format!(
                "{threshold} is out of range for {members} members: expected more than half \
                 and at most all ({} to {members})",
                members / 2 + 1
            ),
        ));
    }
    let fixed_point_bits = privacy.fixed_point_bits.unwrap_or(DEFAULT_FIXED_POINT_BITS);
    let max = medfed_secure::secagg::FixedPoint::MAX_FRAC_BITS;
    if !(1..=max).contains(&fixed_point_bits) {
        return Err(invalid(
            "privacy.fixed_point_bits",
            format!("{fixed_point_bits} is out of range 1 to {max}"),
        ));
    }
    Ok(Some(medfed_wire::SecureAggregation {
        threshold,
        fixed_point_bits,
    }))
}

impl TaskConfig {
    /// What the task defines, in a few lines (for `coordinator config
    /// check`): members and quorum, model and features, algorithm and
    /// rounds, evaluation, timeouts.
    pub fn summary(&self) -> String {
        let t = &self.task;
        let own: Vec<&str> = t
            .columns
            .iter()
            .filter(|c| **c != medfed_model::ColumnSpec::numeric(c.name.clone()))
            .map(|c| c.name.as_str())
            .collect();
        let mut out = format!(
            "  members     {} (quorum {})\n",
            t.members.join(", "),
            self.quorum
        );
        out.push_str(&format!(
            "  model       {}, target {}, {} features, {} parameters\n",
            t.model,
            t.target,
            t.features.len(),
            t.dimension()
        ));
        out.push_str(&format!(
            "  columns     {}\n",
            if own.is_empty() {
                "every feature standardised, missing values filled with the mean".to_owned()
            } else {
                format!("own preprocessing for {}", own.join(", "))
            }
        ));
        out.push_str(&format!(
            "  algorithm   {}, aggregation {}, at most {} rounds, l2 {}, tolerance {:e}\n",
            self.algorithm,
            match self.aggregation {
                Aggregation::Fedavg => "fedavg",
                Aggregation::Median => "median",
                Aggregation::TrimmedMean => "trimmed-mean",
            },
            t.rounds,
            t.l2,
            self.tolerance
        ));
        out.push_str(&format!(
            "  evaluation  {}% of each site's rows held out (seed {}), {}, baselines {}\n",
            t.holdout_fraction * 100.0,
            t.split_seed,
            match self.evaluate_every {
                0 => "after training only".to_owned(),
                1 => "every round".to_owned(),
                n => format!("every {n} rounds"),
            },
            if self.baselines { "on" } else { "off" }
        ));
        out.push_str(&format!(
            "  timeouts    join {} s, each step {} s\n",
            self.join_timeout.as_secs(),
            self.step_timeout.as_secs()
        ));
        if let Some(secure) = &t.secure_aggregation {
            out.push_str(&format!(
                "  privacy     secure aggregation, threshold {} of {}, {} fixed-point bits; a \
                 round that cannot be summed {}\n",
                secure.threshold,
                t.members.len(),
                secure.fixed_point_bits,
                match self.failed_round {
                    FailedRound::Stop => "stops the run",
                    FailedRound::Skip => "is skipped, the model kept",
                }
            ));
        }
        if let Some(dp) = t.dp_config() {
            out.push_str(&format!(
                "  privacy     DP-FedAvg, σ = {}, C = {}, {}; {}\n",
                dp.noise_multiplier(),
                dp.clip_norm(),
                match dp.placement() {
                    medfed_secure::dp::NoisePlacement::Central =>
                        "central noise (the coordinator adds it and is trusted)",
                    _ => "local noise (each site adds its share under secure aggregation)",
                },
                reference_cost(dp.noise_multiplier(), t.rounds)
            ));
        }
        out
    }
}

/// What `rounds` rounds at `noise_multiplier` cost a site at
/// [`REFERENCE_DELTA`], by the accountant and the exact analysis.
pub fn reference_cost(noise_multiplier: f64, rounds: u32) -> String {
    let Ok(budget) = medfed_secure::dp::Budget::new(f64::MAX, REFERENCE_DELTA) else {
        return String::new();
    };
    let mut accountant = medfed_secure::dp::Accountant::new(budget);
    for _ in 0..rounds {
        if accountant
            .try_spend(noise_multiplier, |_| Ok::<(), std::io::Error>(()))
            .is_err()
        {
            return String::new();
        }
    }
    format!(
        "all {rounds} rounds cost each site ε = {:.3} at δ = {REFERENCE_DELTA:e} (exact analysis: \
         ε = {:.3}); each site's own budget decides how many it takes part in",
        accountant.spent().epsilon,
        accountant.exact_epsilon()
    )
}

/// A TOML or serde error, placed: the line and column, and the key (for an
/// unknown key, the table it is in).
fn parse_error(text: &str, path: &str, error: &toml::de::Error) -> ConfigError {
    let offset = error.span().map(|span| span.start);
    let (line, column) = match offset {
        Some(offset) => {
            let (line, column) = locate::line_column(text, offset);
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    let message = locate::reword(error.message());
    let key = offset.and_then(|offset| locate::key_at(text, offset));
    let key = if message.starts_with("unknown key") {
        // The key itself is in the message; name the table it is in.
        Some(match key.as_deref().and_then(|k| k.rsplit_once('.')) {
            Some((table, _)) => format!("[{table}]"),
            None => "top level".to_owned(),
        })
    } else {
        key
    };
    ConfigError::Parse {
        path: path.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// Maps a wire field path (`task.rounds`) to its key in the task file.
fn file_key(wire: &str) -> String {
    let field = wire.trim_start_matches("task.");
    let field = field.split('[').next().unwrap_or(field);
    let section = match field {
        "rounds" | "local_steps" | "learning_rate" | "l2" => "training",
        "holdout_fraction" | "split_seed" | "score_bins" => "evaluation",
        "task_id" => return "task.id".into(),
        _ => "task",
    };
    format!("{section}.{field}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[task]
id = "t"
members = ["a", "b"]
model = "logistic"
features = ["x1", "x2"]
target = "y"

[training]
rounds = 3
"#;

    #[test]
    fn good_file_parses_with_defaults() {
        let config = TaskConfig::parse(GOOD, "task.toml").unwrap();
        assert_eq!(config.task.rounds, 3);
        assert_eq!(config.task.local_steps, 5);
        assert_eq!(config.task.dimension(), 3);
        assert!(!config.baselines);
    }

    fn error_of(text: &str) -> String {
        TaskConfig::parse(text, "task.toml")
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn unknown_key_is_named() {
        let err = error_of(&format!("{GOOD}\nrounds_typo = 4\n"));
        assert!(err.contains("rounds_typo"), "{err}");
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let err = error_of(&GOOD.replace("rounds = 3", "rounds = 0"));
        assert!(err.contains("training.rounds"), "{err}");
        let err = error_of(&format!("{GOOD}learning_rate = -1.0\n"));
        assert!(err.contains("training.learning_rate"), "{err}");
        let err = error_of(&GOOD.replace(r#"["x1", "x2"]"#, r#"["x1", "y"]"#));
        assert!(err.contains("task.features"), "{err}");
        let err = error_of(&GOOD.replace(r#"["a", "b"]"#, r#"["a", "a"]"#));
        assert!(
            err.contains("task.members") && err.contains("twice"),
            "{err}"
        );
        let err = error_of(&GOOD.replace("logistic", "forest"));
        assert!(err.contains("forest"), "{err}");
        let err = error_of(&format!("{GOOD}quorum = 3\n"));
        assert!(
            err.contains("training.quorum") && err.contains("1 to 2"),
            "{err}"
        );
        let err = error_of(&format!("{GOOD}trim_fraction = 0.5\n"));
        assert!(err.contains("training.trim_fraction"), "{err}");
        let err = error_of(&format!("{GOOD}clip_norm = 0.0\n"));
        assert!(err.contains("training.clip_norm"), "{err}");
        let err = error_of(&format!("{GOOD}aggregation = \"mean\"\n"));
        assert!(err.contains("mean") && err.contains("median"), "{err}");
    }

    #[test]
    fn dp_settings_are_checked_and_named() {
        let dp = "\n[privacy.dp]\nnoise_multiplier = 1.0\nclip_norm = 0.5\n";
        let config = TaskConfig::parse(&format!("{GOOD}{dp}"), "task.toml").expect("valid");
        let settings = config.task.differential_privacy.expect("on");
        assert_eq!(settings.noise_multiplier, 1.0);
        assert_eq!(config.algorithm, Algorithm::Fedavg);
        assert!(
            config.summary().contains("central noise (the coordinator"),
            "{}",
            config.summary()
        );
        let err = error_of(&format!(
            "{GOOD}\n[privacy.dp]\nnoise_multiplier = 0.0\nclip_norm = 0.5\n"
        ));
        assert!(err.contains("privacy.dp.noise_multiplier"), "{err}");
        let err = error_of(&format!("{GOOD}\n[privacy.dp]\nnoise_multiplier = 1.0\n"));
        assert!(err.contains("clip_norm"), "{err}");
        let newton = GOOD.replace("[training]", "[training]\nalgorithm = \"newton\"");
        let err = error_of(&format!("{newton}{dp}"));
        assert!(
            err.contains("privacy.dp") && err.contains("newton"),
            "{err}"
        );
        let median = GOOD.replace("[training]", "[training]\naggregation = \"median\"");
        let err = error_of(&format!("{median}{dp}"));
        assert!(err.contains("training.aggregation"), "{err}");
    }

    #[test]
    fn secure_aggregation_settings_are_checked_and_named() {
        let five = GOOD.replace(r#"["a", "b"]"#, r#"["a", "b", "c", "d", "e"]"#);
        let on = format!("{five}\n[privacy]\nsecure_aggregation = true\n");
        let config = TaskConfig::parse(&on, "task.toml").unwrap();
        let settings = config.task.secure_aggregation.expect("on");
        assert_eq!(settings.threshold, 3);
        assert_eq!(settings.fixed_point_bits, DEFAULT_FIXED_POINT_BITS);
        // "auto" picks Newton for a small logistic model, as without
        // secure aggregation: its terms are masked like updates.
        assert_eq!(config.algorithm, Algorithm::Newton);
        for bad in ["threshold = 2", "threshold = 6"] {
            let err = error_of(&format!("{on}{bad}\n"));
            assert!(
                err.contains("privacy.threshold") && err.contains("3 to 5"),
                "{err}"
            );
        }
        let err = error_of(&format!("{on}fixed_point_bits = 60\n"));
        assert!(err.contains("privacy.fixed_point_bits"), "{err}");
        let err = error_of(&format!("{five}\n[privacy]\nthreshold = 3\n"));
        assert!(err.contains("privacy.threshold"), "{err}");
        assert_eq!(config.failed_round, FailedRound::Stop);
        let fedavg = on.replace("rounds = 3", "rounds = 3\nalgorithm = \"fedavg\"");
        let skip =
            TaskConfig::parse(&format!("{fedavg}failed_round = \"skip\"\n"), "task.toml").unwrap();
        assert_eq!(skip.failed_round, FailedRound::Skip);
        // "auto" picks Newton here.
        let err = error_of(&format!("{on}failed_round = \"skip\"\n"));
        assert!(err.contains("privacy.failed_round"), "{err}");
        let err = error_of(&format!("{on}failed_round = \"retry\"\n"));
        assert!(err.contains("failed_round"), "{err}");
        let err = error_of(&format!("{five}\n[privacy]\nfailed_round = \"skip\"\n"));
        assert!(err.contains("privacy.failed_round"), "{err}");
        let newton = on.replace("rounds = 3", "rounds = 3\nalgorithm = \"newton\"");
        let config = TaskConfig::parse(&newton, "task.toml").unwrap();
        assert_eq!(config.algorithm, Algorithm::Newton);
        let linear = on.replace("logistic", "linear");
        let config = TaskConfig::parse(&linear, "task.toml").unwrap();
        assert_eq!(config.algorithm, Algorithm::ClosedForm);
        let err = error_of(&on.replace("rounds = 3", "rounds = 3\naggregation = \"median\""));
        assert!(err.contains("training.aggregation"), "{err}");
        let err = error_of(&on.replace("rounds = 3", "rounds = 3\nclip_norm = 1.0"));
        assert!(err.contains("training.clip_norm"), "{err}");
        // Site-alone models are each one site's: not with secure
        // aggregation.
        let err = error_of(&format!(
            "{five}\n[evaluation]\nbaselines = true\n[privacy]\nsecure_aggregation = true\n"
        ));
        assert!(err.contains("evaluation.baselines"), "{err}");
    }

    #[test]
    fn errors_carry_the_line_and_the_key() {
        // GOOD: [task] on line 2, [training] on line 9, rounds on line 10.
        let err = error_of(&format!("{GOOD}roundz = 4\n"));
        assert!(
            err.starts_with(
                "task.toml, line 11, column 1: [training] unknown key `roundz`; allowed: rounds, "
            ),
            "{err}"
        );
        let err = error_of(&format!("colour = 1\n{GOOD}"));
        assert!(
            err.starts_with(
                "task.toml, line 1, column 1: top level unknown key `colour`; allowed: task, "
            ),
            "{err}"
        );
        let err = error_of(&GOOD.replace("rounds = 3", "rounds = \"3\""));
        assert!(
            err.starts_with("task.toml, line 10, column 10: training.rounds: invalid type"),
            "{err}"
        );
        let err = error_of(&GOOD.replace("rounds = 3", "rounds = 0"));
        assert!(
            err.starts_with("task.toml, line 10: training.rounds: "),
            "{err}"
        );
        let err = error_of(&format!("{GOOD}quorum = 3\n"));
        assert!(
            err.starts_with("task.toml, line 11: training.quorum: "),
            "{err}"
        );
        let err = error_of(&format!(
            "{GOOD}\n[[columns]]\nname = \"x1\"\n\n[[columns]]\nname = \"x9\"\n"
        ));
        assert!(
            err.starts_with("task.toml, line 16: columns[1].name: "),
            "{err}"
        );
        let err = error_of(&format!(
            "{GOOD}\n[[columns]]\nname = \"x1\"\ntransfrom = \"none\"\n"
        ));
        assert!(
            err.starts_with("task.toml, line 14, column 1: [columns[0]] unknown key `transfrom`"),
            "{err}"
        );
    }

    #[test]
    fn the_summary_names_what_the_task_defines() {
        let config = TaskConfig::parse(GOOD, "task.toml").unwrap();
        let summary = config.summary();
        assert!(summary.contains("members     a, b (quorum 2)"), "{summary}");
        assert!(
            summary.contains("logistic, target y, 2 features, 3 parameters"),
            "{summary}"
        );
        assert!(summary.contains("newton"), "{summary}");
        assert!(summary.contains("at most 3 rounds"), "{summary}");
    }

    #[test]
    fn a_hand_built_config_with_a_bad_trim_is_an_error_not_a_panic() {
        let mut config = TaskConfig::parse(GOOD, "task.toml").unwrap();
        config.aggregation = Aggregation::TrimmedMean;
        assert!(config.strategy().is_ok());
        config.trim_fraction = 0.7;
        let err = config.strategy().err().expect("refused").to_string();
        assert!(err.contains("training.trim_fraction"), "{err}");
        config.trim_fraction = 0.1;
        config.clip_norm = Some(-1.0);
        let err = config.strategy().err().expect("refused").to_string();
        assert!(err.contains("training.clip_norm"), "{err}");
    }
}
