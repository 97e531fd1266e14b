//! Drives a task through its steps: wait for the members, collect statistics,
//! run the training rounds, optionally train site-alone baselines, evaluate,
//! and tell everyone the task is finished.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use medfed_aggregate::Strategy;
use medfed_model::preprocess::{
    ColumnHistogram, ColumnSummary, DEFAULT_MEDIAN_BINS, HistogramPlan, Impute, merge_summaries,
    summary_notes,
};
use medfed_model::{CalibrationCounts, FittedPreprocessor};
use medfed_wire::{EvaluationCounts, Instruction, Step};
use ndarray::Array1;

use crate::checkpoint::{CHECKPOINT_FORMAT, Checkpoint, CheckpointStore, RESTART_STEP_GAP};
use crate::config::TaskConfig;
use crate::progress::Progress;
use crate::state::{Collecting, Shared, State};

/// Why a run stopped before its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Too few members answered in time.
    #[error(
        "{what}: no answer within {seconds} s from {missing}, and fewer than the quorum answered"
    )]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout.
        seconds: u64,
        /// Members that did not answer, comma-separated.
        missing: String,
    },
    /// The members' statistics could not be combined.
    #[error("cannot standardise the features: {0}")]
    Statistics(String),
    /// A round produced no update.
    #[error("round {0} received no update")]
    EmptyRound(u32),
    /// The exact-fit solver could not use the members' terms.
    #[error("the solver refused the round's terms: {0}")]
    Solver(String),
    /// A securely aggregated round could not produce a correct sum.
    #[error("{step}: secure aggregation failed: {reason}")]
    SecureAggregation {
        /// The step: a round, or a pass outside training.
        step: String,
        /// Why.
        reason: String,
    },
    /// The task state could not be saved.
    #[error("cannot save the task state: {0}")]
    Checkpoint(String),
    /// Differential-privacy noise could not be added.
    #[error("round {round}: cannot add the differential-privacy noise: {reason}")]
    Privacy {
        /// The round.
        round: u32,
        /// Why.
        reason: String,
    },
    /// A member of a DP task declined and left: its own privacy budget
    /// cannot pay for the next round, or it has no budget set at all (the
    /// refusal's reason says which). Before training this ends the run; a
    /// member that leaves during training ends training with the last
    /// model.
    #[error("{site} left: {refusal}")]
    BudgetSpent {
        /// The member.
        site: String,
        /// What it reported.
        refusal: medfed_wire::BudgetRefusal,
    },
    /// The exchange log could not be flushed to disk.
    #[error("cannot flush the exchange log: {0}")]
    Log(String),
}

/// Hands out strictly increasing step numbers.
#[derive(Debug, Default)]
pub struct StepCounter(u64);

impl StepCounter {
    /// The last step number handed out.
    pub fn current(&self) -> u64 {
        self.0
    }

