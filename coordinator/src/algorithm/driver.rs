//! The one round loop every training algorithm runs in: ask the algorithm
//! for the round's work, publish it and collect the sum, hand the sum (or
//! the failure) back, then record the round, print its progress line,
//! update the metrics, checkpoint and stop when the algorithm says so.

use std::sync::Arc;
use std::time::Instant;

use crate::algorithm::rounds::{OnRound, Trained};
use crate::algorithm::{Absorbed, Algorithm, Control, Work};
use crate::collect::collect;
use crate::config::TaskConfig;
use crate::progress::Progress;
use crate::run_error::RunError;
use crate::state::Shared;
use crate::step::{RoundRecord, StepCounter};

/// What the round loop works with besides the algorithm.
pub struct Run<'r, 'c> {
    /// State shared with the service.
    pub shared: &'r Arc<Shared>,
    /// The operator's task file.
    pub config: &'r TaskConfig,
    /// The run's step numbers.
    pub steps: &'r mut StepCounter,
    /// Where progress lines go.
    pub progress: &'r Progress,
    /// Called after every recorded round, to checkpoint it.
    pub on_round: &'r mut OnRound<'c>,
}

/// Runs `algorithm` from the rounds already `done` (a restart) to its
/// stop: the planned rounds, or sooner when the algorithm stops or ends
/// training.
///
/// # Errors
/// A failure the algorithm does not absorb, a checkpoint that cannot be
/// written, or every round failed (there is no model).
pub async fn drive<A: Algorithm>(
    mut algorithm: A,
    run: Run<'_, '_>,
    done: Vec<RoundRecord>,
) -> Result<Trained, RunError> {
    let Run {
        shared,
        config,
        steps,
        progress,
        on_round,
    } = run;
    let total = algorithm.rounds();
    let mut rounds = if A::CHECKPOINTS_ROUNDS {
        done
    } else {
        Vec::new()
    };
    let mut stop_reason = format!("all {total} rounds done");
    let first = rounds.len() as u32 + 1;
    for round in first..=total {
        let started = Instant::now();
        let Some(Work {
            what,
            instruction,
            acc,
            shape,
        }) = algorithm.configure(round)
        else {
            break;
        };
        let collected =
            collect::<A::Answer>(shared, config, steps, &what, instruction, acc, &shape)
                .await
                .and_then(|c| algorithm.check(round, &c).map(|()| c));
        let (contributors, missing) = match &collected {
            Ok(c) => (c.contributors.len(), c.missing.clone()),
            Err(_) => (0, Vec::new()),
        };
        let record = |absorbed: Absorbed| RoundRecord {
            round,
            train_loss: absorbed.train_loss,
            contributors,
            missing,
            millis: started.elapsed().as_secs_f64() * 1e3,
            held_out: absorbed.held_out,
            note: absorbed.note,
        };
        let (record, stop) = match algorithm.aggregate(round, collected)? {
            Control::Continue(absorbed) => (record(absorbed), None),
            Control::Stop(absorbed, reason) => (record(absorbed), Some(reason)),
            Control::Skip(note) => {
                // No wrong model: the round is recorded as failed and the
                // global model stays as it was.
                progress.message(&format!("round {round} {note}"));
                rounds.push(RoundRecord {
                    round,
                    train_loss: f64::NAN,
                    contributors: 0,
                    missing: Vec::new(),
                    millis: started.elapsed().as_secs_f64() * 1e3,
                    held_out: None,
                    note: Some(note),
                });
                checkpoint::<A>(on_round, steps, &algorithm, &rounds)?;
                continue;
            }
            Control::End(reason) => {
                stop_reason = reason;
                break;
            }
        };
        progress.round(&record, total);
        shared
            .metrics
            .round_completed(record.contributors, record.millis / 1e3, record.train_loss);
        rounds.push(record);
        checkpoint::<A>(on_round, steps, &algorithm, &rounds)?;
        if let Some(reason) = stop {
            stop_reason = reason;
            break;
        }
    }
    let stop_reason = with_skipped(stop_reason, &rounds)?;
    Ok(Trained {
        global: algorithm.model(),
        rounds,
        stop_reason,
    })
}

/// Checkpoints the rounds so far with the algorithm's model, when it
/// checkpoints rounds at all.
fn checkpoint<A: Algorithm>(
    on_round: &mut OnRound<'_>,
    steps: &StepCounter,
    algorithm: &A,
    rounds: &[RoundRecord],
) -> Result<(), RunError> {
    if A::CHECKPOINTS_ROUNDS {
        on_round(steps.current(), &algorithm.model(), rounds)?;
    }
    Ok(())
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
