//! FedAvg and FedProx: each round, nodes take local steps from the global
//! model and send the delta; the strategy combines the deltas (or, under
//! secure aggregation, the coordinator learns only their sum). In a DP task
//! with central noise the coordinator noises the combined update.

use std::sync::Arc;
use std::time::Instant;

use medfed_aggregate::Strategy;
use medfed_model::FittedPreprocessor;
use medfed_wire::summed::{PooledUpdate, UpdateShape};
use medfed_wire::{Instruction, ModelUpdate};
use ndarray::Array1;

use crate::collect::collect;
use crate::config::{FailedRound, TaskConfig};
use crate::mailbox::answers::UpdateSum;
use crate::phase::rounds::{OnRound, Start, Trained, evaluate_round, held_out, held_out_overall};
use crate::progress::Progress;
use crate::report::ModelScores;
use crate::run_error::RunError;
use crate::secure_round::check_update;
use crate::state::Shared;
use crate::step::{RoundRecord, StepCounter};

/// FedAvg / FedProx: each round, nodes take local steps from the global
/// model and send the delta; the strategy combines the deltas.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn local_steps(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    strategy: &dyn Strategy,
    preprocessing: &FittedPreprocessor,
    steps: &mut StepCounter,
    progress: &Progress,
    start: Start,
    on_round: &mut OnRound<'_>,
) -> Result<Trained, RunError> {
    let task = &shared.task;
    let Start {
        mut global,
        mut rounds,
    } = start;
    let mut stop_reason = format!("all {} rounds done", task.rounds);
    let first = rounds.len() as u32 + 1;
    for round in first..=task.rounds {
        let started = Instant::now();
        let result = local_round(
            shared,
            config,
            strategy,
            preprocessing,
            steps,
            round,
            &global,
        )
        .await;
        let (delta, contributors, missing, train_loss, held_out) = match result {
            Err(error @ (RunError::SecureAggregation { .. } | RunError::Timeout { .. }))
                if task.secure_aggregation.is_some()
                    && config.failed_round == FailedRound::Skip =>
            {
                // No wrong model: the round is recorded as failed and the
                // global model stays as it was.
                let note = format!("failed and skipped ({error}); the model is unchanged");
                progress.message(&format!("round {round} {note}"));
                tracing::warn!(round, %error, "secure round failed; skipping it");
                rounds.push(RoundRecord {
                    round,
                    train_loss: f64::NAN,
                    contributors: 0,
                    missing: Vec::new(),
                    millis: started.elapsed().as_secs_f64() * 1e3,
                    held_out: None,
                    note: Some(note),
                });
                on_round(steps.current(), &global, &rounds)?;
                continue;
            }
            Err(RunError::BudgetSpent { site, refusal }) if rounds.is_empty() => {
                // No round completed: there is no model to stand, and the
                // untrained start must not be published as one.
                return Err(RunError::BudgetSpent { site, refusal });
            }
            Err(RunError::BudgetSpent { site, refusal }) => {
                // The model of the last completed round stands; the member
                // has left, so no later step waits for it.
                shared.lock().departed.insert(site.clone());
                stop_reason =
                    format!("stopped before round {round}: {site} declined it because {refusal}");
                tracing::warn!(%site, round, "training stopped: a member's privacy budget is spent");
                break;
            }
            other => other?,
        };
        global += &delta;
        let change = delta.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let record = RoundRecord {
            round,
            train_loss,
            contributors,
            missing,
            millis: started.elapsed().as_secs_f64() * 1e3,
            held_out,
            note: None,
        };
        progress.round(&record, task.rounds);
        shared
            .metrics
            .round_completed(record.contributors, record.millis / 1e3, record.train_loss);
        rounds.push(record);
        on_round(steps.current(), &global, &rounds)?;
        if change < config.tolerance {
            stop_reason = format!(
                "converged after round {round}: the largest parameter change {change:.3e} \
                 is below the tolerance {:e}",
                config.tolerance
            );
            break;
        }
    }
    let stop_reason = with_skipped(stop_reason, &rounds)?;
    Ok(Trained {
        global,
        rounds,
        stop_reason,
    })
}

