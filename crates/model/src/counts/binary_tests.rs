use approx::assert_relative_eq;
use ndarray::{Array1, Axis, aview1};
use proptest::prelude::*;

use super::*;
use crate::metrics;
use crate::rng::SplitMix64;

/// Continuous scores loosely related to random labels.
fn scored_rows(n: usize, seed: u64) -> (Array1<f64>, Array1<f64>) {
    let mut rng = SplitMix64::new(seed);
    let labels: Array1<f64> = (0..n).map(|_| f64::from(rng.unit() < 0.3)).collect();
    let scores = labels.mapv(|y| (0.3 * y + 0.7 * rng.unit()).clamp(0.0, 1.0));
    (scores, labels)
}

#[test]
fn new_checks_the_bin_range() {
    assert_eq!(BinaryCounts::new(2).unwrap().bins(), 2);
    assert_eq!(
        BinaryCounts::new(MAX_SCORE_BINS).unwrap().bins(),
        MAX_SCORE_BINS
    );
    for bins in [0, 1, MAX_SCORE_BINS + 1] {
        assert_eq!(
            BinaryCounts::new(bins),
            Err(ModelError::InvalidBins {
                got: bins,
                min: 2,
                max: 1_000_000
            })
        );
    }
}

#[test]
fn add_by_hand() {
    let mut c = BinaryCounts::new(4).unwrap();
    c.add(0.9, 1.0).unwrap(); // tp, bin 3
    c.add(0.5, 0.0).unwrap(); // fp (0.5 predicts positive), bin 2
    c.add(0.1, 0.0).unwrap(); // tn, bin 0
    c.add(0.3, 1.0).unwrap(); // fn, bin 1
    c.add(1.0, 1.0).unwrap(); // tp, clamped into bin 3
    c.add(0.0, 0.0).unwrap(); // tn, bin 0
    assert_eq!((c.n, c.tp, c.fp, c.tn, c.fn_), (6, 2, 1, 2, 1));
    assert_eq!(c.pos_hist, vec![0, 1, 0, 2]);
    assert_eq!(c.neg_hist, vec![2, 0, 1, 0]);
    assert_eq!((c.positives(), c.negatives()), (3, 3));
    assert_eq!(c.validate(), Ok(()));
    assert_relative_eq!(c.accuracy().unwrap(), 4.0 / 6.0);
    assert_relative_eq!(c.sensitivity().unwrap(), 2.0 / 3.0);
    assert_relative_eq!(c.specificity().unwrap(), 2.0 / 3.0);
    let expected_loss = [0.9, 0.5, 0.9, 0.3, 1.0 - 1e-15, 1.0 - 1e-15]
        .iter()
        .map(|p: &f64| -p.ln())
        .sum::<f64>()
        / 6.0;
    assert_relative_eq!(c.log_loss().unwrap(), expected_loss, epsilon = 1e-12);
    // Positives sit in bins {1, 3, 3}, negatives in {0, 0, 2}; no bin holds
    // both, so the AUC is exact: bin 1 beats two negatives, each bin 3 beats
    // all three -> 8 of 9 pairs.
    assert_relative_eq!(c.auc().unwrap(), 8.0 / 9.0, epsilon = 1e-15);
    assert_eq!(c.auc_error_bound(), Some(0.0));
}

#[test]
fn add_refuses_bad_rows_and_changes_nothing() {
    let mut c = BinaryCounts::new(10).unwrap();
    c.add(0.7, 1.0).unwrap();
    let before = c.clone();
    assert!(matches!(
        c.add(1.5, 1.0),
        Err(ModelError::InvalidValues { .. })
    ));
    assert!(matches!(
        c.add(f64::NAN, 1.0),
        Err(ModelError::InvalidValues { .. })
    ));
    assert!(matches!(
        c.add(0.5, 0.5),
        Err(ModelError::InvalidLabels { .. })
    ));
    assert_eq!(c, before);
}

#[test]
fn no_rows_or_one_class_gives_no_metrics() {
    let empty = BinaryCounts::new(10).unwrap();
    assert_eq!(empty.validate(), Ok(()));
    assert_eq!(
        (
            empty.accuracy(),
            empty.log_loss(),
            empty.auc(),
            empty.auc_error_bound()
        ),
        (None, None, None, None)
    );
    let positives =
        BinaryCounts::from_scores(aview1(&[0.2, 0.9]), aview1(&[1.0, 1.0]), 10).unwrap();
    assert_eq!((positives.auc(), positives.specificity()), (None, None));
    assert_relative_eq!(positives.sensitivity().unwrap(), 0.5);
}

