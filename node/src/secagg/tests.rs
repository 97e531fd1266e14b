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

#[test]
fn a_roster_is_held_to_the_agreed_members_and_the_threshold_floor() {
    use super::roster::roster_policy;
    use crate::policy::Fraction;
    let agreed = vec!["h".to_owned(), "k".into(), "m".into()];
    let two_thirds = Fraction::TWO_THIRDS;
    assert!(roster_policy(Some(&agreed), two_thirds, 2, 1, &["h", "k", "m"]).is_ok());
    assert!(roster_policy(None, two_thirds, 2, 1, &["h", "x", "y"]).is_ok());
    let stranger = roster_policy(Some(&agreed), two_thirds, 2, 4, &["h", "x", "k"]).unwrap_err();
    assert_eq!(stranger.rule, "members");
    assert!(
        stranger.reason.contains("round 4") && stranger.reason.contains(": x"),
        "{}",
        stranger.reason
    );
    // Five members need 4 of them at 2/3; 3 is refused, 3/5 takes it.
    let five = ["a", "b", "c", "d", "e"];
    let low = roster_policy(None, two_thirds, 3, 2, &five).unwrap_err();
    assert_eq!(low.rule, "min_threshold");
    assert!(
        low.reason.contains("5 members") && low.reason.contains("at least 4"),
        "{}",
        low.reason
    );
    assert!(roster_policy(None, two_thirds, 4, 2, &five).is_ok());
    let three_fifths = Fraction::new(3, 5).expect("3/5");
    assert!(roster_policy(None, three_fifths, 3, 2, &five).is_ok());
}