/// `stop_reason` with the rounds that failed and were skipped (recorded
/// with no contributor), if any.
///
/// # Errors
/// Every round failed: there is no model.
fn with_skipped(stop_reason: String, rounds: &[RoundRecord]) -> Result<String, RunError> {
    let failed: Vec<String> = rounds
        .iter()
        .filter(|r| r.contributors == 0)
        .map(|r| r.round.to_string())
        .collect();
    if failed.is_empty() {
        return Ok(stop_reason);
    }
    if failed.len() == rounds.len() {
        return Err(RunError::SecureAggregation {
            step: "training".into(),
            reason: format!(
                "every round failed (rounds {}), so there is no model",
                failed.join(", ")
            ),
        });
    }
    Ok(format!(
        "{stop_reason}; round{} {} failed and {} skipped",
        if failed.len() == 1 { "" } else { "s" },
        failed.join(", "),
        if failed.len() == 1 { "was" } else { "were" }
    ))
}

/// What one FedAvg/FedProx round produced: the global model's change, the
/// number of contributors, the members missing, the training loss (NaN when
/// not released: DP rounds) and the held-out scores (when asked).
type RoundResult = (Array1<f64>, usize, Vec<String>, f64, Option<ModelScores>);

/// One FedAvg/FedProx round, securely aggregated or in clear; in a DP task
/// with central noise, the coordinator noises the sum here.
async fn local_round(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    strategy: &dyn Strategy,
    preprocessing: &FittedPreprocessor,
    steps: &mut StepCounter,
    round: u32,
    global: &Array1<f64>,
) -> Result<RoundResult, RunError> {
    let task = &shared.task;
    let evaluate = evaluate_round(config, round);
    let work = Instruction::Train {
        round,
        global: global.clone(),
        preprocessing: preprocessing.clone(),
        prox_mu: config.prox_mu,
        evaluate,
    };
    let collected = collect::<ModelUpdate>(
        shared,
        config,
        steps,
        &format!("round {round}"),
        work,
        UpdateSum::new(strategy.start_round(task.dimension())),
        &UpdateShape::new(task, evaluate),
    )
    .await?;
    if task.secure_aggregation.is_some() {
        check_update(shared, round, &collected)?;
    }
    let contributors = collected.contributors.len();
    let PooledUpdate {
        mut delta,
        train_loss,
        evaluation,
        ..
    } = collected.sum;
    let train_loss = match task.dp_config() {
        // Central noise: the coordinator sees the clear sum (under secure
        // aggregation each member noised its own update).
        Some(dp) if task.secure_aggregation.is_none() => {
            central_noise(&dp, &mut delta, contributors, round)?;
            // Not released in DP rounds: it is data-dependent and not
            // covered by the guarantee.
            f64::NAN
        }
        _ => train_loss,
    };
    let scores = held_out(&collected.kept).or_else(|| held_out_overall(evaluation.as_ref()));
    Ok((delta, contributors, collected.missing, train_loss, scores))
}

/// DP-FedAvg with central noise: `mean` is the equally weighted mean of
/// `contributors` clipped updates; the sum gets Gaussian noise of standard
/// deviation σ·C before it is divided again (the coordinator is trusted: it
/// sees the sum before noising).
fn central_noise(
    dp: &medfed_secure::dp::DpConfig,
    mean: &mut Array1<f64>,
    contributors: usize,
    round: u32,
) -> Result<(), RunError> {
    let failed = |e: medfed_secure::dp::DpError| RunError::Privacy {
        round,
        reason: e.to_string(),
    };
    let k = contributors as f64;
    let mut sum: Vec<f64> = mean.iter().map(|v| v * k).collect();
    let mut rng = medfed_secure::dp::os_seeded_rng().map_err(failed)?;
    dp.add_central_noise(&mut sum, &mut rng).map_err(failed)?;
    for (m, s) in mean.iter_mut().zip(sum) {
        *m = s / k;
    }
    Ok(())
}
