//! Checked conversion of the task specification, and the task's own
//! consistency checks (names, sizes, ranges, and the settings of secure
//! aggregation and differential privacy).

use medfed_model::ModelKind;

use super::{Result, WireError, check_name};
use crate::limits::{MAX_FEATURES, MAX_LOCAL_STEPS, MAX_MEMBERS, MAX_ROUNDS, MAX_SCORE_BINS};
use crate::message::{SecureAggregation, Task, TrainingAlgorithm};
use crate::pb;
use crate::preprocessing::{check_columns, columns_from_json, to_json};

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
        // A DP task announcing an exact algorithm (Newton, the closed form)
        // is well formed; whether a site takes part in it is its policy's
        // call (`node::policy`, which refuses it by rule `task` in a signed
        // notice, and the coordinator's configuration never makes one).
        crate::privacy::validate_differential_privacy(settings)?;
    }
    if task.algorithm == TrainingAlgorithm::ClosedForm && !task.model.has_closed_form() {
        return Err(WireError::Invalid {
            field: "task.algorithm",
            reason: format!("a {} model has no closed form", task.model),
        });
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

/// `task`'s canonical wire encoding: the bytes its approval hash is taken
/// of (re-encoded from the validated task, so equal tasks give equal bytes).
pub fn encode_task(task: &Task) -> Vec<u8> {
    prost::Message::encode_to_vec(&task_to_pb(task))
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
        algorithm: algorithm_to_pb(task.algorithm).into(),
        baselines: task.baselines,
        evaluate_every: task.evaluate_every,
    }
}

/// The wire value of a training algorithm.
fn algorithm_to_pb(algorithm: TrainingAlgorithm) -> pb::TrainingAlgorithm {
    match algorithm {
        TrainingAlgorithm::Fedavg => pb::TrainingAlgorithm::Fedavg,
        TrainingAlgorithm::Fedprox => pb::TrainingAlgorithm::Fedprox,
        TrainingAlgorithm::Newton => pb::TrainingAlgorithm::Newton,
        TrainingAlgorithm::ClosedForm => pb::TrainingAlgorithm::ClosedForm,
    }
}

/// The training algorithm a wire value names.
fn algorithm_from_pb(value: i32) -> Result<TrainingAlgorithm> {
    Ok(match pb::TrainingAlgorithm::try_from(value) {
        Ok(pb::TrainingAlgorithm::Fedavg) => TrainingAlgorithm::Fedavg,
        Ok(pb::TrainingAlgorithm::Fedprox) => TrainingAlgorithm::Fedprox,
        Ok(pb::TrainingAlgorithm::Newton) => TrainingAlgorithm::Newton,
        Ok(pb::TrainingAlgorithm::ClosedForm) => TrainingAlgorithm::ClosedForm,
        Ok(pb::TrainingAlgorithm::Unspecified) | Err(_) => {
            return Err(WireError::Invalid {
                field: "task.algorithm",
                reason: format!(
                    "{value} is not a training algorithm (1 fedavg, 2 fedprox, 3 newton, \
                     4 closed-form)"
                ),
            });
        }
    })
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
        algorithm,
        baselines,
        evaluate_every,
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
        algorithm: algorithm_from_pb(algorithm)?,
        baselines,
        evaluate_every,
    };
    validate_task(&task)?;
    Ok(task)
}
