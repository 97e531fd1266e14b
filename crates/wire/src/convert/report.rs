//! Checked conversions of the reports a node sends in clear: statistics,
//! model updates, baseline models and evaluations (with their held-out
//! counts).

use medfed_model::CalibrationCounts;

use super::{Result, WireError, check_task_id, parameters_from_pb, parameters_to_pb};
use crate::message::{
    BaselineModel, EvaluationCounts, EvaluationReport, ModelUpdate, StatisticsReport, Task,
};
use crate::pb;
use crate::preprocessing::{summaries_from_json, to_json};

/// Converts a statistics report for the wire.
pub fn statistics_to_pb(report: &StatisticsReport, task_id: &str) -> pb::StatisticsReport {
    pb::StatisticsReport {
        task_id: task_id.to_owned(),
        step: report.step,
        summaries_json: to_json(&report.summaries),
        train_rows: report.train_rows,
        holdout_rows: report.holdout_rows,
        rows_missing_target: report.rows_missing_target,
    }
}

/// Converts and validates a node's statistics report.
///
/// # Errors
/// Wrong task, a wrong column count, or summaries that cannot come from the
/// reported training rows.
pub fn statistics_from_pb(report: pb::StatisticsReport, task: &Task) -> Result<StatisticsReport> {
    let pb::StatisticsReport {
        task_id,
        step,
        summaries_json,
        train_rows,
        holdout_rows,
        rows_missing_target,
    } = report;
    check_task_id(task, task_id)?;
    let summaries = summaries_from_json(&summaries_json, task, train_rows)?;
    Ok(StatisticsReport {
        step,
        summaries,
        train_rows,
        holdout_rows,
        rows_missing_target,
    })
}

/// Converts a model update for the wire.
pub fn update_to_pb(update: &ModelUpdate, task_id: &str) -> pb::ModelUpdate {
    pb::ModelUpdate {
        task_id: task_id.to_owned(),
        step: update.step,
        round: update.round,
        delta: Some(parameters_to_pb(&update.delta)),
        num_rows: update.num_rows,
        train_loss: update.train_loss,
        evaluation: update.evaluation.as_ref().map(counts_to_pb),
        privacy_spend: update
            .privacy_spend
            .as_ref()
            .map(crate::privacy::spend_to_pb),
    }
}

/// Converts and validates a node's model update.
///
/// # Errors
/// Wrong task, wrong dimension, non-finite values, no rows; in a DP task,
/// a missing or invalid spend, or a row count or loss other than 0 (they
/// are data-dependent and not covered by the guarantee); outside one, a
/// spend.
pub fn update_from_pb(update: pb::ModelUpdate, task: &Task) -> Result<ModelUpdate> {
    let pb::ModelUpdate {
        task_id,
        step,
        round,
        delta,
        num_rows,
        train_loss,
        evaluation,
        privacy_spend,
    } = update;
    check_task_id(task, task_id)?;
    let delta = parameters_from_pb("update.delta", delta, task)?;
    if task.differential_privacy.is_some() {
        let spend = privacy_spend.ok_or(WireError::MissingField {
            field: "update.privacy_spend",
        })?;
        let spend = crate::privacy::spend_from_pb(spend, task, round)?;
        if num_rows != 0 || train_loss != 0.0 {
            return Err(WireError::Invalid {
                field: "update.num_rows",
                reason: "a DP update carries no row count or training loss (both must be 0)".into(),
            });
        }
        return Ok(ModelUpdate {
            step,
            round,
            delta,
            num_rows,
            train_loss,
            evaluation: evaluation
                .map(|c| counts_from_pb(c, task, task.round_score_bins()))
                .transpose()?,
            privacy_spend: Some(spend),
        });
    }
    if privacy_spend.is_some() {
        return Err(WireError::Invalid {
            field: "update.privacy_spend",
            reason: "this task does not use differential privacy".into(),
        });
    }
    if num_rows == 0 {
        return Err(WireError::Invalid {
            field: "update.num_rows",
            reason: "an update must come from at least one row".into(),
        });
    }
    if !(train_loss.is_finite() && train_loss >= 0.0) {
        return Err(WireError::Invalid {
            field: "update.train_loss",
            reason: "must be a finite number >= 0".into(),
        });
    }
    Ok(ModelUpdate {
        step,
        round,
        delta,
        num_rows,
        train_loss,
        evaluation: evaluation
            .map(|c| counts_from_pb(c, task, task.round_score_bins()))
            .transpose()?,
        privacy_spend: None,
    })
}

