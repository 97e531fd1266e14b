//! Tests of the payload summaries: reports, instructions and tasks
//! decoded, and unknown or mismatched payloads shown as bytes.

use super::*;
use crate::pb::submission::Body;

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

#[test]
fn the_consistency_stage_is_named() {
    use medfed_secure::secagg::{ConsistencyRequest, ConsistencySignature, UnmaskRequest};
    let check = pb::Instruction {
        step: 8,
        kind: Some(pb::instruction::Kind::SecaggCheck(pb::SecAggCheck {
            round: 1,
            request: ConsistencyRequest {
                survivors: vec![0, 2],
            }
            .to_bytes(),
        })),
    };
    let decoded = describe_payload(kinds::SECAGG_CONSISTENCY_REQUEST, &check.encode_to_vec());
    assert_eq!(decoded.message_type, "medfed.v2.Instruction");
    assert_eq!(decoded.content["instruction"], "secagg-consistency-request");
    assert_eq!(decoded.content["body"]["survivors"], json!([0, 2]));
    let signature = ConsistencySignature {
        sender: 2,
        seen: vec![0, 1, 2],
        signature: [0; 64],
    };
    let unmask = pb::Instruction {
        step: 9,
        kind: Some(pb::instruction::Kind::SecaggUnmask(pb::SecAggUnmask {
            round: 1,
            request: UnmaskRequest {
                survivors: vec![0, 2],
                signatures: vec![signature.clone()],
            }
            .to_bytes(),
        })),
    };
    let decoded = describe_payload(kinds::SECAGG_UNMASK_REQUEST, &unmask.encode_to_vec());
    assert_eq!(decoded.content["body"]["signers"], json!([2]));
    let submission = pb::SecAggSubmission {
        task_id: "t".into(),
        step: 8,
        round: 1,
        stage: pb::SecAggStage::Consistency.into(),
        payload: signature.to_bytes(),
        ..Default::default()
    };
    let decoded = describe_payload(kinds::SECAGG, &submitted(Body::Secagg(submission)));
    assert_eq!(decoded.content["stage"], "SEC_AGG_STAGE_CONSISTENCY");
}