#[test]
fn from_scores_agrees_with_the_exact_metrics() {
    let (scores, labels) = scored_rows(300, 5);
    let c = BinaryCounts::from_scores(scores.view(), labels.view(), 100).unwrap();
    assert_eq!(c.n, 300);
    assert_eq!(c.validate(), Ok(()));
    assert_relative_eq!(
        c.accuracy().unwrap(),
        metrics::accuracy(scores.view(), labels.view(), 0.5).unwrap(),
        epsilon = 1e-12
    );
    assert_relative_eq!(
        c.log_loss().unwrap(),
        metrics::log_loss(scores.view(), labels.view()).unwrap(),
        epsilon = 1e-12
    );
}

#[test]
fn from_scores_refuses_bad_input_by_count() {
    assert!(matches!(
        BinaryCounts::from_scores(aview1(&[0.5]), aview1(&[1.0, 0.0]), 10),
        Err(ModelError::Dimension { .. })
    ));
    assert_eq!(
        BinaryCounts::from_scores(aview1(&[0.5, 2.0, -1.0]), aview1(&[1.0, 0.0, 1.0]), 10),
        Err(ModelError::InvalidValues {
            what: "probabilities",
            invalid: 2,
            total: 3,
            first: 1,
            allowed: "probabilities in [0, 1]",
        })
    );
    let err = BinaryCounts::from_scores(aview1(&[0.5, 0.5]), aview1(&[0.25, 3.0]), 10).unwrap_err();
    assert_eq!(
        err,
        ModelError::InvalidLabels {
            family: "logistic",
            rule: "exactly 0 or 1",
            invalid: 2,
            total: 2
        }
    );
    assert!(!err.to_string().contains("0.25"), "{err}");
}

#[test]
fn default_bins_bound_the_auc_error_tightly() {
    let (scores, labels) = scored_rows(400, 9);
    let c = BinaryCounts::from_scores(scores.view(), labels.view(), DEFAULT_SCORE_BINS).unwrap();
    let bound = c.auc_error_bound().unwrap();
    assert!(bound < 0.001, "bound {bound}");
    let exact = metrics::roc_auc(scores.view(), labels.view())
        .unwrap()
        .unwrap();
    assert!((c.auc().unwrap() - exact).abs() <= bound + 1e-12);
}

#[test]
fn merged_halves_equal_the_whole() {
    let (scores, labels) = scored_rows(250, 21);
    let whole = BinaryCounts::from_scores(scores.view(), labels.view(), 50).unwrap();
    let (scores_a, scores_b) = scores.view().split_at(Axis(0), 100);
    let (labels_a, labels_b) = labels.view().split_at(Axis(0), 100);
    let mut merged = BinaryCounts::from_scores(scores_a, labels_a, 50).unwrap();
    let second = BinaryCounts::from_scores(scores_b, labels_b, 50).unwrap();
    merged.merge(&second).unwrap();
    assert_relative_eq!(
        merged.log_loss_sum,
        whole.log_loss_sum,
        max_relative = 1e-12
    );
    merged.log_loss_sum = whole.log_loss_sum;
    assert_eq!(merged, whole);
    assert_eq!(merged.validate(), Ok(()));
}

#[test]
fn merge_refuses_other_bins_and_overflow_without_changes() {
    let mut c = BinaryCounts::from_scores(aview1(&[0.2, 0.8]), aview1(&[0.0, 1.0]), 10).unwrap();
    let before = c.clone();
    assert_eq!(
        c.merge(&BinaryCounts::new(20).unwrap()),
        Err(ModelError::Dimension {
            what: "merged score histogram",
            expected: 10,
            got: 20
        })
    );
    let mut huge = BinaryCounts::new(10).unwrap();
    huge.pos_hist[8] = u64::MAX;
    assert!(matches!(c.merge(&huge), Err(ModelError::Overflow { .. })));
    assert_eq!(c, before);
}

