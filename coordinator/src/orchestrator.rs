//! Drives a task through its phases: wait for the members, collect
//! statistics, run the training rounds, optionally train site-alone
//! baselines, evaluate, and tell everyone the task is finished. The phases
//! themselves live in [`crate::phase`]; this module only sequences them and
//! checkpoints between them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use medfed_aggregate::Strategy;
use medfed_model::FittedPreprocessor;
use medfed_wire::{Instruction, Step};
use ndarray::Array1;

use crate::algorithm::rounds::{Start, Trained};
use crate::checkpoint::{CHECKPOINT_FORMAT, Checkpoint, CheckpointStore, RESTART_STEP_GAP};
use crate::config::TaskConfig;
use crate::outcome::Outcome;
use crate::phase::baselines::baselines;
use crate::phase::evaluation::{Evaluated, evaluate};
use crate::phase::statistics::{TrainRows, preprocess};
use crate::phase::training::train;
use crate::progress::Progress;
use crate::refusals::{Awaited, Need};
use crate::run_error::RunError;
use crate::state::Shared;
use crate::step::{RoundRecord, StepCounter};
use crate::wait::wait_until;

/// Runs the task to its end.
///
/// # Errors
/// A member that does not join or answer in time, or statistics that cannot
/// be combined.
pub async fn orchestrate(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    strategy: &dyn Strategy,
    progress: &Progress,
    store: &CheckpointStore,
    resume: Option<Checkpoint>,
) -> Result<Outcome, RunError> {
    let task = &shared.task;
    let members: BTreeSet<String> = task.members.iter().cloned().collect();
    join(shared, config, progress, &members).await?;

    let (mut steps, prepared, resumed) = match resume {
        Some(checkpoint) => resume_from(shared, progress, store, checkpoint),
        None => {
            let mut steps = StepCounter::default();
            let (preprocessing, notes, train_rows) =
                preprocess(shared, config, &mut steps, progress).await?;
            let prepared = Prepared {
                preprocessing,
                notes,
                train_rows,
            };
            let global = Array1::zeros(task.dimension());
            prepared.save(store, steps.current(), &global, &[], None)?;
            (steps, prepared, None)
        }
    };

    let trained = training(
        shared, config, strategy, progress, store, &mut steps, &prepared, resumed,
    )
    .await?;
    progress.finish_rounds();
    progress.message(&trained.stop_reason);
    let global = trained.global;
    let rounds = trained.rounds;
    let Prepared {
        preprocessing,
        notes,
        train_rows,
    } = prepared;

    // Site-alone baselines, for comparison only.
    let baselines = if config.baselines {
        progress.message("training each site alone for comparison");
        baselines(shared, config, &mut steps, &preprocessing).await?
    } else {
        Vec::new()
    };

    // Federated evaluation on every site's held-out rows.
    progress.message("evaluating on every site's held-out rows");
    let Evaluated {
        evaluations,
        pooled,
        calibration,
    } = evaluate(
        shared,
        config,
        &mut steps,
        &preprocessing,
        &global,
        &baselines,
    )
    .await?;

    finish(shared, &mut steps, &members).await;

    // One guard: a second `lock()` in the same expression would wait on
    // the first.
    let (privacy_spent, refusals) = {
        let state = shared.lock();
        (state.privacy_spent.clone(), state.refusals.clone())
    };

    Ok(Outcome {
        preprocessing,
        notes,
        global,
        rounds,
        baselines,
        evaluations,
        pooled_evaluation: pooled,
        train_rows: train_rows.0,
        total_train_rows: train_rows.1,
        privacy_spent,
        refusals,
        algorithm: config.algorithm.to_string(),
        stop_reason: trained.stop_reason,
        calibration,
    })
}

/// What the statistics phase fixed for the rest of the task, and what every
/// checkpoint repeats.
struct Prepared {
    /// The global preprocessing.
    preprocessing: FittedPreprocessor,
    /// Notes on degenerate columns.
    notes: Vec<String>,
    /// Training rows per member and over all members.
    train_rows: TrainRows,
}

impl Prepared {
    /// Saves the task state after `step`: the model, the rounds so far and,
    /// once training has stopped, why.
    fn save(
        &self,
        store: &CheckpointStore,
        step: u64,
        global: &Array1<f64>,
        rounds: &[RoundRecord],
        stop_reason: Option<&str>,
    ) -> Result<(), RunError> {
        store
            .save(&Checkpoint {
                format: CHECKPOINT_FORMAT.into(),
                task_sha256: store.task_sha256().into(),
                step,
                preprocessing: self.preprocessing.clone(),
                notes: self.notes.clone(),
                train_rows: self.train_rows.0.clone(),
                total_train_rows: self.train_rows.1,
                global: global.to_vec(),
                rounds: rounds.to_vec(),
                stop_reason: stop_reason.map(str::to_owned),
            })
            .map_err(|e| RunError::Checkpoint(format!("{e:#}")))
    }
}

