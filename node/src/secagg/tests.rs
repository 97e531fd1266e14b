//! Tests of the node's side of secure aggregation.

use medfed_wire::{Instruction, SecureAggregation, Step, Task};

use super::refuse_in_clear;

fn task(secure: bool) -> Task {
    Task {
        task_id: "t".into(),
        features: vec!["a".into()],
        columns: vec![medfed_model::ColumnSpec::numeric("a")],
        target: "y".into(),
        model: medfed_model::ModelKind::Logistic,
        l2: 0.0,
        local_steps: 1,
        learning_rate: 0.1,
        holdout_fraction: 0.2,
        split_seed: 1,
        rounds: 5,
        score_bins: 4,
        members: vec!["h".into(), "k".into()],
        secure_aggregation: secure.then_some(SecureAggregation {
            threshold: 2,
            fixed_point_bits: 24,
        }),
        differential_privacy: None,
        algorithm: medfed_wire::TrainingAlgorithm::Fedavg,
        baselines: false,
        evaluate_every: 1,
    }
}

#[test]
fn clear_requests_for_aggregates_are_refused_in_a_secure_task() {
    let statistics = Step {
        step: 3,
        instruction: Instruction::CollectStatistics,
    };
    let wait = Step {
        step: 4,
        instruction: Instruction::Wait,
    };
    let refused = refuse_in_clear(&task(true), &statistics).unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("collect-statistics in clear (step 3)"),
        "{refused}"
    );
    assert!(refuse_in_clear(&task(true), &wait).is_ok());
    assert!(refuse_in_clear(&task(false), &statistics).is_ok());
}
