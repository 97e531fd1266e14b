//! Reading a decrypted payload for a person: [`describe_payload`] decodes
//! the protobuf message a kind names (see [`message_types`]) and summarises
//! it as JSON, vectors as dimension, L2 norm and first values; anything
//! else becomes its length and a hex prefix (`render` prints such a
//! summary as indented text).
//!
//! The generated types stop here: every message is destructured field by
//! field, so a new proto field fails to compile until it is shown. A
//! member's submission is logged as the `Submission` it signed; its body
//! is shown as the message of its kind.

use prost::Message as _;
use serde::Serialize;
use serde_json::{Value, json};

use crate::kinds;
use crate::pb;
use crate::pb::submission::Body;

/// How many leading values of a vector a summary shows.
const FIRST_VALUES: usize = 5;
/// How many names of a list a summary shows.
const FIRST_NAMES: usize = 10;
/// How many leading bytes an undecoded payload shows.
const HEX_PREFIX_BYTES: usize = 32;

/// A payload, decoded and summarised.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DecodedPayload {
    /// Full protobuf name of the type it decoded as (`medfed.v2.ModelUpdate`),
    /// `text` for a UTF-8 refusal message, or `unknown`.
    pub message_type: String,
    /// Length of the payload in bytes.
    pub bytes: usize,
    /// The summary: the message's fields, or `hex_prefix` (and `note`) for
    /// unknown payloads.
    pub content: Value,
}

/// What a payload is decoded as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    JoinRequest,
    JoinResponse,
    TaskSpec,
    Instruction,
    Preprocessing,
    HistogramReport,
    Parameters,
    StatisticsReport,
    ModelUpdate,
    BaselineModel,
    EvaluationReport,
    NewtonTermsReport,
    NormalTermsReport,
    Signed,
    SecAggSubmission,
    PrivacySpend,
    BudgetRefusal,
    Text,
}

impl Type {
    fn name(self) -> &'static str {
        match self {
            Type::JoinRequest => "medfed.v2.JoinRequest",
            Type::JoinResponse => "medfed.v2.JoinResponse",
            Type::TaskSpec => "medfed.v2.TaskSpec",
            Type::Instruction => "medfed.v2.Instruction",
            Type::Preprocessing => "medfed.v2.Preprocessing",
            Type::HistogramReport => "medfed.v2.HistogramReport",
            Type::Parameters => "medfed.v2.Parameters",
            Type::StatisticsReport => "medfed.v2.StatisticsReport",
            Type::ModelUpdate => "medfed.v2.ModelUpdate",
            Type::BaselineModel => "medfed.v2.BaselineModel",
            Type::EvaluationReport => "medfed.v2.EvaluationReport",
            Type::NewtonTermsReport => "medfed.v2.NewtonTermsReport",
            Type::NormalTermsReport => "medfed.v2.NormalTermsReport",
            Type::Signed => "medfed.v2.Signed",
            Type::SecAggSubmission => "medfed.v2.SecAggSubmission",
            Type::PrivacySpend => "medfed.v2.PrivacySpend",
            Type::BudgetRefusal => "medfed.v2.BudgetRefusal",
            Type::Text => "text",
        }
    }
}

