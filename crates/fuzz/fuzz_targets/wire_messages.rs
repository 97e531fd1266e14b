//! Bytes a peer sends, decoded as each protobuf message and converted to
//! domain types against a fixed task: must never panic, only refuse.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfed_wire::{convert, pb, preprocessing, terms};
use prost::Message;

fn task() -> medfed_wire::Task {
    let features: Vec<String> = vec!["age".into(), "chol".into(), "cp".into()];
    let mut columns: Vec<medfed_model::ColumnSpec> = features
        .iter()
        .map(|f| medfed_model::ColumnSpec::numeric(f.clone()))
        .collect();
    columns[1].unknown_values = vec![0.0];
    columns[1].missing = medfed_model::preprocess::Impute::Median;
    columns[2] = medfed_model::ColumnSpec::categorical("cp", vec![1, 2, 3, 4]);
    columns[2].missing_indicator = true;
    medfed_wire::Task {
        task_id: "t".into(),
        features,
        columns,
        target: "y".into(),
        model: medfed_model::ModelKind::Logistic,
        l2: 0.01,
        local_steps: 2,
        learning_rate: 0.5,
        holdout_fraction: 0.25,
        split_seed: 1,
        rounds: 5,
        score_bins: 16,
        members: vec!["a".into(), "b".into()],
        secure_aggregation: None,
        differential_privacy: None,
        algorithm: medfed_wire::TrainingAlgorithm::Fedavg,
        baselines: false,
        evaluate_every: 1,
    }
}

/// The same task with secure aggregation on (three members, threshold 2),
/// so the secure-aggregation instructions and submissions are exercised.
fn secure_task() -> medfed_wire::Task {
    let mut task = task();
    task.members = vec!["a".into(), "b".into(), "c".into()];
    task.secure_aggregation = Some(medfed_wire::SecureAggregation {
        threshold: 2,
        fixed_point_bits: 24,
    });
    task
}

/// The secure task with DP-FedAvg on, so privacy spends and budget
/// refusals are converted too.
fn dp_task() -> medfed_wire::Task {
    let mut task = secure_task();
    task.differential_privacy = Some(medfed_wire::DifferentialPrivacy {
        noise_multiplier: 1.0,
        clip_norm: 1.0,
    });
    task
}

fuzz_target!(|data: &[u8]| {
    let task = task();
    if let Ok(m) = pb::TaskSpec::decode(data) {
        let _ = convert::task_from_pb(m);
    }
    if let Ok(pb::Submission { body: Some(body) }) = pb::Submission::decode(data) {
        let _ = (medfed_wire::submission::kind(&body), medfed_wire::submission::round(&body));
    }
    for kind in [
        "update",
        "statistics",
        "secagg",
        "task",
        "refusal",
        "rejection",
        "secagg-consistency-request",
        "secagg-unmask-request",
    ] {
        let _ = medfed_wire::describe::describe_payload(kind, data);
    }
    if let Ok(m) = pb::Instruction::decode(data) {
        let _ = convert::step_from_pb(m.clone(), &task);
        let _ = convert::step_from_pb(m, &secure_task());
    }
    if let Ok(m) = pb::SecAggSubmission::decode(data) {
        let _ = medfed_wire::secagg::submission_from_pb(m.clone(), &secure_task());
        let _ = medfed_wire::secagg::submission_from_pb(m, &dp_task());
    }
    // The raw bytes as the medfed-secure payloads of the consistency check
    // and unmasking: the survivor set, the signed unmask request, and a
    // member's signature.
    {
        use pb::instruction::Kind;
        let request = data.to_vec();
        for kind in [
            Kind::SecaggCheck(pb::SecAggCheck {
                round: 1,
                request: request.clone(),
            }),
            Kind::SecaggUnmask(pb::SecAggUnmask {
                round: 1,
                request: request.clone(),
            }),
        ] {
            let instruction = pb::Instruction {
                step: 1,
                kind: Some(kind),
            };
            let _ = convert::step_from_pb(instruction, &secure_task());
        }
        for stage in [pb::SecAggStage::Consistency, pb::SecAggStage::Masked] {
            let submission = pb::SecAggSubmission {
                task_id: "t".into(),
                step: 1,
                round: 1,
                stage: stage.into(),
                payload: request.clone(),
                ..Default::default()
            };
            let _ = medfed_wire::secagg::submission_from_pb(submission, &secure_task());
        }
    }
    if let Ok(m) = pb::BudgetRefusal::decode(data) {
        let _ = medfed_wire::privacy::refusal_from_pb(m, &dp_task());
    }
    if let Ok(m) = pb::Refusal::decode(data) {
        let _ = medfed_wire::privacy::policy_refusal_from_pb(m, &task);
    }
    if let Ok(m) = pb::StatisticsReport::decode(data) {
        let _ = convert::statistics_from_pb(m, &task);
    }
    if let Ok(m) = pb::ModelUpdate::decode(data) {
        let _ = convert::update_from_pb(m, &task);
    }
    if let Ok(m) = pb::BaselineModel::decode(data) {
        let _ = convert::baseline_from_pb(m, &task);
    }
    if let Ok(m) = pb::EvaluationReport::decode(data) {
        let _ = convert::evaluation_from_pb(m, &task, 2);
    }
    if let Ok(m) = pb::NewtonTermsReport::decode(data) {
        let _ = terms::newton_from_pb(m, &task);
    }
    if let Ok(m) = pb::NormalTermsReport::decode(data) {
        let mut linear = task.clone();
        linear.model = medfed_model::ModelKind::Linear;
        let _ = terms::normal_from_pb(m, &linear);
    }
    if let Ok(m) = pb::HistogramReport::decode(data) {
        let plan = medfed_model::preprocess::HistogramPlan {
            bins: 8,
            ranges: vec![
                None,
                Some(medfed_model::preprocess::ValueRange {
                    min: 0.0,
                    max: 500.0,
                }),
                None,
            ],
        };
        let _ = preprocessing::histograms_from_pb(m, &task, &plan);
    }
    let _ = pb::Signed::decode(data);
});
