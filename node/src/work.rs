//! What a node computes for each instruction. Only aggregates and model
//! vectors come out of here: per-feature statistics, a parameter delta, a
//! site-alone model, evaluation counts.

use medfed_model::{CalibrationCounts, NewtonTerms, NormalTerms};
use medfed_wire::{
    BaselineModel, EvaluationCounts, EvaluationReport, HistogramReport, Instruction, ModelUpdate,
    NewtonReport, NormalReport, StatisticsReport, Step, Submission, Task,
};
use ndarray::{Array1, ArrayView1, ArrayView2};

use crate::data::{DataError, SiteData};

/// A node's answer to one instruction.
// One value per step, moved once into what is sent: boxing the large
// variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// A value to send (checked and printed on its way out).
    Send(Submission),
    /// The task is over.
    Finished(String),
    /// Nothing to send; ask again.
    Nothing,
}

/// Computes the answer to `step`.
///
/// # Errors
/// Inputs the model library refuses (they were validated at the wire, so
/// this signals a bug or an inconsistent task).
pub fn answer(site: &mut SiteData, task: &Task, step: &Step) -> Result<Answer, DataError> {
    let Step { step, instruction } = step;
    let step = *step;
    Ok(match instruction {
        Instruction::CollectStatistics => Answer::Send(Submission::Statistics(StatisticsReport {
            step,
            summaries: site.statistics(task)?,
            train_rows: site.train.y.len() as u64,
            holdout_rows: site.holdout.y.len() as u64,
            rows_missing_target: site.missing_target as u64,
        })),
        Instruction::Train {
            round,
            global,
            preprocessing,
            prox_mu,
            evaluate,
        } => {
            let data = site.prepared(preprocessing)?;
            let (local, loss) = medfed_model::gradient_descent_prox(
                task.model,
                data.train_x,
                data.train_y,
                global.view(),
                global.view(),
                task.l2,
                *prox_mu,
                task.learning_rate,
                task.local_steps,
            )?;
            let evaluation = evaluate
                .then(|| {
                    counts(
                        task,
                        data.holdout_x,
                        data.holdout_y,
                        global.view(),
                        task.round_score_bins(),
                    )
                })
                .transpose()?;
            Answer::Send(Submission::Update(ModelUpdate {
                step,
                round: *round,
                delta: local - global,
                num_rows: data.train_y.len() as u64,
                train_loss: loss,
                evaluation,
                privacy_spend: None,
            }))
        }
        Instruction::Newton {
            round,
            params,
            preprocessing,
            evaluate,
        } => {
            let data = site.prepared(preprocessing)?;
            let terms =
                NewtonTerms::for_kind(task.model, data.train_x, data.train_y, params.view())?;
            let evaluation = evaluate
                .then(|| {
                    counts(
                        task,
                        data.holdout_x,
                        data.holdout_y,
                        params.view(),
                        task.round_score_bins(),
                    )
                })
                .transpose()?;
            Answer::Send(Submission::Newton(NewtonReport {
                step,
                round: *round,
                terms,
                evaluation,
            }))
        }
        Instruction::Normal { preprocessing } => {
            let data = site.prepared(preprocessing)?;
            Answer::Send(Submission::Normal(NormalReport {
                step,
                terms: NormalTerms::from_rows(data.train_x, data.train_y)?,
            }))
        }
        Instruction::Baseline {
            preprocessing,
            steps,
        } => {
            let data = site.prepared(preprocessing)?;
            let start = Array1::zeros(task.dimension());
            let (model, _) = medfed_model::gradient_descent(
                task.model,
                data.train_x,
                data.train_y,
                start.view(),
                task.l2,
                task.learning_rate,
                *steps,
            )?;
            Answer::Send(Submission::Baseline(BaselineModel {
                step,
                model,
                num_rows: data.train_y.len() as u64,
            }))
        }
        Instruction::Evaluate {
            preprocessing,
            models,
        } => {
            let data = site.prepared(preprocessing)?;
            let counts_of = models
                .iter()
                .map(|params| {
                    counts(
                        task,
                        data.holdout_x,
                        data.holdout_y,
                        params.view(),
                        task.score_bins,
                    )
                })
                .collect::<Result<_, _>>()?;
            // Calibration applies to probabilities only.
            let calibration = if task.model.predicts_probabilities() {
                models
                    .iter()
                    .map(|params| {
                        if data.holdout_y.is_empty() {
                            return Ok(CalibrationCounts::default());
                        }
                        let scores =
                            medfed_model::predict(task.model, data.holdout_x, params.view())?;
                        CalibrationCounts::from_scores(scores.view(), data.holdout_y)
                    })
                    .collect::<Result<_, medfed_model::ModelError>>()?
            } else {
                Vec::new()
            };
            Answer::Send(Submission::Evaluation(EvaluationReport {
                step,
                models: counts_of,
                calibration,
            }))
        }
        Instruction::CollectHistograms { plan } => {
            Answer::Send(Submission::Histograms(HistogramReport {
                step,
                histograms: site.histograms(task, plan)?,
            }))
        }
        Instruction::Finished { reason } => Answer::Finished(reason.clone()),
        Instruction::Wait => Answer::Nothing,
        // Answered by `crate::secagg`, which keeps the round's state.
        Instruction::SecAggKeys { .. }
        | Instruction::SecAggShares { .. }
        | Instruction::SecAggMask { .. }
        | Instruction::SecAggCheck { .. }
        | Instruction::SecAggUnmask { .. } => Answer::Nothing,
    })
}

/// Aggregate evaluation counts of `params` on held-out rows, of the kind the
/// task's model reports: confusion counts and score histograms, or sums of
/// errors. Never per-row values.
fn counts(
    task: &Task,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    params: ArrayView1<'_, f64>,
    bins: u32,
) -> Result<EvaluationCounts, DataError> {
    if y.is_empty() {
        return Ok(EvaluationCounts::empty(task.model, bins as usize)?);
    }
    Ok(medfed_model::evaluate(
        task.model,
        x,
        y,
        params,
        bins as usize,
    )?)
}
