//! Checked conversions between generated protobuf messages and domain types.
//!
//! Every `from_pb` function destructures the whole message, so a field added
//! to the proto cannot be silently ignored, and validates it against the task:
//! task id, dimensions, finite values and sizes. A message that fails is
//! refused whole.

use medfed_model::{CalibrationCounts, ModelKind};
use ndarray::Array1;

use crate::limits::{
    MAX_FEATURES, MAX_LOCAL_STEPS, MAX_MEMBERS, MAX_NAME_BYTES, MAX_ROUNDS, MAX_SCORE_BINS,
};
use crate::message::{
    BaselineModel, EvaluationCounts, EvaluationReport, Instruction, ModelUpdate, SecureAggregation,
    StatisticsReport, Step, Task,
};
use crate::pb;
use crate::preprocessing::{
    check_columns, columns_from_json, plan_from_pb, plan_to_pb, preprocessing_from_pb,
    preprocessing_to_pb, summaries_from_json, to_json,
};

/// Why a wire message was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum WireError {
    /// The message names another task.
    #[error("message is for task {got:?}, expected task {expected:?}")]
    TaskMismatch {
        /// This task's id.
        expected: String,
        /// The id the message carried.
        got: String,
    },
    /// A required field is absent.
    #[error("{field} is missing")]
    MissingField {
        /// Dotted path of the field.
        field: &'static str,
    },
    /// A vector has the wrong length.
    #[error("{field} has {got} values, expected {expected}")]
    Dimension {
        /// Dotted path of the field.
        field: &'static str,
        /// Length the task requires.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("{field}[{index}] is not a finite number")]
    NonFinite {
        /// Dotted path of the field.
        field: &'static str,
        /// Position of the first bad value.
        index: usize,
    },
    /// A size is over its bound.
    #[error("{field} is {got}, above the limit of {max}")]
    TooLarge {
        /// Dotted path of the field.
        field: &'static str,
        /// The bound.
        max: u64,
        /// What was received.
        got: u64,
    },
    /// A value is outside its allowed range.
    #[error("{field} is invalid: {reason}")]
    Invalid {
        /// Dotted path of the field.
        field: &'static str,
        /// What is allowed.
        reason: String,
    },
}

impl WireError {
    /// Dotted path of the field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            WireError::TaskMismatch { .. } => None,
            WireError::MissingField { field }
            | WireError::Dimension { field, .. }
            | WireError::NonFinite { field, .. }
            | WireError::TooLarge { field, .. }
            | WireError::Invalid { field, .. } => Some(field),
        }
    }
}

type Result<T> = std::result::Result<T, WireError>;

pub(crate) fn check_task_id(task: &Task, got: String) -> Result<()> {
    if got == task.task_id {
        Ok(())
    } else {
        Err(WireError::TaskMismatch {
            expected: task.task_id.clone(),
            got: truncate(got),
        })
    }
}