/// The message kinds `show` knows and the types tried for each, in order:
/// the first that decodes wins.
const TABLE: &[(&str, &[Type])] = &[
    (kinds::JOIN, &[Type::JoinRequest]),
    (kinds::TASK, &[Type::JoinResponse, Type::TaskSpec]),
    ("instruction", &[Type::Instruction]),
    (kinds::COLLECT_STATISTICS, &[Type::Instruction]),
    ("global-model", &[Type::Instruction, Type::Parameters]),
    (kinds::TRAIN, &[Type::Instruction]),
    (kinds::TRAIN_BASELINE, &[Type::Instruction]),
    (kinds::EVALUATE, &[Type::Instruction]),
    (kinds::NEWTON_ROUND, &[Type::Instruction]),
    (kinds::NORMAL_EQUATIONS, &[Type::Instruction]),
    (kinds::FINISHED, &[Type::Instruction]),
    (kinds::WAIT, &[Type::Instruction]),
    ("preprocessing", &[Type::Instruction, Type::Preprocessing]),
    (kinds::STATISTICS, &[Type::StatisticsReport]),
    (kinds::COLLECT_HISTOGRAMS, &[Type::Instruction]),
    (kinds::HISTOGRAMS, &[Type::HistogramReport]),
    (kinds::UPDATE, &[Type::ModelUpdate]),
    (kinds::BASELINE, &[Type::BaselineModel]),
    (kinds::EVALUATION, &[Type::EvaluationReport]),
    (kinds::NEWTON_TERMS, &[Type::NewtonTermsReport]),
    (kinds::NORMAL_TERMS, &[Type::NormalTermsReport]),
    ("signed", &[Type::Signed]),
    (kinds::SECAGG_KEYS_REQUEST, &[Type::Instruction]),
    (kinds::SECAGG_KEY_LIST, &[Type::Instruction]),
    (kinds::SECAGG_ROUTED_SHARES, &[Type::Instruction]),
    (kinds::SECAGG_UNMASK_REQUEST, &[Type::Instruction]),
    (kinds::SECAGG, &[Type::SecAggSubmission]),
    ("parameters", &[Type::Parameters]),
    (kinds::REFUSAL, &[Type::Text]),
    (kinds::PRIVACY_SPEND, &[Type::PrivacySpend]),
    (kinds::BUDGET_REFUSAL, &[Type::BudgetRefusal]),
];

/// The kinds [`describe_payload`] decodes, each with the protobuf types it
/// tries in order (`text`: UTF-8 text, e.g. a refusal's status message).
pub fn message_types() -> Vec<(&'static str, Vec<&'static str>)> {
    TABLE
        .iter()
        .map(|(kind, types)| (*kind, types.iter().map(|t| t.name()).collect()))
        .collect()
}

/// Decodes and summarises the payload of an entry of kind `kind`.
pub fn describe_payload(kind: &str, bytes: &[u8]) -> DecodedPayload {
    let candidates = TABLE
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(&[][..], |(_, types)| *types);
    let mut failures = Vec::new();
    for &candidate in candidates {
        match decode_as(candidate, bytes) {
            Ok(content) => {
                return DecodedPayload {
                    message_type: candidate.name().to_owned(),
                    bytes: bytes.len(),
                    content,
                };
            }
            Err(reason) => failures.push(format!("not a {}: {reason}", candidate.name())),
        }
    }
    let note = if candidates.is_empty() {
        format!("no message type is known for kind `{kind}`")
    } else {
        failures.join("; ")
    };
    DecodedPayload {
        message_type: "unknown".to_owned(),
        bytes: bytes.len(),
        content: json!({
            "hex_prefix": hex(&bytes[..bytes.len().min(HEX_PREFIX_BYTES)]),
            "note": note,
        }),
    }
}