/// Converts a baseline model for the wire.
pub fn baseline_to_pb(baseline: &BaselineModel, task_id: &str) -> pb::BaselineModel {
    pb::BaselineModel {
        task_id: task_id.to_owned(),
        step: baseline.step,
        model: Some(parameters_to_pb(&baseline.model)),
        num_rows: baseline.num_rows,
    }
}

/// Converts and validates a node's baseline model.
///
/// # Errors
/// Wrong task, wrong dimension or non-finite values.
pub fn baseline_from_pb(baseline: pb::BaselineModel, task: &Task) -> Result<BaselineModel> {
    let pb::BaselineModel {
        task_id,
        step,
        model,
        num_rows,
    } = baseline;
    check_task_id(task, task_id)?;
    Ok(BaselineModel {
        step,
        model: parameters_from_pb("baseline.model", model, task)?,
        num_rows,
    })
}

/// Converts one model's evaluation counts for the wire, in the flat layout
/// of its kind.
pub(crate) fn counts_to_pb(counts: &EvaluationCounts) -> pb::EvaluationCounts {
    let mut values = Vec::new();
    counts.write_flat(&mut values);
    pb::EvaluationCounts { values }
}

/// Converts an evaluation report for the wire.
pub fn evaluation_to_pb(report: &EvaluationReport, task_id: &str) -> pb::EvaluationReport {
    pb::EvaluationReport {
        task_id: task_id.to_owned(),
        step: report.step,
        models: report.models.iter().map(counts_to_pb).collect(),
        calibration: report
            .calibration
            .iter()
            .map(|c| pb::Calibration {
                count: c.count.clone(),
                prediction_sum: c.prediction_sum.clone(),
                label_sum: c.label_sum.clone(),
            })
            .collect(),
    }
}

/// Converts and validates a node's evaluation report.
///
/// # Errors
/// Wrong task, a count of models other than `expected_models`, counts of the
/// wrong kind for the task's model, histograms of the wrong size, or counts
/// that do not add up.
pub fn evaluation_from_pb(
    report: pb::EvaluationReport,
    task: &Task,
    expected_models: usize,
) -> Result<EvaluationReport> {
    let pb::EvaluationReport {
        task_id,
        step,
        models,
        calibration,
    } = report;
    check_task_id(task, task_id)?;
    if models.len() != expected_models {
        return Err(WireError::Dimension {
            field: "evaluation.models",
            expected: expected_models,
            got: models.len(),
        });
    }
    let converted = models
        .into_iter()
        .map(|counts| counts_from_pb(counts, task, task.score_bins))
        .collect::<Result<Vec<_>>>()?;
    let expected_calibration = if task.model.predicts_probabilities() {
        expected_models
    } else {
        0
    };
    if calibration.len() != expected_calibration {
        return Err(WireError::Dimension {
            field: "evaluation.calibration",
            expected: expected_calibration,
            got: calibration.len(),
        });
    }
    let calibration = calibration
        .into_iter()
        .map(
            |pb::Calibration {
                 count,
                 prediction_sum,
                 label_sum,
             }| {
                let counts = CalibrationCounts {
                    count,
                    prediction_sum,
                    label_sum,
                };
                counts.validate().map_err(|e| WireError::Invalid {
                    field: "evaluation.calibration",
                    reason: e.to_string(),
                })?;
                Ok(counts)
            },
        )
        .collect::<Result<Vec<_>>>()?;
    Ok(EvaluationReport {
        step,
        models: converted,
        calibration,
    })
}

/// Converts and validates one model's evaluation counts: the flat layout of
/// the task's model kind at `score_bins` (its length, whole counts), and
/// counts that add up.
///
/// # Errors
/// See above.
pub(crate) fn counts_from_pb(
    counts: pb::EvaluationCounts,
    task: &Task,
    score_bins: u32,
) -> Result<EvaluationCounts> {
    let pb::EvaluationCounts { values } = counts;
    let expected = EvaluationCounts::flat_len(task.model, score_bins as usize);
    if values.len() != expected {
        return Err(WireError::Dimension {
            field: "evaluation.models.values",
            expected,
            got: values.len(),
        });
    }
    let invalid = |e: medfed_model::ModelError| WireError::Invalid {
        field: "evaluation.models",
        reason: format!("not valid {} counts: {e}", task.model),
    };
    let counts =
        EvaluationCounts::read_flat(task.model, &values, score_bins as usize).map_err(invalid)?;
    counts.validate().map_err(invalid)?;
    Ok(counts)
}