/// Keeps a peer-controlled string short enough to quote in an error.
fn truncate(mut text: String) -> String {
    if text.len() > 64 {
        let mut end = 64;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn check_name(field: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(WireError::Invalid {
            field,
            reason: "must not be empty".into(),
        });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(WireError::TooLarge {
            field,
            max: MAX_NAME_BYTES as u64,
            got: name.len() as u64,
        });
    }
    Ok(())
}

/// Checks that `values` has `expected` entries, all finite.
///
/// # Errors
/// [`WireError::Dimension`] or [`WireError::NonFinite`] naming `field`.
pub(crate) fn check_finite(field: &'static str, values: &[f64], expected: usize) -> Result<()> {
    if values.len() != expected {
        return Err(WireError::Dimension {
            field,
            expected,
            got: values.len(),
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(WireError::NonFinite { field, index });
    }
    Ok(())
}

/// `values` as a vector, checked as [`check_finite`] does.
pub(crate) fn finite_vector(
    field: &'static str,
    values: Vec<f64>,
    expected: usize,
) -> Result<Array1<f64>> {
    check_finite(field, &values, expected)?;
    Ok(Array1::from(values))
}

fn parameters_from_pb(
    field: &'static str,
    parameters: Option<pb::Parameters>,
    task: &Task,
) -> Result<Array1<f64>> {
    let pb::Parameters { values } = parameters.ok_or(WireError::MissingField { field })?;
    finite_vector(field, values, task.dimension())
}

fn parameters_to_pb(values: &Array1<f64>) -> pb::Parameters {
    pb::Parameters {
        values: values.to_vec(),
    }
}

fn model_kind_from_pb(value: i32) -> Result<ModelKind> {
    match pb::ModelKind::try_from(value) {
        Ok(pb::ModelKind::Logistic) => Ok(ModelKind::Logistic),
        Ok(pb::ModelKind::Linear) => Ok(ModelKind::Linear),
        Ok(pb::ModelKind::Poisson) => Ok(ModelKind::Poisson),
        _ => Err(WireError::Invalid {
            field: "task.model",
            reason: format!("unknown model kind {value}"),
        }),
    }
}

fn model_kind_to_pb(kind: ModelKind) -> pb::ModelKind {
    match kind {
        ModelKind::Logistic => pb::ModelKind::Logistic,
        ModelKind::Linear => pb::ModelKind::Linear,
        ModelKind::Poisson => pb::ModelKind::Poisson,
    }
}

/// Checks a task's own consistency (used by both sides).
///
/// # Errors
/// Names the first field that is empty, too large or out of range.
pub fn validate_task(task: &Task) -> Result<()> {
    check_name("task.task_id", &task.task_id)?;
    check_name("task.target", &task.target)?;
    if task.features.is_empty() {
        return Err(WireError::Invalid {
            field: "task.features",
            reason: "at least one feature is required".into(),
        });
    }
    if task.features.len() > MAX_FEATURES {
        return Err(WireError::TooLarge {
            field: "task.features",
            max: MAX_FEATURES as u64,
            got: task.features.len() as u64,
        });
    }
    for feature in &task.features {
        check_name("task.features", feature)?;
        if *feature == task.target {
            return Err(WireError::Invalid {
                field: "task.features",
                reason: format!("the target {:?} cannot also be a feature", task.target),
            });
        }
    }
    if task.members.is_empty() || task.members.len() > MAX_MEMBERS {
        return Err(WireError::Invalid {
            field: "task.members",
            reason: format!("between 1 and {MAX_MEMBERS} members are required"),
        });
    }
    for member in &task.members {
        check_name("task.members", member)?;
    }
    if !(task.l2.is_finite() && task.l2 >= 0.0) {
        return Err(WireError::Invalid {
            field: "task.l2",
            reason: "must be a finite number >= 0".into(),
        });
    }
    if !(task.learning_rate.is_finite() && task.learning_rate > 0.0) {
        return Err(WireError::Invalid {
            field: "task.learning_rate",
            reason: "must be a finite number > 0".into(),
        });
    }
    if !(0.0..1.0).contains(&task.holdout_fraction) {
        return Err(WireError::Invalid {
            field: "task.holdout_fraction",
            reason: "must be in [0, 1)".into(),
        });
    }
    let bounded = [
        ("task.rounds", task.rounds, MAX_ROUNDS),
        ("task.local_steps", task.local_steps, MAX_LOCAL_STEPS),
        ("task.score_bins", task.score_bins, MAX_SCORE_BINS),
    ];
    for (field, value, max) in bounded {
        if value == 0 {
            return Err(WireError::Invalid {
                field,
                reason: "must be at least 1".into(),
            });
        }
        if value > max {
            return Err(WireError::TooLarge {
                field,
                max: max.into(),
                got: value.into(),
            });
        }
    }
    if task.score_bins < 2 {
        return Err(WireError::Invalid {
            field: "task.score_bins",
            reason: "must be at least 2".into(),
        });
    }
    check_columns(&task.columns, &task.features)?;
    if let Some(settings) = &task.secure_aggregation {
        crate::secagg::validate_secure_aggregation(settings, task.members.len())?;
    }
    if let Some(settings) = &task.differential_privacy {
        crate::privacy::validate_differential_privacy(settings)?;
    }
    if task.dimension() > MAX_FEATURES + 1 {
        return Err(WireError::TooLarge {
            field: "task.columns",
            max: MAX_FEATURES as u64,
            got: (task.dimension() - 1) as u64,
        });
    }
    Ok(())
}

/// Converts a task for the wire.
pub fn task_to_pb(task: &Task) -> pb::TaskSpec {
    pb::TaskSpec {
        task_id: task.task_id.clone(),
        features: task.features.clone(),
        columns_json: to_json(&task.columns),
        target: task.target.clone(),
        model: model_kind_to_pb(task.model).into(),
        l2: task.l2,
        local_steps: task.local_steps,
        learning_rate: task.learning_rate,
        holdout_fraction: task.holdout_fraction,
        split_seed: task.split_seed,
        rounds: task.rounds,
        score_bins: task.score_bins,
        members: task.members.clone(),
        secure_aggregation: task
            .secure_aggregation
            .map(|settings| pb::SecureAggregation {
                threshold: settings.threshold,
                fixed_point_bits: settings.fixed_point_bits,
            }),
        differential_privacy: task
            .differential_privacy
            .as_ref()
            .map(crate::privacy::dp_to_pb),
    }
}

/// Converts and validates a task received from the coordinator.
///
/// # Errors
/// Any field out of range (see [`validate_task`]).
pub fn task_from_pb(spec: pb::TaskSpec) -> Result<Task> {
    let pb::TaskSpec {
        task_id,
        features,
        columns_json,
        target,
        model,
        l2,
        local_steps,
        learning_rate,
        holdout_fraction,
        split_seed,
        rounds,
        score_bins,
        members,
        secure_aggregation,
        differential_privacy,
    } = spec;
    let columns = columns_from_json(&columns_json, &features)?;
    let task = Task {
        task_id,
        features,
        columns,
        target,
        model: model_kind_from_pb(model)?,
        l2,
        local_steps,
        learning_rate,
        holdout_fraction,
        split_seed,
        rounds,
        score_bins,
        members,
        secure_aggregation: secure_aggregation.map(
            |pb::SecureAggregation {
                 threshold,
                 fixed_point_bits,
             }| SecureAggregation {
                threshold,
                fixed_point_bits,
            },
        ),
        differential_privacy: differential_privacy.map(crate::privacy::dp_from_pb),
    };
    validate_task(&task)?;
    Ok(task)
}

/// Converts an instruction for the wire.
pub fn step_to_pb(step: &Step) -> pb::Instruction {
    pb::Instruction {
        step: step.step,
        kind: Some(kind_to_pb(&step.instruction, None)),
    }
}

/// Converts an instruction for the wire as `member` receives it: of the
/// shares routed in a secure-aggregation round, only those encrypted for
/// `member` (every other instruction is the same for all).
pub fn step_to_pb_for(step: &Step, member: &str) -> pb::Instruction {
    pb::Instruction {
        step: step.step,
        kind: Some(kind_to_pb(&step.instruction, Some(member))),
    }
}

/// The protobuf kind of `instruction`; `recipient` filters routed shares.
pub(crate) fn kind_to_pb(
    instruction: &Instruction,
    recipient: Option<&str>,
) -> pb::instruction::Kind {
    use pb::instruction::Kind;
    if let Some(kind) = crate::secagg::instruction_to_pb(instruction, recipient) {
        return kind;
    }
    match instruction {
        Instruction::CollectStatistics => Kind::Statistics(pb::CollectStatistics {}),
        Instruction::CollectHistograms { plan } => Kind::Histograms(plan_to_pb(plan)),
        Instruction::Train {
            round,
            global,
            preprocessing,
            prox_mu,
            evaluate,
        } => Kind::Train(pb::TrainRound {
            round: *round,
            global: Some(parameters_to_pb(global)),
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
            prox_mu: *prox_mu,
            evaluate: *evaluate,
        }),
        Instruction::Newton {
            round,
            params,
            preprocessing,
            evaluate,
        } => Kind::Newton(pb::NewtonRound {
            round: *round,
            params: Some(parameters_to_pb(params)),
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
            evaluate: *evaluate,
        }),
        Instruction::Normal { preprocessing } => Kind::Normal(pb::NormalEquations {
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
        }),
        Instruction::Baseline {
            preprocessing,
            steps,
        } => Kind::Baseline(pb::TrainBaseline {
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
            steps: *steps,
        }),
        Instruction::Evaluate {
            preprocessing,
            models,
        } => Kind::Evaluate(pb::Evaluate {
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
            models: models.iter().map(parameters_to_pb).collect(),
        }),
        Instruction::Finished { reason } => Kind::Finished(pb::Finished {
            reason: reason.clone(),
        }),
        Instruction::Wait => Kind::Wait(pb::Wait {}),
        Instruction::SecAggKeys { .. }
        | Instruction::SecAggShares { .. }
        | Instruction::SecAggMask { .. }
        | Instruction::SecAggUnmask { .. } => {
            unreachable!("secure-aggregation instructions are converted above")
        }
    }
}

/// Converts and validates an instruction received from the coordinator.
///
/// # Errors
/// A missing kind, or vectors that do not fit the task.
pub fn step_from_pb(instruction: pb::Instruction, task: &Task) -> Result<Step> {
    use pb::instruction::Kind;
    let pb::Instruction { step, kind } = instruction;
    let instruction = match kind.ok_or(WireError::MissingField {
        field: "instruction.kind",
    })? {
        Kind::Statistics(pb::CollectStatistics {}) => Instruction::CollectStatistics,
        Kind::Histograms(request) => Instruction::CollectHistograms {
            plan: plan_from_pb(request, task)?,
        },
        Kind::Train(pb::TrainRound {
            round,
            global,
            preprocessing,
            prox_mu,
            evaluate,
        }) => {
            check_round("train.round", round, task)?;
            if !(prox_mu.is_finite() && prox_mu >= 0.0) {
                return Err(WireError::Invalid {
                    field: "train.prox_mu",
                    reason: "must be a finite number >= 0".into(),
                });
            }
            Instruction::Train {
                round,
                global: parameters_from_pb("train.global", global, task)?,
                preprocessing: preprocessing_from_pb("train.preprocessing", preprocessing, task)?,
                prox_mu,
                evaluate,
            }
        }
        Kind::Newton(pb::NewtonRound {
            round,
            params,
            preprocessing,
            evaluate,
        }) => {
            check_round("newton.round", round, task)?;
            Instruction::Newton {
                round,
                params: parameters_from_pb("newton.params", params, task)?,
                preprocessing: preprocessing_from_pb("newton.preprocessing", preprocessing, task)?,
                evaluate,
            }
        }
        Kind::Normal(pb::NormalEquations { preprocessing }) => Instruction::Normal {
            preprocessing: preprocessing_from_pb("normal.preprocessing", preprocessing, task)?,
        },
        Kind::Baseline(pb::TrainBaseline {
            preprocessing,
            steps,
        }) => {
            let max = u64::from(MAX_ROUNDS) * u64::from(MAX_LOCAL_STEPS);
            if u64::from(steps) > max {
                return Err(WireError::TooLarge {
                    field: "baseline.steps",
                    max,
                    got: steps.into(),
                });
            }
            Instruction::Baseline {
                preprocessing: preprocessing_from_pb(
                    "baseline.preprocessing",
                    preprocessing,
                    task,
                )?,
                steps,
            }
        }
        Kind::Evaluate(pb::Evaluate {
            preprocessing,
            models,
        }) => {
            let max = task.members.len() + 1;
            if models.is_empty() || models.len() > max {
                return Err(WireError::Invalid {
                    field: "evaluate.models",
                    reason: format!("expected 1 to {max} models, got {}", models.len()),
                });
            }
            Instruction::Evaluate {
                preprocessing: preprocessing_from_pb(
                    "evaluate.preprocessing",
                    preprocessing,
                    task,
                )?,
                models: models
                    .into_iter()
                    .map(|m| parameters_from_pb("evaluate.models", Some(m), task))
                    .collect::<Result<_>>()?,
            }
        }
        Kind::Finished(pb::Finished { reason }) => Instruction::Finished {
            reason: truncate(reason),
        },
        Kind::Wait(pb::Wait {}) => Instruction::Wait,
        kind @ (Kind::SecaggKeys(_)
        | Kind::SecaggShares(_)
        | Kind::SecaggMask(_)
        | Kind::SecaggUnmask(_)) => crate::secagg::instruction_from_pb(step, kind, task)?,
    };
    Ok(Step { step, instruction })
}

fn check_round(field: &'static str, round: u32, task: &Task) -> Result<()> {
    if round == 0 || round > task.rounds {
        return Err(WireError::Invalid {
            field,
            reason: format!("round {round} is outside 1..={}", task.rounds),
        });
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            task_id: "t1".into(),
            features: vec!["a".into(), "b".into()],
            columns: vec![
                medfed_model::ColumnSpec::numeric("a"),
                medfed_model::ColumnSpec::numeric("b"),
            ],
            target: "y".into(),
            model: ModelKind::Logistic,
            l2: 0.01,
            local_steps: 5,
            learning_rate: 0.5,
            holdout_fraction: 0.25,
            split_seed: 7,
            rounds: 10,
            score_bins: 4,
            members: vec!["h1".into(), "h2".into()],
            secure_aggregation: None,
            differential_privacy: None,
        }
    }

    #[test]
    fn task_round_trips() {
        let t = task();
        assert_eq!(task_from_pb(task_to_pb(&t)), Ok(t));
    }

    #[test]
    fn task_with_target_as_feature_is_refused() {
        let mut t = task();
        t.features.push("y".into());
        t.columns.push(medfed_model::ColumnSpec::numeric("y"));
        let err = task_from_pb(task_to_pb(&t)).unwrap_err();
        assert!(
            err.to_string().contains("cannot also be a feature"),
            "{err}"
        );
    }

    /// A preprocessor fitted on a few made-up rows of `task`'s columns.
    fn fitted(task: &Task) -> medfed_model::FittedPreprocessor {
        let raw = ndarray::array![[1.0, 2.0], [3.0, f64::NAN], [2.0, 7.0]];
        let summaries = medfed_model::summarize(&task.columns, raw.view()).unwrap();
        medfed_model::FittedPreprocessor::fit(&task.columns, &summaries, None)
            .unwrap()
            .0
    }

    #[test]
    fn statistics_round_trip_and_bad_summaries_are_refused() {
        let t = task();
        let raw = ndarray::array![[1.0, 2.0], [3.0, f64::NAN]];
        let report = StatisticsReport {
            step: 1,
            summaries: medfed_model::summarize(&t.columns, raw.view()).unwrap(),
            train_rows: 2,
            holdout_rows: 1,
            rows_missing_target: 0,
        };
        let wire = statistics_to_pb(&report, "t1");
        assert_eq!(statistics_from_pb(wire.clone(), &t), Ok(report));
        let mut lying = wire.clone();
        lying.train_rows = 5;
        let err = statistics_from_pb(lying, &t).unwrap_err();
        assert!(err.to_string().contains("summarises 2 rows"), "{err}");
        let mut garbage = wire;
        garbage.summaries_json = "[{\"rows\": 2, \"extra\": 1}]".into();
        assert!(statistics_from_pb(garbage, &t).is_err());
    }

    #[test]
    fn a_preprocessor_for_another_task_is_refused() {
        let t = task();
        let mut other = t.clone();
        other.features = vec!["a".into(), "c".into()];
        other.columns = vec![
            medfed_model::ColumnSpec::numeric("a"),
            medfed_model::ColumnSpec::numeric("c"),
        ];
        let step = Step {
            step: 2,
            instruction: Instruction::Normal {
                preprocessing: fitted(&other),
            },
        };
        let err = step_from_pb(step_to_pb(&step), &t).unwrap_err();
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn instruction_round_trips() {
        let t = task();
        let preprocessing = fitted(&t);
        for instruction in [
            Instruction::CollectStatistics,
            Instruction::Train {
                round: 3,
                global: Array1::from(vec![0.1, -0.2, 0.3]),
                preprocessing: preprocessing.clone(),
                prox_mu: 0.01,
                evaluate: true,
            },
            Instruction::Newton {
                round: 2,
                params: Array1::from(vec![0.1, -0.2, 0.3]),
                preprocessing: preprocessing.clone(),
                evaluate: false,
            },
            Instruction::Normal {
                preprocessing: preprocessing.clone(),
            },
            Instruction::Evaluate {
                preprocessing: preprocessing.clone(),
                models: vec![Array1::zeros(3), Array1::ones(3)],
            },
            Instruction::Finished {
                reason: "done".into(),
            },
            Instruction::Wait,
        ] {
            let step = Step {
                step: 9,
                instruction,
            };
            assert_eq!(step_from_pb(step_to_pb(&step), &t), Ok(step));
        }
    }

    fn update(delta: Vec<f64>) -> pb::ModelUpdate {
        pb::ModelUpdate {
            task_id: "t1".into(),
            step: 3,
            round: 1,
            delta: Some(pb::Parameters { values: delta }),
            num_rows: 10,
            train_loss: 0.6,
            evaluation: None,
            privacy_spend: None,
        }
    }

    #[test]
    fn update_checks_dimension_finiteness_and_task() {
        let t = task();
        assert!(update_from_pb(update(vec![0.0, 1.0, 2.0]), &t).is_ok());
        assert_eq!(
            update_from_pb(update(vec![0.0, 1.0]), &t),
            Err(WireError::Dimension {
                field: "update.delta",
                expected: 3,
                got: 2
            })
        );
        assert_eq!(
            update_from_pb(update(vec![0.0, f64::NAN, 2.0]), &t),
            Err(WireError::NonFinite {
                field: "update.delta",
                index: 1
            })
        );
        let mut other = update(vec![0.0; 3]);
        other.task_id = "t2".into();
        assert!(matches!(
            update_from_pb(other, &t),
            Err(WireError::TaskMismatch { .. })
        ));
        let mut missing = update(vec![0.0; 3]);
        missing.delta = None;
        assert_eq!(
            update_from_pb(missing, &t),
            Err(WireError::MissingField {
                field: "update.delta"
            })
        );
    }

    #[test]
    fn evaluation_checks_histogram_size_and_consistency() {
        let t = task();
        let counts = medfed_model::BinaryCounts::from_scores(
            ndarray::aview1(&[0.1, 0.9, 0.6]),
            ndarray::aview1(&[0.0, 1.0, 0.0]),
            4,
        )
        .unwrap();
        let calibration = CalibrationCounts::from_scores(
            ndarray::aview1(&[0.1, 0.9, 0.6]),
            ndarray::aview1(&[0.0, 1.0, 0.0]),
        )
        .unwrap();
        let report = EvaluationReport {
            step: 4,
            models: vec![EvaluationCounts::Binary(counts.clone())],
            calibration: vec![calibration.clone()],
        };
        let wire = evaluation_to_pb(&report, "t1");
        assert_eq!(evaluation_from_pb(wire.clone(), &t, 1), Ok(report));
        assert!(evaluation_from_pb(wire.clone(), &t, 2).is_err());
        // Calibration counts that do not add up are refused too.
        let mut lying = wire;
        lying.calibration[0].label_sum[9] += 5;
        assert!(evaluation_from_pb(lying, &t, 1).is_err());

        let mut bad = counts;
        bad.tp += 1;
        let wire = evaluation_to_pb(
            &EvaluationReport {
                step: 4,
                models: vec![EvaluationCounts::Binary(bad)],
                calibration: vec![calibration],
            },
            "t1",
        );
        assert!(evaluation_from_pb(wire, &t, 1).is_err());
    }

    /// Counts travel in the flat layout of the task's model kind: a Poisson
    /// task's count counts round-trip, and counts of another kind (another
    /// length) are refused with the length expected.
    #[test]
    fn evaluation_counts_follow_the_task_model() {
        let mut t = task();
        t.model = ModelKind::Poisson;
        let counts = medfed_model::CountCounts::from_predictions(
            ndarray::aview1(&[0.5, 2.0, 1.5]),
            ndarray::aview1(&[0.0, 3.0, 1.0]),
        )
        .unwrap();
        let report = EvaluationReport {
            step: 4,
            models: vec![EvaluationCounts::Count(counts)],
            calibration: vec![],
        };
        let wire = evaluation_to_pb(&report, "t1");
        assert_eq!(evaluation_from_pb(wire, &t, 1), Ok(report));
        let binary = EvaluationReport {
            step: 4,
            models: vec![EvaluationCounts::Binary(
                medfed_model::BinaryCounts::from_scores(
                    ndarray::aview1(&[0.1, 0.9]),
                    ndarray::aview1(&[0.0, 1.0]),
                    4,
                )
                .unwrap(),
            )],
            calibration: vec![],
        };
        let refused = evaluation_from_pb(evaluation_to_pb(&binary, "t1"), &t, 1);
        assert!(
            matches!(
                refused,
                Err(WireError::Dimension {
                    field: "evaluation.models.values",
                    expected: 5,
                    ..
                })
            ),
            "{refused:?}"
        );
    }
}