fn decode_as(kind: Type, bytes: &[u8]) -> Result<Value, String> {
    let error = |e: prost::DecodeError| e.to_string();
    let unwrapped;
    let bytes = match kind {
        Type::StatisticsReport
        | Type::HistogramReport
        | Type::ModelUpdate
        | Type::NewtonTermsReport
        | Type::NormalTermsReport
        | Type::BaselineModel
        | Type::EvaluationReport
        | Type::SecAggSubmission
        | Type::BudgetRefusal => {
            unwrapped = submission_body(kind, bytes)?;
            &unwrapped[..]
        }
        _ => bytes,
    };
    Ok(match kind {
        Type::JoinRequest => {
            let pb::JoinRequest {
                task_id,
                protocol_version,
            } = pb::JoinRequest::decode(bytes).map_err(error)?;
            json!({ "task_id": task_id, "protocol_version": protocol_version })
        }
        Type::JoinResponse => {
            let pb::JoinResponse { task, coordinator } =
                pb::JoinResponse::decode(bytes).map_err(error)?;
            json!({ "task": task.map(task_spec), "coordinator": coordinator })
        }
        Type::TaskSpec => task_spec(pb::TaskSpec::decode(bytes).map_err(error)?),
        Type::Instruction => instruction(pb::Instruction::decode(bytes).map_err(error)?),
        Type::Preprocessing => preprocessing(pb::Preprocessing::decode(bytes).map_err(error)?),
        Type::HistogramReport => histograms(pb::HistogramReport::decode(bytes).map_err(error)?),
        Type::Parameters => parameters(pb::Parameters::decode(bytes).map_err(error)?),
        Type::StatisticsReport => statistics(pb::StatisticsReport::decode(bytes).map_err(error)?),
        Type::ModelUpdate => {
            let pb::ModelUpdate {
                task_id,
                step,
                round,
                delta,
                num_rows,
                train_loss,
                evaluation,
                privacy_spend,
            } = pb::ModelUpdate::decode(bytes).map_err(error)?;
            json!({
                "task_id": task_id,
                "step": step,
                "round": round,
                "delta": delta.map(parameters),
                "num_rows": num_rows,
                "train_loss": number(train_loss),
                "evaluation": evaluation.map(evaluation_counts),
                "privacy_spend": privacy_spend.map(spend),
            })
        }
        Type::PrivacySpend => spend(pb::PrivacySpend::decode(bytes).map_err(error)?),
        Type::BudgetRefusal => {
            let pb::BudgetRefusal {
                task_id,
                step,
                round,
                spent_epsilon,
                delta,
                epsilon_after_round,
                budget_epsilon,
                rounds_spent,
                reason,
            } = pb::BudgetRefusal::decode(bytes).map_err(error)?;
            // An unknown value is shown as its number: the auditor sees
            // what was sent, not a guess.
            let reason = match pb::budget_refusal::Reason::try_from(reason) {
                Ok(pb::budget_refusal::Reason::BudgetSpent) => json!("budget-spent"),
                Ok(pb::budget_refusal::Reason::NoBudget) => json!("no-budget"),
                Err(_) => json!(reason),
            };
            json!({
                "task_id": task_id,
                "step": step,
                "round": round,
                "spent_epsilon": number(spent_epsilon),
                "delta": number(delta),
                "epsilon_after_round": number(epsilon_after_round),
                "budget_epsilon": number(budget_epsilon),
                "rounds_spent": rounds_spent,
                "reason": reason,
            })
        }
        Type::NewtonTermsReport => {
            let pb::NewtonTermsReport {
                task_id,
                step,
                round,
                n,
                loss_sum,
                gradient_sum,
                hessian_upper,
                evaluation,
            } = pb::NewtonTermsReport::decode(bytes).map_err(error)?;
            json!({
                "task_id": task_id,
                "step": step,
                "round": round,
                "n": n,
                "loss_sum": number(loss_sum),
                "gradient_sum": vector(&gradient_sum),
                "hessian_upper": vector(&hessian_upper),
                "evaluation": evaluation.map(evaluation_counts),
            })
        }
        Type::NormalTermsReport => {
            let pb::NormalTermsReport {
                task_id,
                step,
                n,
                xtx_upper,
                xty,
                yty,
                y_sum,
            } = pb::NormalTermsReport::decode(bytes).map_err(error)?;
            json!({
                "task_id": task_id,
                "step": step,
                "n": n,
                "xtx_upper": vector(&xtx_upper),
                "xty": vector(&xty),
                "yty": number(yty),
                "y_sum": number(y_sum),
            })
        }
        Type::BaselineModel => {
            let pb::BaselineModel {
                task_id,
                step,
                model,
                num_rows,
            } = pb::BaselineModel::decode(bytes).map_err(error)?;
            json!({
                "task_id": task_id,
                "step": step,
                "model": model.map(parameters),
                "num_rows": num_rows,
            })
        }
        Type::EvaluationReport => {
            let pb::EvaluationReport {
                task_id,
                step,
                models,
                calibration,
            } = pb::EvaluationReport::decode(bytes).map_err(error)?;
            let calibration: Vec<Value> = calibration
                .into_iter()
                .map(
                    |pb::Calibration {
                         count,
                         prediction_sum,
                         label_sum,
                     }| {
                        json!({
                            "count": count,
                            "prediction_sum": prediction_sum.into_iter().map(number).collect::<Vec<_>>(),
                            "label_sum": label_sum,
                        })
                    },
                )
                .collect();
            json!({
                "task_id": task_id,
                "step": step,
                "models": models.into_iter().map(evaluation_counts).collect::<Vec<_>>(),
                "calibration": calibration,
            })
        }
        Type::Signed => {
            let pb::Signed { body, signature } = pb::Signed::decode(bytes).map_err(error)?;
            json!({
                "body_bytes": body.len(),
                "body_sha256": sha256_hex(&body),
                "signature": hex(&signature),
            })
        }
        Type::SecAggSubmission => {
            let pb::SecAggSubmission {
                task_id,
                step,
                round,
                stage,
                payload,
                evaluation,
                privacy_spend,
            } = pb::SecAggSubmission::decode(bytes).map_err(error)?;
            let stage = pb::SecAggStage::try_from(stage).map_or_else(
                |_| format!("unknown ({stage})"),
                |s| s.as_str_name().to_owned(),
            );
            // The payload is masked or encrypted: its size and digest say
            // all that can be said without the other members' secrets.
            json!({
                "task_id": task_id,
                "step": step,
                "round": round,
                "stage": stage,
                "payload_bytes": payload.len(),
                "payload_sha256": sha256_hex(&payload),
                "evaluation": evaluation.is_some(),
                "privacy_spend": privacy_spend.map(spend),
            })
        }
        Type::Text => match std::str::from_utf8(bytes) {
            Ok(text) if !text.chars().any(|c| c.is_control() && c != '\n') => json!(text),
            _ => return Err("not printable UTF-8 text".into()),
        },
    })
}

