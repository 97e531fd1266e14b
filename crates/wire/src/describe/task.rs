//! Summaries of the task specification and of the join exchange that
//! carries it.

use serde_json::{Value, json};

use super::{embedded_json, names, number};
use crate::pb;

pub(super) fn join_request(message: pb::JoinRequest) -> Value {
    let pb::JoinRequest {
        task_id,
        protocol_version,
    } = message;
    json!({ "task_id": task_id, "protocol_version": protocol_version })
}

pub(super) fn join_response(message: pb::JoinResponse) -> Value {
    let pb::JoinResponse { task, coordinator } = message;
    json!({ "task": task.map(task_spec), "coordinator": coordinator })
}

pub(super) fn task_spec(spec: pb::TaskSpec) -> Value {
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
    let algorithm = pb::TrainingAlgorithm::try_from(algorithm).map_or_else(
        |_| format!("unknown ({algorithm})"),
        |a| a.as_str_name().to_owned(),
    );
    let model = pb::ModelKind::try_from(model).map_or_else(
        |_| format!("unknown ({model})"),
        |m| m.as_str_name().to_owned(),
    );
    json!({
        "task_id": task_id,
        "features": names(&features),
        "columns": embedded_json(&columns_json),
        "target": target,
        "model": model,
        "l2": number(l2),
        "local_steps": local_steps,
        "learning_rate": number(learning_rate),
        "holdout_fraction": number(holdout_fraction),
        "split_seed": split_seed,
        "rounds": rounds,
        "score_bins": score_bins,
        "members": names(&members),
        "secure_aggregation": secure_aggregation.map(|s| json!({
            "threshold": s.threshold,
            "fixed_point_bits": s.fixed_point_bits,
        })),
        "differential_privacy": differential_privacy.map(|d| json!({
            "noise_multiplier": number(d.noise_multiplier),
            "clip_norm": number(d.clip_norm),
        })),
        "algorithm": algorithm,
        "baselines": baselines,
        "evaluate_every": evaluate_every,
    })
}
