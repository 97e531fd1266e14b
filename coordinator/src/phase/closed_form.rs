//! Closed-form ridge regression: one round of normal-equation sums, solved
//! exactly.

use std::sync::Arc;
use std::time::Instant;

use medfed_model::FittedPreprocessor;
use medfed_wire::{Instruction, NormalReport};

use crate::collect::collect;
use crate::config::TaskConfig;
use crate::mailbox::clear::FlatSum;
use crate::phase::rounds::Trained;
use crate::progress::Progress;
use crate::run_error::RunError;
use crate::secure_round::check_rows;
use crate::state::Shared;
use crate::step::{RoundRecord, StepCounter};

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
    let collected = collect::<NormalReport>(
        shared,
        config,
        steps,
        "normal equations",
        instruction,
        FlatSum::new(task.dimension()),
        &task.dimension(),
    )
    .await?;
    let terms = collected.sum;
    if task.secure_aggregation.is_some() {
        check_rows(shared, 1, &collected.contributors, terms.n as f64)?;
    }
    let (contributors, missing) = (collected.contributors.len(), collected.missing);
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