fn task_spec(spec: pb::TaskSpec) -> Value {
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
    })
}

fn spend(spend: pb::PrivacySpend) -> Value {
    let pb::PrivacySpend {
        round,
        noise_multiplier,
        epsilon,
        delta,
        rounds,
        budget_epsilon,
    } = spend;
    json!({
        "round": round,
        "noise_multiplier": number(noise_multiplier),
        "epsilon": number(epsilon),
        "delta": number(delta),
        "rounds": rounds,
        "budget_epsilon": number(budget_epsilon),
    })
}

fn instruction(instruction: pb::Instruction) -> Value {
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
        Some(Kind::SecaggUnmask(pb::SecAggUnmask { round, request })) => (
            "secagg-unmask-request",
            json!({ "round": round, "request_bytes": request.len() }),
        ),
    };
    json!({ "step": step, "instruction": name, "body": body })
}

/// JSON text carried inside a message, parsed for display (or kept as text
/// when it does not parse).
fn embedded_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn preprocessing(p: pb::Preprocessing) -> Value {
    let pb::Preprocessing { json } = p;
    embedded_json(&json)
}

fn histograms(report: pb::HistogramReport) -> Value {
    let pb::HistogramReport {
        task_id,
        step,
        histograms_json,
    } = report;
    // Summarised per column: range, bins and total count, not every bin.
    let columns = match serde_json::from_str::<Vec<Option<Value>>>(&histograms_json) {
        Ok(columns) => Value::Array(
            columns
                .into_iter()
                .map(|h| match h {
                    Some(h) => {
                        let counts = h["counts"].as_array().cloned().unwrap_or_default();
                        let total: u64 = counts.iter().filter_map(Value::as_u64).sum();
                        json!({
                            "min": h["min"],
                            "max": h["max"],
                            "bins": counts.len(),
                            "total": total,
                        })
                    }
                    None => Value::Null,
                })
                .collect(),
        ),
        Err(_) => Value::String(histograms_json),
    };
    json!({ "task_id": task_id, "step": step, "histograms": columns })
}

