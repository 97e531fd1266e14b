//! Summaries of the instructions the coordinator sends, secure-aggregation
//! stages included (their medfed-secure bytes as sizes and digests).

use medfed_secure::secagg::{ConsistencyRequest, UnmaskRequest};
use serde_json::{Value, json};

use super::{embedded_json, hex, number, parameters};
use crate::pb;

pub(super) fn instruction(instruction: pb::Instruction) -> Value {
    use pb::instruction::Kind;
    let pb::Instruction { step, kind } = instruction;
    let (name, body) = match kind {
        None => ("none", Value::Null),
        Some(Kind::Statistics(pb::CollectStatistics {})) => ("collect-statistics", json!({})),
        Some(Kind::Histograms(pb::CollectHistograms { plan_json })) => (
            "collect-histograms",
            json!({ "plan": embedded_json(&plan_json) }),
        ),
        Some(Kind::Train(pb::TrainRound {
            round,
            global,
            preprocessing: s,
            prox_mu,
            evaluate,
        })) => (
            "train",
            json!({
                "round": round,
                "global": global.map(parameters),
                "preprocessing": s.map(preprocessing),
                "prox_mu": number(prox_mu),
                "evaluate": evaluate,
            }),
        ),
        Some(Kind::Newton(pb::NewtonRound {
            round,
            params,
            preprocessing: s,
            evaluate,
        })) => (
            "newton-round",
            json!({
                "round": round,
                "params": params.map(parameters),
                "preprocessing": s.map(preprocessing),
                "evaluate": evaluate,
            }),
        ),
        Some(Kind::Normal(pb::NormalEquations { preprocessing: s })) => (
            "normal-equations",
            json!({ "preprocessing": s.map(preprocessing) }),
        ),
        Some(Kind::Baseline(pb::TrainBaseline {
            preprocessing: s,
            steps,
        })) => (
            "train-baseline",
            json!({ "preprocessing": s.map(preprocessing), "steps": steps }),
        ),
        Some(Kind::Evaluate(pb::Evaluate {
            preprocessing: s,
            models,
        })) => (
            "evaluate",
            json!({
                "preprocessing": s.map(preprocessing),
                "models": models.into_iter().map(parameters).collect::<Vec<_>>(),
            }),
        ),
        Some(Kind::Finished(pb::Finished { reason })) => ("finished", json!({ "reason": reason })),
        Some(Kind::Wait(pb::Wait {})) => ("wait", json!({})),
        Some(Kind::SecaggKeys(pb::SecAggKeys {
            train,
            roster,
            newton,
            normal,
            statistics,
            histograms,
            evaluate,
        })) => (
            "secagg-keys-request",
            json!({
                "work": if newton.is_some() {
                    "newton-round"
                } else if normal.is_some() {
                    "normal-equations"
                } else if statistics.is_some() {
                    "collect-statistics"
                } else if histograms.is_some() {
                    "collect-histograms"
                } else if evaluate.is_some() {
                    "evaluate"
                } else {
                    "train"
                },
                "round": train
                    .as_ref()
                    .map(|t| t.round)
                    .or(newton.as_ref().map(|n| n.round))
                    .or(normal.as_ref().map(|_| 1))
                    .unwrap_or(0),
                "global": train
                    .and_then(|t| t.global)
                    .or(newton.and_then(|n| n.params))
                    .map(parameters),
                "roster": roster.iter().map(|m| json!({
                    "name": m.name,
                    "certificate_sha256": hex(&m.certificate_sha256),
                    "certificate_bytes": m.certificate.len(),
                })).collect::<Vec<_>>(),
            }),
        ),
        Some(Kind::SecaggShares(pb::SecAggShares { round, key_list })) => (
            "secagg-key-list",
            json!({ "round": round, "key_list_bytes": key_list.len() }),
        ),
        Some(Kind::SecaggMask(pb::SecAggMask { round, routed })) => (
            "secagg-routed-shares",
            json!({
                "round": round,
                "routed": routed.iter().map(|r| json!({
                    "member": r.member,
                    "bytes": r.shares.len(),
                })).collect::<Vec<_>>(),
            }),
        ),
        Some(Kind::SecaggCheck(pb::SecAggCheck { round, request })) => (
            "secagg-consistency-request",
            json!({
                "round": round,
                "survivors": ConsistencyRequest::from_bytes(&request)
                    .map(|r| json!(r.survivors))
                    .unwrap_or(Value::Null),
                "request_bytes": request.len(),
            }),
        ),
        Some(Kind::SecaggUnmask(pb::SecAggUnmask { round, request })) => (
            "secagg-unmask-request",
            json!({
                "round": round,
                "request_bytes": request.len(),
                // Public: who the survivors are and who signed the set.
                "survivors": UnmaskRequest::from_bytes(&request)
                    .map(|r| json!(r.survivors))
                    .unwrap_or(Value::Null),
                "signers": UnmaskRequest::from_bytes(&request)
                    .map(|r| json!(r.signatures.iter().map(|s| s.sender).collect::<Vec<_>>()))
                    .unwrap_or(Value::Null),
            }),
        ),
    };
    json!({ "step": step, "instruction": name, "body": body })
}

pub(super) fn preprocessing(p: pb::Preprocessing) -> Value {
    let pb::Preprocessing { json } = p;
    embedded_json(&json)
}
