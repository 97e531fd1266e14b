//! Closed-form ridge regression: one round of normal-equation sums, solved
//! exactly.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use medfed_model::{FittedPreprocessor, NormalTerms};
use medfed_wire::{Instruction, Step};

use crate::config::TaskConfig;
use crate::phase::rounds::Trained;
use crate::progress::Progress;
use crate::run_error::RunError;
use crate::secure_round::secure_normal;
use crate::state::{Collecting, Shared};
use crate::step::{RoundRecord, StepCounter};
use crate::wait::wait_for_answers;

/// Closed-form ridge regression: one round of normal-equation sums, solved
/// exactly.
pub(crate) async fn closed_form(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    preprocessing: &FittedPreprocessor,
    steps: &mut StepCounter,
    progress: &Progress,
) -> Result<Trained, RunError> {
    let task = &shared.task;
    let started = Instant::now();
    let instruction = Instruction::Normal {
        preprocessing: preprocessing.clone(),
    };
    let (terms, contributors, missing) = match task.secure_aggregation {
        Some(settings) => {
            let (terms, sum) = secure_normal(shared, config, settings, steps, instruction).await?;
            (terms, sum.survivors.len(), sum.missing)
        }
        None => {
            let s = steps.next_step();
            shared.publish(
                Step {
                    step: s,
                    instruction,
                },
                Collecting::Normal {
                    step: s,
                    terms: NormalTerms::zeros(task.dimension() - 1),
                    received: BTreeSet::new(),
                },
            );
            let missing = wait_for_answers(shared, config, "normal equations").await?;
            let Collecting::Normal {
                terms, received, ..
            } = shared.take_collected()
            else {
                unreachable!("a normal-equation step collects normal terms");
            };
            if received.is_empty() {
                return Err(RunError::EmptyRound(1));
            }
            (terms, received.len(), missing)
        }
    };
    let (global, train_loss) =
        medfed_model::solve_normal(&terms, task.l2).map_err(|e| RunError::Solver(e.to_string()))?;
    let record = RoundRecord {
        round: 1,
        train_loss,
        contributors,
        missing,
        millis: started.elapsed().as_secs_f64() * 1e3,
        held_out: None,
        note: Some("closed form: the exact ridge solution of the pooled normal equations".into()),
    };
    progress.round(&record, 1);
    shared
        .metrics
        .round_completed(record.contributors, record.millis / 1e3, record.train_loss);
    Ok(Trained {
        global,
        rounds: vec![record],
        stop_reason: "closed form: solved exactly in one round".into(),
    })
}
