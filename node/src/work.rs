//! What a node computes for each instruction. Only aggregates and model
//! vectors come out of here: per-feature statistics, a parameter delta, a
//! site-alone model, evaluation counts.

use medfed_model::{BinaryCounts, ModelKind, RegressionCounts};
use medfed_wire::{
    BaselineModel, EvaluationCounts, EvaluationReport, Instruction, ModelUpdate, StatisticsReport,
    Step, Task,
};
use ndarray::Array1;

use crate::data::{DataError, SiteData};

/// A node's answer to one instruction.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Per-feature statistics.
    Statistics(StatisticsReport),
    /// A training round's update.
    Update(ModelUpdate),
    /// A site-alone model.
    Baseline(BaselineModel),
    /// Evaluation counts.
    Evaluation(EvaluationReport),
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
        Instruction::CollectStatistics => Answer::Statistics(StatisticsReport {
            step,
            features: site.statistics(),
            train_rows: site.train.y.len() as u64,
            holdout_rows: site.holdout.y.len() as u64,
            rows_missing_target: site.missing_target as u64,
        }),
        Instruction::Train {
            round,
            global,
            standardization,
        } => {
            let data = site.prepared(standardization)?;
            let (local, loss) = medfed_model::gradient_descent(
                task.model,
                data.train_x,
                data.train_y,
                global.view(),
                task.l2,
                task.learning_rate,
                task.local_steps,
            )?;
            Answer::Update(ModelUpdate {
                step,
                round: *round,
                delta: local - global,
                num_rows: data.train_y.len() as u64,
                train_loss: loss,
            })
        }
        Instruction::Baseline {
            standardization,
            steps,
        } => {
            let data = site.prepared(standardization)?;
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
            Answer::Baseline(BaselineModel {
                step,
                model,
                num_rows: data.train_y.len() as u64,
            })
        }
        Instruction::Evaluate {
            standardization,
            models,
        } => {
            let data = site.prepared(standardization)?;
            let mut counts = Vec::with_capacity(models.len());
            for params in models {
                counts.push(if data.holdout_y.is_empty() {
                    empty_counts(task)?
                } else {
                    let scores = medfed_model::predict(task.model, data.holdout_x, params.view())?;
                    match task.model {
                        ModelKind::Logistic => EvaluationCounts::Binary(BinaryCounts::from_scores(
                            scores.view(),
                            data.holdout_y,
                            task.score_bins as usize,
                        )?),
                        ModelKind::Linear => EvaluationCounts::Regression(
                            RegressionCounts::from_predictions(scores.view(), data.holdout_y)?,
                        ),
                    }
                });
            }
            Answer::Evaluation(EvaluationReport {
                step,
                models: counts,
            })
        }
        Instruction::Finished { reason } => Answer::Finished(reason.clone()),
        Instruction::Wait => Answer::Nothing,
    })
}

fn empty_counts(task: &Task) -> Result<EvaluationCounts, DataError> {
    Ok(match task.model {
        ModelKind::Logistic => {
            EvaluationCounts::Binary(BinaryCounts::new(task.score_bins as usize)?)
        }
        ModelKind::Linear => EvaluationCounts::Regression(RegressionCounts::default()),
    })
}