/// Waits for every member to join. Only a deadline may start the task
/// without some members, and only with a quorum: a member that declined
/// (its privacy budget) ends the run, whatever the quorum. A member that
/// refused the task under its own policy is not waited for; the task
/// starts without it when the others can still make the quorum, and the
/// run ends at once when they cannot.
pub(crate) async fn join(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    progress: &Progress,
    members: &BTreeSet<String>,
) -> Result<(), RunError> {
    let task = &shared.task;
    progress.message(&format!(
        "waiting for {} members to join: {}",
        members.len(),
        task.members.join(", ")
    ));
    let awaited = Awaited {
        what: "joining",
        expected: members,
        need: Need::quorum(config.quorum),
    };
    let joined = wait_until(shared, config.join_timeout, &awaited, |s| s.joined.clone()).await;
    if let Err(error @ RunError::Timeout { .. }) = joined {
        let joined = {
            let state = shared.lock();
            state.joined.iter().filter(|m| !state.has_left(m)).count()
        };
        if joined < config.quorum {
            return Err(error);
        }
        progress.message(&format!(
            "{joined} of {} members joined by the deadline (quorum {}); starting without the others",
            members.len(),
            config.quorum
        ));
        Ok(())
    } else {
        joined
    }
}

/// Picks a restarted task up from its checkpoint: the step numbers continue
/// past a gap, and the statistics phase is not run again.
fn resume_from(
    shared: &Arc<Shared>,
    progress: &Progress,
    store: &CheckpointStore,
    checkpoint: Checkpoint,
) -> (StepCounter, Prepared, Option<Checkpoint>) {
    progress.message(&format!(
        "resuming from {}: {} rounds done{}",
        store.path().display(),
        checkpoint.rounds.len(),
        if checkpoint.stop_reason.is_some() {
            ", training finished"
        } else {
            ""
        }
    ));
    // The weights members declared before the crash still bind them.
    shared
        .lock()
        .declared_rows
        .extend(checkpoint.train_rows.iter().cloned());
    let total_train_rows = if checkpoint.total_train_rows > 0 {
        checkpoint.total_train_rows
    } else {
        checkpoint.train_rows.iter().map(|(_, r)| r).sum()
    };
    let prepared = Prepared {
        preprocessing: checkpoint.preprocessing.clone(),
        notes: checkpoint.notes.clone(),
        train_rows: (checkpoint.train_rows.clone(), total_train_rows),
    };
    (
        StepCounter::after(checkpoint.step + RESTART_STEP_GAP),
        prepared,
        Some(checkpoint),
    )
}

/// The training phase, from where a checkpoint left it: skipped when the
/// checkpoint says training had already stopped (and holds a model of the
/// task's dimension), checkpointed after every round and at its end.
#[allow(clippy::too_many_arguments)]
async fn training(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    strategy: &dyn Strategy,
    progress: &Progress,
    store: &CheckpointStore,
    steps: &mut StepCounter,
    prepared: &Prepared,
    resumed: Option<Checkpoint>,
) -> Result<Trained, RunError> {
    let task = &shared.task;
    let resumed_global = resumed
        .as_ref()
        .map(|c| Array1::from(c.global.clone()))
        .filter(|g| g.len() == task.dimension());
    match resumed {
        Some(Checkpoint {
            stop_reason: Some(stop_reason),
            rounds,
            ..
        }) if resumed_global.is_some() => Ok(Trained {
            global: resumed_global.unwrap_or_else(|| Array1::zeros(task.dimension())),
            rounds,
            stop_reason,
        }),
        resumed => {
            progress.start_rounds(task.rounds);
            let start = Start {
                global: resumed_global.unwrap_or_else(|| Array1::zeros(task.dimension())),
                rounds: resumed.map(|c| c.rounds).unwrap_or_default(),
            };
            let mut checkpoint_round = |step: u64, global: &Array1<f64>, rounds: &[RoundRecord]| {
                prepared.save(store, step, global, rounds, None)
            };
            let trained = train(
                shared,
                config,
                strategy,
                &prepared.preprocessing,
                steps,
                progress,
                start,
                &mut checkpoint_round,
            )
            .await?;
            prepared.save(
                store,
                steps.current(),
                &trained.global,
                &trained.rounds,
                Some(&trained.stop_reason),
            )?;
            Ok(trained)
        }
    }
}

/// Tells everyone the task is finished; gives them a moment to hear it, but
/// does not wait on a member that has already gone.
async fn finish(shared: &Arc<Shared>, steps: &mut StepCounter, members: &BTreeSet<String>) {
    let s = steps.next_step();
    shared.publish(
        Step {
            step: s,
            instruction: Instruction::Finished {
                reason: "training complete".into(),
            },
        },
        None,
    );
    let awaited = Awaited {
        what: "finish",
        expected: members,
        need: Need::none(),
    };
    let _ = wait_until(shared, Duration::from_secs(5), &awaited, |st| {
        st.told_finished.clone()
    })
    .await;
}