#[test]
fn validate_catches_counts_that_do_not_add_up() {
    let good =
        BinaryCounts::from_scores(aview1(&[0.2, 0.8, 0.6]), aview1(&[0.0, 1.0, 0.0]), 10).unwrap();
    let mut bad = good.clone();
    bad.tp += 1;
    assert_eq!(
        bad.validate(),
        Err(ModelError::InconsistentCounts {
            what: "tp + fp + tn + fn_",
            expected: 3,
            got: 4
        })
    );
    let mut bad = good.clone();
    bad.pos_hist[0] += 1;
    assert!(matches!(
        bad.validate(),
        Err(ModelError::InconsistentCounts { .. })
    ));
    // Totals right, but a positive recorded as a negative.
    let mut bad = good.clone();
    bad.pos_hist[8] -= 1;
    bad.neg_hist[8] += 1;
    assert!(matches!(
        bad.validate(),
        Err(ModelError::InconsistentCounts {
            what: "tp + fn_",
            ..
        })
    ));
    let mut bad = good.clone();
    bad.neg_hist.pop();
    assert!(matches!(bad.validate(), Err(ModelError::Dimension { .. })));
    for loss in [-1.0, f64::NAN, f64::INFINITY] {
        let mut bad = good.clone();
        bad.log_loss_sum = loss;
        assert!(matches!(
            bad.validate(),
            Err(ModelError::InvalidAggregate { .. })
        ));
    }
    let mut bad = BinaryCounts::new(4).unwrap();
    bad.log_loss_sum = 1.0;
    assert!(bad.validate().is_err());
}

proptest! {
    #[test]
    fn histogram_auc_is_within_its_bound_of_the_exact_auc(
        rows in proptest::collection::vec((0.0f64..=1.0, any::<bool>()), 2..200),
        bins in 2usize..64,
    ) {
        let scores: Array1<f64> = rows.iter().map(|r| r.0).collect();
        let labels: Array1<f64> = rows.iter().map(|r| f64::from(r.1)).collect();
        let c = BinaryCounts::from_scores(scores.view(), labels.view(), bins).unwrap();
        let exact = metrics::roc_auc(scores.view(), labels.view()).unwrap();
        prop_assert_eq!(c.auc().is_some(), exact.is_some());
        if let (Some(auc), Some(bound), Some(exact)) = (c.auc(), c.auc_error_bound(), exact) {
            prop_assert!((auc - exact).abs() <= bound + 1e-12, "auc {} exact {} bound {}", auc, exact, bound);
            prop_assert!((0.0..=0.5).contains(&bound));
        }
    }
}

/// Trapezoid area under `(x, y)` points taken in order.
fn trapezoid_area(points: &[(f64, f64)]) -> f64 {
    points
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum()
}

/// Counts holding exactly these histograms; bins in the upper half count as
/// predicted positive, so the confusion counts agree with them.
fn from_histograms(pos_hist: Vec<u64>, neg_hist: Vec<u64>) -> BinaryCounts {
    let half = pos_hist.len() / 2;
    let split = |h: &[u64]| (h[..half].iter().sum::<u64>(), h[half..].iter().sum::<u64>());
    let ((fn_, tp), (tn, fp)) = (split(&pos_hist), split(&neg_hist));
    let counts = BinaryCounts {
        n: tp + fn_ + tn + fp,
        tp,
        fp,
        tn,
        fn_,
        log_loss_sum: 1.0,
        pos_hist,
        neg_hist,
    };
    assert_eq!(counts.validate(), Ok(()));
    counts
}

// Tolerance of the ROC area against `auc()`: both add the same pair counts,
// in a different order and with the divisions done at a different point, so
// they differ only by rounding: a few ulps (about 1e-16 each) per non-empty
// bin. The cases here have at most a few hundred non-empty bins, which keeps
// the difference far below 1e-12; anything larger is a real miscount (the
// smallest such error, one tied pair in 500 x 500, is 2e-6).
const ROC_AREA_TOLERANCE: f64 = 1e-12;

#[test]
fn roc_points_by_hand() {
    // The rows of `add_by_hand`: positives in bins {1, 3, 3}, negatives in
    // {0, 0, 2}. From the top: bin 3 adds two positives, bin 2 a negative,
    // bin 1 a positive, bin 0 two negatives.
    let c = from_histograms(vec![0, 1, 0, 2], vec![2, 0, 1, 0]);
    let points = c.roc_points().unwrap();
    let expected = [
        (0.0, 0.0),
        (0.0, 2.0 / 3.0),
        (1.0 / 3.0, 2.0 / 3.0),
        (1.0 / 3.0, 1.0),
        (1.0, 1.0),
    ];
    assert_eq!(points.len(), expected.len());
    for (got, want) in points.iter().zip(expected) {
        assert_relative_eq!(got.0, want.0, epsilon = 1e-15);
        assert_relative_eq!(got.1, want.1, epsilon = 1e-15);
    }
    assert_relative_eq!(trapezoid_area(&points), 8.0 / 9.0, epsilon = 1e-15);
    assert_relative_eq!(
        trapezoid_area(&points),
        c.auc().unwrap(),
        epsilon = ROC_AREA_TOLERANCE
    );
}

