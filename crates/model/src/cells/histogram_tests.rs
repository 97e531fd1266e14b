use ndarray::Array2;
use proptest::prelude::*;

use super::*;
use crate::cells::runs;
use crate::preprocess::{
    ColumnSpec, Encoding, FittedPreprocessor, HistogramPlan, Impute, ValueRange, summarize,
};

fn histogram(counts: &[u64]) -> ColumnHistogram {
    ColumnHistogram {
        min: 0.0,
        max: counts.len() as f64,
        counts: counts.to_vec(),
    }
}

#[test]
fn coarsen_by_hand() {
    // The values 0, 1, ..., 10 over [0, 10] in bins of width 1.
    let mut h = histogram(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
    assert_eq!(h.approximate_median(), Some(5.5));
    assert!(matches!(h.check_cells(5), Err(CellError::SmallCell { .. })));
    h.coarsen(5).unwrap();
    // Two runs of 6 and 5 values (as even as 11 allows): bins 0..6 (mean
    // 3.0, bin 3) and 6..10 (mean 41.5 / 5 = 8.3, bin 8).
    assert_eq!(h.counts, vec![0, 0, 0, 6, 0, 0, 0, 0, 5, 0]);
    assert_eq!(h.check_cells(5), Ok(()));
    // The median, 5, lies in the first run and is read at its kept bin:
    // 3.5, within the run's extent of 6 bins.
    assert_eq!(h.approximate_median(), Some(3.5));
    assert_eq!(h.total(), 11);
}

#[test]
fn a_million_bins_of_one_value_each() {
    let mut h = ColumnHistogram::empty(ValueRange { min: 0.0, max: 1.0 }, 1_000_000);
    for i in 0..40 {
        h.counts[25_000 * i] = 1;
    }
    h.coarsen(5).unwrap();
    assert_eq!(h.total(), 40);
    assert!(h.counts.iter().all(|&c| c == 0 || c >= 5));
    assert_eq!(h.counts.iter().filter(|&&c| c > 0).count(), 8);
    assert_eq!(h.check_cells(5), Ok(()));
}

#[test]
fn nothing_to_do_or_nothing_possible() {
    let original = histogram(&[3, 0, 1, 7]);
    for min_cell in [0, 1] {
        let mut h = original.clone();
        h.coarsen(min_cell).unwrap();
        assert_eq!(h, original);
        assert_eq!(h.check_cells(min_cell), Ok(()));
    }
    let zeros = histogram(&[0; 16]);
    let mut h = zeros.clone();
    h.coarsen(5).unwrap();
    assert_eq!(h, zeros);
    assert_eq!(h.check_cells(5), Ok(()));
    let mut h = histogram(&[1, 0, 2, 0]);
    assert_eq!(
        h.coarsen(5),
        Err(CellError::TooFewRows {
            what: "values counted in the histogram",
            min_cell: 5
        })
    );
    assert_eq!(h, histogram(&[1, 0, 2, 0]));
    let mut h = histogram(&[1, u64::MAX]);
    assert_eq!(h.coarsen(5), Err(CellError::Overflow { what: COUNTS }));
    assert_eq!(h, histogram(&[1, u64::MAX]));
    let mut h = histogram(&[1]);
    assert!(matches!(h.coarsen(5), Err(CellError::Invalid(_))));
}

#[test]
fn the_median_of_coarsened_histograms_still_fills_missing_values() {
    let spec = ColumnSpec {
        missing: Impute::Median,
        ..ColumnSpec::numeric("chol")
    };
    let specs = [spec];
    let values: Vec<f64> = (0..60).map(|i| 150.0 + f64::from(i * i % 97)).collect();
    let raw = Array2::from_shape_vec((60, 1), values).unwrap();
    let summaries = summarize(&specs, raw.view()).unwrap();
    let plan = HistogramPlan::new(&specs, &summaries, 1024).unwrap();
    let mut histograms = plan.histograms(&specs, raw.view()).unwrap();
    let h = histograms[0].as_mut().unwrap();
    h.coarsen(5).unwrap();
    let median = h.approximate_median().unwrap();
    let fitted = FittedPreprocessor::fit(&specs, &summaries, Some(&histograms)).unwrap();
    let Encoding::Numeric(scaling) = &fitted.0.columns[0].encoding else {
        panic!("a numeric column");
    };
    assert_eq!(scaling.fill, median);
}

proptest! {
    #[test]
    fn coarsening_keeps_the_total_and_moves_the_median_by_at_most_a_run(
        counts in proptest::collection::vec(prop_oneof![3 => Just(0u64), 2 => 1u64..4, 1 => 4u64..20], 2..400),
        min_cell in 0u64..8,
    ) {
        let original = histogram(&counts);
        let mut h = original.clone();
        match h.coarsen(min_cell) {
            Ok(()) => {
                prop_assert_eq!(h.total(), original.total());
                prop_assert!(h.counts.iter().all(|&c| c == 0 || c >= min_cell));
                prop_assert_eq!(h.check_cells(min_cell), Ok(()));
                prop_assert_eq!(h.validate(), Ok(()));
                let once = h.clone();
                h.coarsen(min_cell).unwrap();
                prop_assert_eq!(&h, &once);
                // The widest run, from its first to its last non-zero bin.
                let extent = if min_cell <= 1 { 1 } else {
                    runs(0..counts.len(), |b| [counts[b]], min_cell)
                        .unwrap()
                        .iter()
                        .filter_map(|run| {
                            let first = run.bins.clone().find(|&b| counts[b] > 0)?;
                            let last = run.bins.clone().rev().find(|&b| counts[b] > 0)?;
                            Some(last - first + 1)
                        })
                        .max()
                        .unwrap_or(1)
                };
                if let (Some(before), Some(after)) = (original.approximate_median(), h.approximate_median()) {
                    // Both read bin midpoints of the same ranks, so they
                    // differ by less than the widest run (bins of width 1).
                    prop_assert!((after - before).abs() < extent as f64, "{} {} {}", before, after, extent);
                }
            }
            Err(err) => {
                prop_assert!(matches!(err, CellError::TooFewRows { .. }), "{}", err);
                prop_assert!(original.total() < min_cell);
                prop_assert_eq!(h, original);
            }
        }
    }
}