    /// The next step number.
    pub fn next_step(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

/// One training round as the coordinator saw it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RoundRecord {
    /// 1-based round number.
    pub round: u32,
    /// Row-weighted mean training loss of the round's starting model.
    pub train_loss: f64,
    /// Members whose update was used.
    pub contributors: usize,
    /// Members that did not answer before the round's deadline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Time from announcing the round to having the next model, in ms.
    pub millis: f64,
    /// The round's model on the held-out rows, overall and per site (when
    /// evaluated this round).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_out: Option<crate::report::ModelScores>,
    /// What the solver did, when worth saying (backtracking, ridge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Everything a finished run produced.
pub struct Outcome {
    /// The global preprocessing every site applied.
    pub preprocessing: FittedPreprocessor,
    /// Features that were all missing or constant, by name.
    pub notes: Vec<String>,
    /// Final global parameters.
    pub global: Array1<f64>,
    /// Per-round records.
    pub rounds: Vec<RoundRecord>,
    /// Site-alone models, by member, in member order.
    pub baselines: Vec<(String, Array1<f64>)>,
    /// Evaluation counts: `evaluations[site][model]`, sites in member order;
    /// model 0 is the federated model, then the baselines.
    pub evaluations: Vec<(String, Vec<EvaluationCounts>)>,
    /// Training rows per member (empty under secure aggregation).
    pub train_rows: Vec<(String, u64)>,
    /// Training rows over all members.
    pub total_train_rows: u64,
    /// Evaluation counts of the federated model over all held-out rows,
    /// under secure aggregation (where `evaluations` is empty: no
    /// member's own counts are seen).
    pub pooled_evaluation: Option<EvaluationCounts>,
    /// DP tasks: the last spend each member reported, by member.
    pub privacy_spent: std::collections::BTreeMap<String, medfed_wire::PrivacySpend>,
    /// The algorithm that fitted the model.
    pub algorithm: String,
    /// Why training stopped.
    pub stop_reason: String,
    /// Calibration counts of the federated model over all held-out rows
    /// (logistic tasks).
    pub calibration: Option<CalibrationCounts>,
}

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
    progress.message(&format!(
        "waiting for {} members to join: {}",
        members.len(),
        task.members.join(", ")
    ));
    let joined = wait_until(shared, config.join_timeout, "joining", |s| {
        members.difference(&s.joined).cloned().collect()
    })
    .await;
    // Only a deadline may start the task without some members: a member
    // that declined (its privacy budget) ends the run, whatever the quorum.
    if let Err(error @ RunError::Timeout { .. }) = joined {
        let joined = shared.lock().joined.len();
        if joined < config.quorum {
            return Err(error);
        }
        progress.message(&format!(
            "{joined} of {} members joined by the deadline (quorum {}); starting without the others",
            members.len(),
            config.quorum
        ));
    } else {
        joined?;
    }

    let save = |step: u64,
                preprocessing: &FittedPreprocessor,
                notes: &[String],
                train_rows: &(Vec<(String, u64)>, u64),
                global: &Array1<f64>,
                rounds: &[RoundRecord],
                stop_reason: Option<&str>| {
        store
            .save(&Checkpoint {
                format: CHECKPOINT_FORMAT.into(),
                task_sha256: store.task_sha256().into(),
                step,
                preprocessing: preprocessing.clone(),
                notes: notes.to_vec(),
                train_rows: train_rows.0.clone(),
                total_train_rows: train_rows.1,
                global: global.to_vec(),
                rounds: rounds.to_vec(),
                stop_reason: stop_reason.map(str::to_owned),
            })
            .map_err(|e| RunError::Checkpoint(format!("{e:#}")))
    };
    let (mut steps, preprocessing, notes, train_rows, resumed) = match resume {
        Some(checkpoint) => {
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
            (
                StepCounter(checkpoint.step + RESTART_STEP_GAP),
                checkpoint.preprocessing.clone(),
                checkpoint.notes.clone(),
                (
                    checkpoint.train_rows.clone(),
                    if checkpoint.total_train_rows > 0 {
                        checkpoint.total_train_rows
                    } else {
                        checkpoint.train_rows.iter().map(|(_, r)| r).sum()
                    },
                ),
                Some(checkpoint),
            )
        }
        None => {
            let mut steps = StepCounter::default();
            let (preprocessing, notes, train_rows) =
                preprocess(shared, config, &mut steps, progress).await?;
            save(
                steps.current(),
                &preprocessing,
                &notes,
                &train_rows,
                &Array1::zeros(task.dimension()),
                &[],
                None,
            )?;
            (steps, preprocessing, notes, train_rows, None)
        }
    };

    // Training, from where a checkpoint left it.
    let resumed_global = resumed
        .as_ref()
        .map(|c| Array1::from(c.global.clone()))
        .filter(|g| g.len() == task.dimension());
    let trained = match resumed {
        Some(Checkpoint {
            stop_reason: Some(stop_reason),
            rounds,
            ..
        }) if resumed_global.is_some() => crate::training::Trained {
            global: resumed_global.unwrap_or_else(|| Array1::zeros(task.dimension())),
            rounds,
            stop_reason,
        },
        resumed => {
            progress.start_rounds(task.rounds);
            let start = crate::training::Start {
                global: resumed_global.unwrap_or_else(|| Array1::zeros(task.dimension())),
                rounds: resumed.map(|c| c.rounds).unwrap_or_default(),
            };
            let mut checkpoint_round = |step: u64, global: &Array1<f64>, rounds: &[RoundRecord]| {
                save(
                    step,
                    &preprocessing,
                    &notes,
                    &train_rows,
                    global,
                    rounds,
                    None,
                )
            };
            let trained = crate::training::train(
                shared,
                config,
                strategy,
                &preprocessing,
                &mut steps,
                progress,
                start,
                &mut checkpoint_round,
            )
            .await?;
            save(
                steps.current(),
                &preprocessing,
                &notes,
                &train_rows,
                &trained.global,
                &trained.rounds,
                Some(&trained.stop_reason),
            )?;
            trained
        }
    };
    progress.finish_rounds();
    progress.message(&trained.stop_reason);
    let global = trained.global;
    let rounds = trained.rounds;

    // Site-alone baselines, for comparison only.
    let mut baselines = Vec::new();
    if config.baselines {
        progress.message("training each site alone for comparison");
        let s = steps.next_step();
        shared.publish(
            Step {
                step: s,
                instruction: Instruction::Baseline {
                    preprocessing: preprocessing.clone(),
                    steps: task.rounds.saturating_mul(task.local_steps),
                },
            },
            Collecting::Baselines {
                step: s,
                models: Default::default(),
            },
        );
        wait_for_answers(shared, config, "baselines").await?;
        let Collecting::Baselines { mut models, .. } = shared.take_collected() else {
            unreachable!("the baseline step collects models");
        };
        for member in &task.members {
            if let Some(model) = models.remove(member) {
                baselines.push((member.clone(), model.model));
            }
        }
    }

    // Federated evaluation on every site's held-out rows.
    progress.message("evaluating on every site's held-out rows");
    let (evaluations, pooled_evaluation, calibration) = match task.secure_aggregation {
        Some(settings) => {
            let (counts, calibration) = crate::secure_round::secure_evaluate(
                shared,
                config,
                settings,
                &mut steps,
                &preprocessing,
                &global,
            )
            .await?;
            (Vec::new(), Some(counts), calibration)
        }
        None => {
            let (evaluations, calibration) = evaluate(
                shared,
                config,
                &mut steps,
                &preprocessing,
                &global,
                &baselines,
            )
            .await?;
            (evaluations, None, calibration)
        }
    };

    // Tell everyone; give them a moment to hear it, but do not wait on a
    // member that has already gone.
    let s = steps.next_step();
    shared.publish(
        Step {
            step: s,
            instruction: Instruction::Finished {
                reason: "training complete".into(),
            },
        },
        Collecting::Nothing,
    );
    let _ = wait_until(shared, Duration::from_secs(5), "finish", |st| {
        members.difference(&st.told_finished).cloned().collect()
    })
    .await;

    Ok(Outcome {
        preprocessing,
        notes,
        global,
        rounds,
        baselines,
        evaluations,
        pooled_evaluation,
        train_rows: train_rows.0,
        total_train_rows: train_rows.1,
        privacy_spent: shared.lock().privacy_spent.clone(),
        algorithm: config.algorithm.to_string(),
        stop_reason: trained.stop_reason,
        calibration,
    })
}

/// The clear evaluation step: every member's counts for the federated
/// model and the baselines, by member, with the federated model's
/// calibration over every site's held-out rows.
async fn evaluate(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    preprocessing: &FittedPreprocessor,
    global: &Array1<f64>,
    baselines: &[(String, Array1<f64>)],
) -> Result<
    (
        Vec<(String, Vec<EvaluationCounts>)>,
        Option<CalibrationCounts>,
    ),
    RunError,
> {
    let task = &shared.task;
    let mut models = vec![global.clone()];
    models.extend(baselines.iter().map(|(_, m)| m.clone()));
    let model_count = models.len();
    let s = steps.next_step();
    shared.publish(
        Step {
            step: s,
            instruction: Instruction::Evaluate {
                preprocessing: preprocessing.clone(),
                models,
            },
        },
        Collecting::Evaluations {
            step: s,
            models: model_count,
            reports: Default::default(),
        },
    );
    wait_for_answers(shared, config, "evaluation").await?;
    let Collecting::Evaluations { mut reports, .. } = shared.take_collected() else {
        unreachable!("the evaluation step collects counts");
    };
    // The federated model's calibration, over every site's held-out rows.
    let mut calibration: Option<CalibrationCounts> = None;
    for report in reports.values() {
        if let Some(site) = report.calibration.first() {
            match &mut calibration {
                Some(total) => total
                    .merge(site)
                    .map_err(|e| RunError::Statistics(e.to_string()))?,
                None => calibration = Some(site.clone()),
            }
        }
    }
    let evaluations = task
        .members
        .iter()
        .filter_map(|m| reports.remove(m).map(|r| (m.clone(), r.models)))
        .collect();
    Ok((evaluations, calibration))
}

/// The statistics step (and the histogram step when a median is asked
/// for): per-column aggregates from every member, merged into the global
/// preprocessing. Returns it with the notes on degenerate columns and each
/// member's training rows.
async fn preprocess(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    progress: &Progress,
) -> Result<(FittedPreprocessor, Vec<String>, TrainRows), RunError> {
    let task = &shared.task;
    let statistics_error = |e: medfed_model::ModelError| RunError::Statistics(e.to_string());
    let (merged, histograms, train_rows, mut notes) = match task.secure_aggregation {
        Some(settings) => {
            // Both passes as sums: no member's own figures are seen, so
            // notes are about all sites together only.
            let pooled =
                crate::secure_round::secure_preprocess(shared, config, settings, steps).await?;
            (
                pooled.summaries,
                pooled.histograms,
                (Vec::new(), pooled.rows.train),
                Vec::new(),
            )
        }
        None => clear_statistics(shared, config, steps).await?,
    };
    let (preprocessing, column_notes) =
        FittedPreprocessor::fit(&task.columns, &merged, histograms.as_deref())
            .map_err(statistics_error)?;
    notes.extend(
        column_notes
            .iter()
            .map(|n| format!("across all sites: {n}")),
    );
    if let Some(histograms) = &histograms {
        for (spec, h) in task.columns.iter().zip(histograms) {
            if let (Impute::Median, Some(h)) = (spec.missing, h) {
                notes.push(format!(
                    "{}: missing values filled with the approximate global median, within {:.3e} \
                     of the exact one ({} bins)",
                    spec.name,
                    h.median_error_bound(),
                    h.counts.len()
                ));
            }
        }
    }
    for note in &notes {
        progress.message(note);
    }

    Ok((preprocessing, notes, train_rows))
}

/// Training rows per member (empty under secure aggregation) and over all
/// members.
type TrainRows = (Vec<(String, u64)>, u64);

/// The clear statistics pass, and the histogram pass when a median is asked
/// for: each member's summaries merged, the merged histograms, the training
/// rows, and notes on columns missing or constant at one site.
async fn clear_statistics(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
) -> Result<
    (
        Vec<ColumnSummary>,
        Option<Vec<Option<ColumnHistogram>>>,
        TrainRows,
        Vec<String>,
    ),
    RunError,
> {
    let task = &shared.task;
    // Statistics round: aggregates only, never rows.
    let s = steps.next_step();
    shared.publish(
        Step {
            step: s,
            instruction: Instruction::CollectStatistics,
        },
        Collecting::Statistics {
            step: s,
            reports: Default::default(),
        },
    );
    wait_for_answers(shared, config, "statistics").await?;
    let Collecting::Statistics { reports, .. } = shared.take_collected() else {
        unreachable!("the statistics step collects statistics");
    };
    let mut merged: Vec<ColumnSummary> = task.columns.iter().map(ColumnSummary::empty).collect();
    let mut train_rows = Vec::new();
    let mut notes = Vec::new();
    let statistics_error = |e: medfed_model::ModelError| RunError::Statistics(e.to_string());
    for (member, report) in &reports {
        merge_summaries(&mut merged, &report.summaries).map_err(statistics_error)?;
        train_rows.push((member.clone(), report.train_rows));
        // A column missing or constant at one site is worth knowing: that
        // site cannot tell the model anything about it.
        for note in summary_notes(&task.columns, &report.summaries).map_err(statistics_error)? {
            notes.push(format!("at {member}: {note}"));
        }
    }

    // Medians need a second pass: histograms over the global ranges.
    let needs_median = task
        .columns
        .iter()
        .any(|c| matches!(c.missing, Impute::Median));
    let histograms = if needs_median {
        let plan = HistogramPlan::new(&task.columns, &merged, DEFAULT_MEDIAN_BINS)
            .map_err(statistics_error)?;
        let s = steps.next_step();
        let empty = plan
            .ranges
            .iter()
            .map(|r| r.map(|range| ColumnHistogram::empty(range, plan.bins)))
            .collect();
        shared.publish(
            Step {
                step: s,
                instruction: Instruction::CollectHistograms { plan: plan.clone() },
            },
            Collecting::Histograms {
                step: s,
                plan,
                merged: empty,
                received: Default::default(),
            },
        );
        wait_for_answers(shared, config, "histograms").await?;
        let Collecting::Histograms { merged, .. } = shared.take_collected() else {
            unreachable!("the histogram step collects histograms");
        };
        Some(merged)
    } else {
        None
    };
    let total = train_rows.iter().map(|(_, r)| r).sum();
    Ok((merged, histograms, (train_rows, total), notes))
}

/// Waits until every member has answered the current step, or until its
/// deadline passes with at least a quorum of answers. Returns the members
/// that did not answer (empty when all did).
pub(crate) async fn wait_for_answers(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    what: &str,
) -> Result<Vec<String>, RunError> {
    let members: BTreeSet<String> = shared.task.members.iter().cloned().collect();
    wait_for_members(shared, config, what, &members).await
}

/// [`wait_for_answers`] for a step that only `members` are asked to
/// answer. Every step closes here, so this is also where the exchange log
/// is flushed under the once-per-step policy, before the answers are used.
pub(crate) async fn wait_for_members(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    what: &str,
    members: &BTreeSet<String>,
) -> Result<Vec<String>, RunError> {
    let waited = wait_until(shared, config.step_timeout, what, |s| {
        members
            .difference(&s.collecting.answered())
            .cloned()
            .collect()
    })
    .await;
    let closed = match waited {
        Ok(()) => Ok(Vec::new()),
        // Only a deadline closes a step with a quorum; a member that
        // declined (its privacy budget) is reported at once.
        Err(error @ RunError::Timeout { .. }) => {
            let state = shared.lock();
            let answered = state.collecting.answered();
            if answered.len() >= config.quorum {
                let missing: Vec<String> = members.difference(&answered).cloned().collect();
                tracing::warn!(
                    step = what,
                    answered = answered.len(),
                    quorum = config.quorum,
                    missing = %missing.join(", "),
                    "deadline passed; closing the step with a quorum"
                );
                Ok(missing)
            } else {
                Err(error)
            }
        }
        Err(error) => Err(error),
    }?;
    shared
        .step_closed()
        .map_err(|error| RunError::Log(error.to_string()))?;
    Ok(closed)
}

/// Waits until `missing` returns nobody, or `timeout` passes.
pub(crate) async fn wait_until(
    shared: &Arc<Shared>,
    timeout: Duration,
    what: &str,
    missing: impl Fn(&State) -> Vec<String>,
) -> Result<(), RunError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Register for the wake-up before looking, so a submission landing
        // between the look and the wait is not missed.
        let notified = shared.progress.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let absent = {
            let state = shared.lock();
            // A member that declined (budget spent, or none set) will not
            // answer again: stop waiting now rather than at the deadline.
            let refused = state
                .budget_refusals
                .iter()
                .find(|(site, _)| !state.departed.contains(*site));
            if let Some((site, refusal)) = refused {
                return Err(RunError::BudgetSpent {
                    site: site.clone(),
                    refusal: *refusal,
                });
            }
            let mut absent = missing(&state);
            absent.retain(|m| !state.departed.contains(m));
            absent
        };
        if absent.is_empty() {
            return Ok(());
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => {
                return Err(RunError::Timeout {
                    what: what.to_owned(),
                    seconds: timeout.as_secs(),
                    missing: absent.join(", "),
                });
            }
        }
    }
}
