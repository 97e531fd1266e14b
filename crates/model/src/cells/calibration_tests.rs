use approx::assert_relative_eq;
use ndarray::{Array1, aview1};
use proptest::prelude::*;

use super::*;

fn counts(rows: &[(f64, bool)]) -> CalibrationCounts {
    let p: Array1<f64> = rows.iter().map(|r| r.0).collect();
    let y: Array1<f64> = rows.iter().map(|r| f64::from(u8::from(r.1))).collect();
    CalibrationCounts::from_scores(p.view(), y.view()).unwrap()
}

fn nonzero_at_least(c: &CalibrationCounts, min_cell: u64) -> bool {
    let ok = |v: u64| v == 0 || v >= min_cell;
    (0..CALIBRATION_BINS)
        .all(|b| ok(c.count[b]) && ok(c.label_sum[b]) && ok(c.count[b] - c.label_sum[b]))
}

#[test]
fn coarsen_by_hand() {
    let original = counts(&[
        (0.05, false),
        (0.07, false),
        (0.15, true),
        (0.35, true),
        (0.55, false),
        (0.62, true),
        (0.66, false),
        (0.95, true),
    ]);
    assert!(matches!(
        original.check_cells(2),
        Err(CellError::SmallCell { .. })
    ));
    let mut c = original.clone();
    c.coarsen(2).unwrap();
    // Below 0.5: bin 0 (2 negatives) stands alone; bins 1..4 hold 2
    // positives of mean prediction 0.25, kept in bin 2. From 0.5: all four
    // rows, mean 0.695, in bin 6.
    assert_eq!(c.count, vec![2, 0, 2, 0, 0, 0, 4, 0, 0, 0]);
    assert_eq!(c.label_sum, vec![0, 0, 2, 0, 0, 0, 2, 0, 0, 0]);
    assert_relative_eq!(c.prediction_sum[0], 0.12, epsilon = 1e-15);
    assert_relative_eq!(c.prediction_sum[2], 0.5, epsilon = 1e-15);
    assert_relative_eq!(c.prediction_sum[6], 2.78, epsilon = 1e-15);
    assert_eq!(c.validate(), Ok(()));
    assert_eq!(c.check_cells(2), Ok(()));
    let summary = c.summary();
    assert_eq!(summary.len(), 3);
    assert_relative_eq!(summary[2].mean_predicted, 0.695, epsilon = 1e-15);
    assert_relative_eq!(summary[2].observed_rate, 0.5);
    assert!(summary[2].lower <= 0.695 && 0.695 < summary[2].upper);
    let once = c.clone();
    c.coarsen(2).unwrap();
    assert_eq!(c, once);
}

#[test]
fn nothing_to_do_changes_nothing() {
    let original = counts(&[(0.2, true), (0.9, false)]);
    for min_cell in [0, 1] {
        let mut c = original.clone();
        c.coarsen(min_cell).unwrap();
        assert_eq!(c, original);
        assert_eq!(c.check_cells(min_cell), Ok(()));
    }
    let mut empty = CalibrationCounts::default();
    empty.coarsen(5).unwrap();
    assert_eq!(empty, CalibrationCounts::default());
    assert_eq!(empty.check_cells(5), Ok(()));
}

#[test]
fn counts_that_cannot_be_merged_are_refused_by_rule() {
    // 2 positives in all.
    let rows: Vec<_> = (0..10)
        .map(|i| (0.05 + 0.1 * f64::from(i), i < 2))
        .collect();
    let original = counts(&rows);
    let mut c = original.clone();
    let err = c.coarsen(2 + 1).unwrap_err();
    assert_eq!(
        err,
        CellError::TooFewRows {
            what: CLASS,
            min_cell: 3
        }
    );
    assert_eq!(c, original);
    // 6 positives, but 1 of them below 0.5.
    let rows: Vec<_> = (0..12)
        .map(|i| (if i < 6 { 0.2 } else { 0.8 }, i == 0 || i >= 7))
        .collect();
    let original = counts(&rows);
    let mut c = original.clone();
    assert!(matches!(
        c.coarsen(5),
        Err(CellError::TooFewRows { what, .. }) if what.contains("side of the 0.5 threshold")
    ));
    assert_eq!(c, original);
    let mut bad = original.clone();
    bad.label_sum[2] = 7;
    assert!(matches!(bad.coarsen(5), Err(CellError::Invalid(_))));
    assert!(matches!(bad.check_cells(5), Err(CellError::Invalid(_))));
    assert!(CalibrationCounts::from_scores(aview1(&[0.5]), aview1(&[1.0])).is_ok());
}

proptest! {
    #[test]
    fn coarsening_keeps_the_counts_and_meets_the_rule_or_refuses(
        rows in proptest::collection::vec((0.0f64..=1.0, any::<bool>()), 0..150),
        min_cell in 0u64..8,
    ) {
        let original = counts(&rows);
        let mut c = original.clone();
        let split = CALIBRATION_BINS / 2;
        let ok = |v: u64| v == 0 || v >= min_cell;
        match c.coarsen(min_cell) {
            Ok(()) => {
                prop_assert_eq!(c.total(), original.total());
                prop_assert_eq!(c.label_sum.iter().sum::<u64>(), original.label_sum.iter().sum::<u64>());
                prop_assert_eq!(c.count[split..].iter().sum::<u64>(), original.count[split..].iter().sum::<u64>());
                prop_assert_eq!(c.label_sum[split..].iter().sum::<u64>(), original.label_sum[split..].iter().sum::<u64>());
                let sum = |c: &CalibrationCounts| c.prediction_sum.iter().sum::<f64>();
                prop_assert!((sum(&c) - sum(&original)).abs() <= 1e-12 * sum(&original).max(1.0));
                prop_assert!(nonzero_at_least(&c, min_cell));
                prop_assert_eq!(c.validate(), Ok(()));
                prop_assert_eq!(c.check_cells(min_cell), Ok(()));
                let once = c.clone();
                c.coarsen(min_cell).unwrap();
                prop_assert_eq!(c, once);
            }
            Err(err) => {
                prop_assert!(matches!(err, CellError::TooFewRows { .. }), "{}", err);
                let side = |bins: std::ops::Range<usize>| {
                    let pos: u64 = original.label_sum[bins.clone()].iter().sum();
                    let all: u64 = original.count[bins].iter().sum();
                    ok(pos) && ok(all - pos)
                };
                prop_assert!(!(side(0..split) && side(split..CALIBRATION_BINS)));
                prop_assert_eq!(c, original);
            }
        }
    }
}
