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