fn parameters(p: pb::Parameters) -> Value {
    let pb::Parameters { values } = p;
    vector(&values)
}

fn statistics(report: pb::StatisticsReport) -> Value {
    let pb::StatisticsReport {
        task_id,
        step,
        summaries_json,
        train_rows,
        holdout_rows,
        rows_missing_target,
    } = report;
    json!({
        "task_id": task_id,
        "step": step,
        "summaries": embedded_json(&summaries_json),
        "train_rows": train_rows,
        "holdout_rows": holdout_rows,
        "rows_missing_target": rows_missing_target,
    })
}

/// One model's held-out counts, in the flat layout of the task's model
/// kind (rows first).
fn evaluation_counts(counts: pb::EvaluationCounts) -> Value {
    let pb::EvaluationCounts { values } = counts;
    json!({ "flat_counts": vector(&values) })
}

/// Dimension, L2 norm and first values of a vector.
fn vector(values: &[f64]) -> Value {
    let norm = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    json!({
        "dimension": values.len(),
        "l2_norm": number(norm),
        "first": values.iter().take(FIRST_VALUES).map(|v| number(*v)).collect::<Vec<_>>(),
    })
}

/// Count and first entries of a list of names.
fn names(list: &[String]) -> Value {
    json!({ "count": list.len(), "first": &list[..list.len().min(FIRST_NAMES)] })
}

