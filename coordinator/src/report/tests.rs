//! Unit tests of the metrics read from aggregate counts.

use medfed_model::{BinaryCounts, CountCounts, ModelKind, RegressionCounts};
use medfed_wire::EvaluationCounts;
use ndarray::aview1;

use super::Metrics;

#[test]
fn metrics_keep_every_defined_value_of_the_kind_in_order() {
    let binary =
        BinaryCounts::from_scores(aview1(&[0.2, 0.7, 0.6]), aview1(&[0.0, 1.0, 0.0]), 10).unwrap();
    let regression =
        RegressionCounts::from_predictions(aview1(&[1.0, 2.5, 2.0]), aview1(&[1.5, 2.0, 3.0]))
            .unwrap();
    let count =
        CountCounts::from_predictions(aview1(&[1.0, 2.5, 2.0]), aview1(&[1.0, 2.0, 3.0])).unwrap();
    for counts in [
        EvaluationCounts::from(binary),
        regression.into(),
        count.into(),
    ] {
        let metrics = Metrics::from_counts(&counts);
        assert_eq!(metrics.rows, 3);
        for (key, value) in counts.metrics() {
            assert!(value.is_some(), "{key}");
            assert_eq!(metrics.get(key), value, "{key}");
        }
        let json = serde_json::to_string(&metrics).unwrap();
        assert!(json.starts_with(r#"{"rows":3,"#), "{json}");
        let back: Metrics = serde_json::from_str(&json).unwrap();
        // serde_json parses to within an ulp (no float_roundtrip).
        for (key, value) in &metrics.values {
            let read = back.get(key).unwrap_or(f64::NAN);
            assert!((read - value).abs() <= 1e-15 * value.abs(), "{key}");
        }
    }
    let auc = Metrics::from_counts(&EvaluationCounts::from(
        BinaryCounts::from_scores(aview1(&[0.2, 0.7]), aview1(&[0.0, 1.0]), 10).unwrap(),
    ));
    assert_eq!(auc.headline(ModelKind::Logistic), auc.get("auc"));
    assert_eq!(auc.headline(ModelKind::Linear), None);
}

/// A finished run's outcome with `refusals` and nothing else of note.
fn outcome(refusals: &[(&str, medfed_wire::Refusal)]) -> crate::outcome::Outcome {
    crate::outcome::Outcome {
        preprocessing: medfed_model::FittedPreprocessor { columns: vec![] },
        notes: Vec::new(),
        global: ndarray::array![0.5],
        rounds: Vec::new(),
        baselines: Vec::new(),
        evaluations: Vec::new(),
        train_rows: Vec::new(),
        total_train_rows: 0,
        pooled_evaluation: None,
        privacy_spent: Default::default(),
        refusals: refusals
            .iter()
            .map(|(site, refusal)| (site.to_string(), refusal.clone()))
            .collect(),
        algorithm: "fedavg".into(),
        stop_reason: "all 1 rounds done".into(),
        calibration: None,
    }
}

#[test]
fn the_summary_lists_every_refusal_by_step_then_site_and_an_empty_list_without() {
    use medfed_wire::Refusal;
    let task = crate::config::TaskConfig::parse(
        "[task]\nid = \"t\"\nmembers = [\"a\", \"b\", \"c\"]\nmodel = \"logistic\"\n\
         features = [\"x\"]\ntarget = \"y\"\n",
        "task.toml",
    )
    .expect("a valid task")
    .task;
    let json = |outcome| {
        let (summary, _) = super::build(&task, "fedavg", &outcome, 0, 0, 1.0);
        serde_json::to_value(&summary).expect("the summary serialises")
    };
    let summary = json(outcome(&[
        ("c", Refusal::new(4, "min_cell", "a cell below 5")),
        (
            "b",
            Refusal::new(0, "approved_tasks", "task t is not approved"),
        ),
    ]));
    assert_eq!(
        summary["refusals"],
        serde_json::json!([
            {"site": "b", "step": 0, "rule": "approved_tasks", "reason": "task t is not approved"},
            {"site": "c", "step": 4, "rule": "min_cell", "reason": "a cell below 5"},
        ])
    );
    assert_eq!(json(outcome(&[]))["refusals"], serde_json::json!([]));
}
