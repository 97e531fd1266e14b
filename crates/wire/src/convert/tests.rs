//! Tests of the checked conversions: round trips of tasks, instructions
//! and reports, and the refusal of messages that do not fit the task.

use medfed_model::{CalibrationCounts, ModelKind};

use super::*;
use crate::message::{EvaluationCounts, EvaluationReport, Instruction, StatisticsReport, Step};

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
        algorithm: crate::TrainingAlgorithm::Fedavg,
        baselines: false,
        evaluate_every: 1,
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