/// A float as JSON; NaN and infinities as strings (JSON has no such numbers).
/// `bytes` as lowercase hex.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// SHA-256 of `bytes`, in lowercase hex.
fn sha256_hex(bytes: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The encoded body of a logged `Submission`, if it is of type `expected`.
fn submission_body(expected: Type, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let body = pb::Submission::decode(bytes)
        .map_err(|e| e.to_string())?
        .body
        .ok_or_else(|| "a submission that names no kind".to_owned())?;
    let (found, inner) = match body {
        Body::Statistics(m) => (Type::StatisticsReport, m.encode_to_vec()),
        Body::Histograms(m) => (Type::HistogramReport, m.encode_to_vec()),
        Body::Update(m) => (Type::ModelUpdate, m.encode_to_vec()),
        Body::NewtonTerms(m) => (Type::NewtonTermsReport, m.encode_to_vec()),
        Body::NormalTerms(m) => (Type::NormalTermsReport, m.encode_to_vec()),
        Body::Baseline(m) => (Type::BaselineModel, m.encode_to_vec()),
        Body::Evaluation(m) => (Type::EvaluationReport, m.encode_to_vec()),
        Body::Secagg(m) => (Type::SecAggSubmission, m.encode_to_vec()),
        Body::BudgetRefusal(m) => (Type::BudgetRefusal, m.encode_to_vec()),
    };
    if found == expected {
        Ok(inner)
    } else {
        Err(format!("a submission of a {}", found.name()))
    }
}

fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or_else(|| Value::String(x.to_string()), Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submitted(body: Body) -> Vec<u8> {
        pb::Submission { body: Some(body) }.encode_to_vec()
    }

    #[test]
    fn update_is_summarised() {
        let update = pb::ModelUpdate {
            task_id: "t".into(),
            step: 4,
            round: 2,
            delta: Some(pb::Parameters {
                values: vec![3.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            }),
            num_rows: 10,
            train_loss: 0.5,
            ..pb::ModelUpdate::default()
        };
        let decoded = describe_payload("update", &submitted(Body::Update(update)));
        assert_eq!(decoded.message_type, "medfed.v2.ModelUpdate");
        assert_eq!(decoded.content["delta"]["dimension"], 7);
        assert_eq!(decoded.content["delta"]["l2_norm"], 5.0);
        assert_eq!(
            decoded.content["delta"]["first"],
            json!([3.0, 4.0, 0.0, 0.0, 0.0])
        );
    }

    #[test]
    fn instruction_and_task() {
        let global = pb::Instruction {
            step: 3,
            kind: Some(pb::instruction::Kind::Train(pb::TrainRound {
                round: 1,
                global: Some(pb::Parameters { values: vec![1.0] }),
                preprocessing: None,
                ..pb::TrainRound::default()
            })),
        };
        let decoded = describe_payload("global-model", &global.encode_to_vec());
        assert_eq!(decoded.message_type, "medfed.v2.Instruction");
        assert_eq!(decoded.content["instruction"], "train");
        let task = pb::JoinResponse {
            task: Some(pb::TaskSpec {
                task_id: "sepsis".into(),
                features: vec!["age".into()],
                members: vec!["a".into(), "b".into()],
                ..pb::TaskSpec::default()
            }),
            coordinator: "coordinator".into(),
        };
        let decoded = describe_payload("task", &task.encode_to_vec());
        assert_eq!(decoded.message_type, "medfed.v2.JoinResponse");
        assert_eq!(decoded.content["task"]["members"]["count"], 2);
    }

    #[test]
    fn newton_terms_are_summarised() {
        let terms = pb::NewtonTermsReport {
            task_id: "t".into(),
            round: 2,
            n: 100,
            gradient_sum: vec![0.0, 3.0, 4.0],
            hessian_upper: vec![1.0; 6],
            ..pb::NewtonTermsReport::default()
        };
        let decoded = describe_payload("newton-terms", &submitted(Body::NewtonTerms(terms)));
        assert_eq!(decoded.message_type, "medfed.v2.NewtonTermsReport");
        assert_eq!(decoded.content["gradient_sum"]["l2_norm"], 5.0);
        assert_eq!(decoded.content["hessian_upper"]["dimension"], 6);
    }

    #[test]
    fn budget_refusals_show_their_reason() {
        let spent = pb::BudgetRefusal {
            task_id: "t".into(),
            round: 4,
            delta: 1e-5,
            budget_epsilon: 2.0,
            ..pb::BudgetRefusal::default()
        };
        let decoded = describe_payload("budget-refusal", &submitted(Body::BudgetRefusal(spent)));
        assert_eq!(decoded.message_type, "medfed.v2.BudgetRefusal");
        assert_eq!(decoded.content["reason"], "budget-spent");
        assert_eq!(decoded.content["budget_epsilon"], 2.0);
        let none = pb::BudgetRefusal {
            task_id: "t".into(),
            reason: pb::budget_refusal::Reason::NoBudget.into(),
            ..pb::BudgetRefusal::default()
        };
        let decoded = describe_payload(
            "budget-refusal",
            &submitted(Body::BudgetRefusal(none.clone())),
        );
        assert_eq!(decoded.content["reason"], "no-budget");
        let unknown = pb::BudgetRefusal { reason: 9, ..none };
        let decoded = describe_payload("budget-refusal", &submitted(Body::BudgetRefusal(unknown)));
        assert_eq!(decoded.content["reason"], 9);
    }

    #[test]
    fn unknown_kinds_and_garbage_show_length_and_hex() {
        let decoded = describe_payload("mystery", &[0xde, 0xad]);
        assert_eq!(decoded.message_type, "unknown");
        assert_eq!(decoded.bytes, 2);
        assert_eq!(decoded.content["hex_prefix"], "dead");
        let decoded = describe_payload("update", &[0xff; 40]);
        assert_eq!(decoded.message_type, "unknown");
        assert_eq!(
            decoded.content["hex_prefix"].as_str().map(str::len),
            Some(64)
        );
    }

    #[test]
    fn a_submission_of_another_kind_is_not_shown_as_this_one() {
        let update = pb::ModelUpdate::default();
        let decoded = describe_payload("newton-terms", &submitted(Body::Update(update)));
        assert_eq!(decoded.message_type, "unknown");
        let note = decoded.content["note"].as_str().unwrap_or_default();
        assert!(
            note.contains("a submission of a medfed.v2.ModelUpdate"),
            "{note}"
        );
    }
}