#[test]
fn roc_area_equals_the_histogram_auc_on_hand_made_cases() {
    let cases: [(Vec<u64>, Vec<u64>, f64); 5] = [
        // Every row in one bin: one diagonal step, AUC 1/2.
        (vec![0, 2, 0], vec![0, 3, 0], 0.5),
        // Perfect separation across empty bins.
        (vec![0, 0, 0, 0, 4], vec![5, 0, 0, 0, 0], 1.0),
        // Perfectly wrong.
        (vec![3, 0, 0, 0], vec![0, 0, 0, 2], 0.0),
        // Ties in several bins. Bin 3's 3 positives beat all 4 negatives:
        // 12 pairs; bin 1's 2 positives beat bin 0's 2 negatives and tie
        // bin 1's one: 2 x (2 + 1/2) = 5; bin 0's positive ties 2: 1.
        // Total 18 of 6 x 4 = 24 pairs.
        (vec![1, 2, 0, 3], vec![2, 1, 1, 0], 18.0 / 24.0),
        // One positive among many negatives, in the middle bin.
        (vec![0, 1, 0], vec![3, 4, 3], (3.0 + 0.5 * 4.0) / 10.0),
    ];
    for (pos, neg, auc) in cases {
        let c = from_histograms(pos.clone(), neg.clone());
        let points = c.roc_points().unwrap();
        assert_eq!(points.first(), Some(&(0.0, 0.0)), "{pos:?} {neg:?}");
        assert_eq!(points.last(), Some(&(1.0, 1.0)), "{pos:?} {neg:?}");
        let nonempty = pos.iter().zip(&neg).filter(|(p, q)| **p + **q > 0).count();
        assert_eq!(points.len(), nonempty + 1, "{pos:?} {neg:?}");
        assert_relative_eq!(c.auc().unwrap(), auc, epsilon = 1e-15);
        assert_relative_eq!(
            trapezoid_area(&points),
            c.auc().unwrap(),
            epsilon = ROC_AREA_TOLERANCE
        );
    }
}

#[test]
fn roc_area_equals_the_histogram_auc_on_scored_rows() {
    for (n, seed, bins) in [(300, 1, DEFAULT_SCORE_BINS), (300, 2, 20), (57, 3, 7)] {
        let (scores, labels) = scored_rows(n, seed);
        let c = BinaryCounts::from_scores(scores.view(), labels.view(), bins).unwrap();
        let points = c.roc_points().unwrap();
        assert!(points.len() <= n + 1);
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1),
            "ROC points must move up and right"
        );
        assert_relative_eq!(
            trapezoid_area(&points),
            c.auc().unwrap(),
            epsilon = ROC_AREA_TOLERANCE
        );
    }
}

#[test]
fn roc_points_need_both_classes_and_matching_histograms() {
    assert_eq!(BinaryCounts::new(10).unwrap().roc_points(), None);
    let only_positives = from_histograms(vec![0, 1, 2, 0], vec![0; 4]);
    assert_eq!(only_positives.roc_points(), None);
    let mut uneven = from_histograms(vec![0, 1, 2, 0], vec![1, 0, 0, 0]);
    uneven.neg_hist.push(0);
    assert_eq!(uneven.roc_points(), None);
}

proptest! {
    #[test]
    fn roc_area_equals_the_histogram_auc_on_any_histograms(
        hist in proptest::collection::vec((0u64..50, 0u64..50), 2..60),
    ) {
        let (pos, neg): (Vec<u64>, Vec<u64>) = hist.into_iter().unzip();
        prop_assume!(pos.iter().any(|&c| c > 0) && neg.iter().any(|&c| c > 0));
        let c = from_histograms(pos, neg);
        let points = c.roc_points().unwrap();
        prop_assert_eq!(points.last(), Some(&(1.0, 1.0)));
        let (area, auc) = (trapezoid_area(&points), c.auc().unwrap());
        prop_assert!((area - auc).abs() <= ROC_AREA_TOLERANCE, "area {} auc {}", area, auc);
    }
}
