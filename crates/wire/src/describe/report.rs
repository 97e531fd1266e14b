//! Summaries of what members submit: the signed `Submission` unwrapped to
//! its body, and each report (statistics, histograms, updates, exact-fit
//! terms, baselines, evaluations, secure-aggregation stages, privacy
//! spends, budget refusals and policy refusals).

use prost::Message as _;
use serde_json::{Value, json};

use super::{Type, embedded_json, hex, number, parameters, sha256_hex, vector};
use crate::pb;
use crate::pb::submission::Body;

/// The summary of a logged `Submission` whose body is of type `expected`
/// (members' reports are only ever logged inside one).
pub(super) fn submission(expected: Type, bytes: &[u8]) -> Result<Value, String> {
    let body = pb::Submission::decode(bytes)
        .map_err(|e| e.to_string())?
        .body
        .ok_or_else(|| "a submission that names no kind".to_owned())?;
    let (found, summary) = match body {
        Body::Statistics(m) => (Type::StatisticsReport, statistics(m)),
        Body::Histograms(m) => (Type::HistogramReport, histograms(m)),
        Body::Update(m) => (Type::ModelUpdate, model_update(m)),
        Body::NewtonTerms(m) => (Type::NewtonTermsReport, newton_terms(m)),
        Body::NormalTerms(m) => (Type::NormalTermsReport, normal_terms(m)),
        Body::Baseline(m) => (Type::BaselineModel, baseline(m)),
        Body::Evaluation(m) => (Type::EvaluationReport, evaluation(m)),
        Body::Secagg(m) => (Type::SecAggSubmission, secagg_submission(m)),
        Body::BudgetRefusal(m) => (Type::BudgetRefusal, budget_refusal(m)),
        Body::Refusal(m) => (Type::Refusal, refusal(m)),
    };
    if found == expected {
        Ok(summary)
    } else {
        Err(format!("a submission of a {}", found.name()))
    }
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

fn model_update(message: pb::ModelUpdate) -> Value {
    let pb::ModelUpdate {
        task_id,
        step,
        round,
        delta,
        num_rows,
        train_loss,
        evaluation,
        privacy_spend,
    } = message;
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

/// One model's held-out counts, in the flat layout of the task's model
/// kind (rows first).
fn evaluation_counts(counts: pb::EvaluationCounts) -> Value {
    let pb::EvaluationCounts { values } = counts;
    json!({ "flat_counts": vector(&values) })
}

pub(super) fn spend(spend: pb::PrivacySpend) -> Value {
    let pb::PrivacySpend {
        round,
        noise_multiplier,
        epsilon,
        delta,
        rounds,
        budget_epsilon,
        noise,
    } = spend;
    let noise = pb::SpendNoise::try_from(noise).map_or_else(
        |_| format!("unknown ({noise})"),
        |n| n.as_str_name().to_owned(),
    );
    json!({
        "round": round,
        "noise_multiplier": number(noise_multiplier),
        "epsilon": number(epsilon),
        "delta": number(delta),
        "rounds": rounds,
        "budget_epsilon": number(budget_epsilon),
        "noise": noise,
    })
}

fn budget_refusal(message: pb::BudgetRefusal) -> Value {
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
    } = message;
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

fn refusal(message: pb::Refusal) -> Value {
    let pb::Refusal {
        task_id,
        step,
        rule,
        reason,
    } = message;
    json!({ "task_id": task_id, "step": step, "rule": rule, "reason": reason })
}

fn newton_terms(message: pb::NewtonTermsReport) -> Value {
    let pb::NewtonTermsReport {
        task_id,
        step,
        round,
        n,
        loss_sum,
        gradient_sum,
        hessian_upper,
        evaluation,
    } = message;
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

fn normal_terms(message: pb::NormalTermsReport) -> Value {
    let pb::NormalTermsReport {
        task_id,
        step,
        n,
        xtx_upper,
        xty,
        yty,
        y_sum,
    } = message;
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

fn baseline(message: pb::BaselineModel) -> Value {
    let pb::BaselineModel {
        task_id,
        step,
        model,
        num_rows,
    } = message;
    json!({
        "task_id": task_id,
        "step": step,
        "model": model.map(parameters),
        "num_rows": num_rows,
    })
}

fn evaluation(message: pb::EvaluationReport) -> Value {
    let pb::EvaluationReport {
        task_id,
        step,
        models,
        calibration,
    } = message;
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

pub(super) fn signed(message: pb::Signed) -> Value {
    let pb::Signed { body, signature } = message;
    json!({
        "body_bytes": body.len(),
        "body_sha256": sha256_hex(&body),
        "signature": hex(&signature),
    })
}

fn secagg_submission(message: pb::SecAggSubmission) -> Value {
    let pb::SecAggSubmission {
        task_id,
        step,
        round,
        stage,
        payload,
        evaluation,
        privacy_spend,
    } = message;
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
