//! The training rounds under secure aggregation: a FedAvg/FedProx round, a
//! Newton round or the normal equations, each one [`secure_sum`] of the
//! members' masked vectors, decoded and checked against the rows the
//! members declared (a wrong sum is an error, never a model).

use std::collections::BTreeSet;
use std::sync::Arc;

use medfed_model::{FittedPreprocessor, NewtonTerms, NormalTerms};
use medfed_wire::{EvaluationCounts, Instruction, SecureAggregation};
use ndarray::Array1;

use crate::config::TaskConfig;
use crate::run_error::RunError;
use crate::secure_sum::{SecureSum, secure_sum};
use crate::state::Shared;
use crate::step::StepCounter;

/// What a securely aggregated FedAvg/FedProx round produced.
pub struct RoundSum {
    /// The row-weighted mean update of the survivors.
    pub delta: Array1<f64>,
    /// Members whose masked input is in the sum.
    pub contributors: usize,
    /// Members that are not.
    pub missing: Vec<String>,
    /// Row-weighted mean training loss of the round's starting model.
    pub train_loss: f64,
    /// Held-out counts of the round's model over all survivors' rows (when
    /// asked).
    pub evaluation: Option<EvaluationCounts>,
}

/// The round's training instruction, as stage 0 carries it.
pub struct TrainSpec<'a> {
    /// 1-based round number.
    pub round: u32,
    /// The round's global model.
    pub global: &'a Array1<f64>,
    /// The global preprocessing.
    pub preprocessing: &'a FittedPreprocessor,
    /// FedProx weight (0 for FedAvg).
    pub prox_mu: f64,
    /// Also score the global model on the held-out rows.
    pub evaluate: bool,
}

/// Runs one securely aggregated FedAvg/FedProx round.
///
/// # Errors
/// As [`secure_sum`], and a decoded row count that differs from the
/// survivors' declared rows (a wrong sum is an error, never a model).
pub async fn secure_round(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    train: TrainSpec<'_>,
) -> Result<RoundSum, RunError> {
    let round = train.round;
    let step = format!("round {round}");
    let work = Instruction::Train {
        round,
        global: train.global.clone(),
        preprocessing: train.preprocessing.clone(),
        prox_mu: train.prox_mu,
        evaluate: train.evaluate,
    };
    let SecureSum {
        sum,
        survivors,
        missing,
        evaluation,
    } = secure_sum(shared, config, settings, steps, work).await?;
    let failed = |reason: String| RunError::SecureAggregation {
        step: step.clone(),
        reason,
    };
    let dimension = shared.task.dimension();
    let rows = sum[dimension];
    if shared.task.differential_privacy.is_some() {
        // DP: each member masks [clipped and noised update..., 1, 0], so
        // the sum weighs members equally and the count must come out as
        // the number of survivors (which is public).
        let count = survivors.len() as f64;
        if (rows - count).abs() > 0.5 {
            return Err(failed(format!(
                "the unmasked contributor count {rows} is not the {count} survivors: the sum \
                 is wrong and no model is made from it"
            )));
        }
        let delta = Array1::from_iter(sum[..dimension].iter().map(|v| v / count));
        return Ok(RoundSum {
            delta,
            contributors: survivors.len(),
            missing,
            // Not released in DP rounds: data-dependent and not covered.
            train_loss: f64::NAN,
            evaluation,
        });
    }
    // The row count travels masked with the update: it must come out as
    // the survivors' declared rows, or the sum is wrong and is refused.
    check_rows(shared, round, &survivors, rows)?;
    let delta = Array1::from_iter(sum[..dimension].iter().map(|v| v / rows));
    let train_loss = sum[dimension + 1] / rows;
    Ok(RoundSum {
        delta,
        contributors: survivors.len(),
        missing,
        train_loss,
        evaluation,
    })
}

/// Runs one securely aggregated Newton round at `params` and returns the
/// pooled terms with the step's survivors.
///
/// # Errors
/// As [`secure_sum`], terms that cannot come from real rows, and a decoded
/// row count that differs from the survivors' declared rows.
pub async fn secure_newton(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    work: Instruction,
) -> Result<(NewtonTerms, SecureSum), RunError> {
    let round = work.round();
    let sum = secure_sum(shared, config, settings, steps, work).await?;
    let terms = medfed_wire::terms::newton_from_masked(&sum.sum, &shared.task).map_err(|e| {
        RunError::SecureAggregation {
            step: format!("round {round}"),
            reason: format!("the unmasked Newton terms are refused: {e}"),
        }
    })?;
    check_rows(shared, round, &sum.survivors, terms.n as f64)?;
    Ok((terms, sum))
}

/// Runs the securely aggregated normal-equation step and returns the
/// pooled terms with the step's survivors.
///
/// # Errors
/// As [`secure_newton`].
pub async fn secure_normal(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    work: Instruction,
) -> Result<(NormalTerms, SecureSum), RunError> {
    let round = work.round();
    let sum = secure_sum(shared, config, settings, steps, work).await?;
    let terms = medfed_wire::terms::normal_from_masked(&sum.sum, &shared.task).map_err(|e| {
        RunError::SecureAggregation {
            step: format!("round {round}"),
            reason: format!("the unmasked normal-equation terms are refused: {e}"),
        }
    })?;
    check_rows(shared, round, &sum.survivors, terms.n as f64)?;
    Ok((terms, sum))
}

/// The row count unmasked with a sum must be positive and equal the
/// survivors' declared training rows (when all declared them, or, under
/// secure aggregation, when they are the statistics passes' members), or
/// the sum is wrong and no model is made from it.
fn check_rows(
    shared: &Arc<Shared>,
    round: u32,
    survivors: &BTreeSet<String>,
    rows: f64,
) -> Result<(), RunError> {
    let failed = |reason: String| RunError::SecureAggregation {
        step: format!("round {round}"),
        reason,
    };
    let declared: Option<u64> = {
        let state = shared.lock();
        let declared: Option<u64> = survivors
            .iter()
            .map(|m| state.declared_rows.get(m).copied())
            .sum();
        // Under secure aggregation no member declares its own rows, but
        // the statistics passes summed them over their members.
        declared.or_else(|| {
            state
                .pooled_rows
                .as_ref()
                .filter(|(members, _)| members == survivors)
                .map(|(_, rows)| *rows)
        })
    };
    if let Some(declared) = declared
        && (rows - declared as f64).abs() > 0.5
    {
        return Err(failed(format!(
            "the unmasked row count {rows} is not the survivors' declared {declared} rows: \
             the sum is wrong and no model is made from it"
        )));
    }
    if rows < 0.5 {
        return Err(failed(format!(
            "the unmasked row count {rows} is not positive"
        )));
    }
    Ok(())
}
