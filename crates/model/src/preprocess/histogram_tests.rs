use approx::assert_relative_eq;
use ndarray::{Array2, array};
use proptest::prelude::*;

use super::*;
use crate::preprocess::summarize;
use crate::preprocess::summary::merge_summaries;
use crate::testing::rows;

fn median_spec(name: &str) -> ColumnSpec {
    ColumnSpec {
        missing: Impute::Median,
        unknown_values: vec![-999.0],
        ..ColumnSpec::numeric(name)
    }
}

#[test]
fn medians_by_hand() {
    // 0, 1, ..., 10 in 10 bins of width 1 over [0, 10]; 10 itself joins 9
    // in the last bin. The median 5 (rank 6 of 11) falls in bin 5, [5, 6),
    // whose midpoint 5.5 is the estimate.
    let mut h = ColumnHistogram::empty(
        ValueRange {
            min: 0.0,
            max: 10.0,
        },
        10,
    );
    for v in 0..=10 {
        h.add(f64::from(v));
    }
    assert_eq!(h.counts, vec![1, 1, 1, 1, 1, 1, 1, 1, 1, 2]);
    assert_eq!(h.total(), 11);
    assert_eq!(h.approximate_median(), Some(5.5));
    assert_eq!(h.median_error_bound(), 1.0);

    // 1, 2, 3, 4 in 3 bins over [1, 4]: the middle values 2 and 3 sit in
    // bins 1 and 2 (midpoints 2.5 and 3.5), so the estimate is 3 against
    // the exact 2.5, within the bound of 1.
    let mut h = ColumnHistogram::empty(ValueRange { min: 1.0, max: 4.0 }, 3);
    for v in [4.0, 1.0, 3.0, 2.0] {
        h.add(v);
    }
    assert_eq!(h.counts, vec![1, 1, 2]);
    assert_eq!(h.approximate_median(), Some(3.0));
    assert!(
        ColumnHistogram::empty(ValueRange { min: 0.0, max: 1.0 }, 4)
            .approximate_median()
            .is_none()
    );
}

#[test]
fn the_plan_covers_only_median_columns_with_spread() {
    let specs = vec![
        median_spec("chol"),
        ColumnSpec::numeric("age"),
        median_spec("constant"),
        median_spec("empty"),
    ];
    let raw = array![
        [200.0, 50.0, 3.0, f64::NAN],
        [-999.0, 60.0, 3.0, -999.0],
        [260.0, 70.0, 3.0, f64::NAN]
    ];
    let summaries = summarize(&specs, raw.view()).unwrap();
    let plan = HistogramPlan::new(&specs, &summaries, 8).unwrap();
    assert_eq!(
        plan.ranges,
        vec![
            Some(ValueRange {
                min: 200.0,
                max: 260.0
            }),
            None,
            None,
            None
        ]
    );
    assert!(!plan.is_empty());
    assert_eq!(plan.validate(4), Ok(()));
    let histograms = plan.histograms(&specs, raw.view()).unwrap();
    let chol = histograms[0].as_ref().unwrap();
    // The unknown code -999 is missing, not a value.
    assert_eq!(chol.counts, vec![1, 0, 0, 0, 0, 0, 0, 1]);
    assert!(histograms[1..].iter().all(Option::is_none));

    let no_medians = [ColumnSpec::numeric("age")];
    let plan = HistogramPlan::new(&no_medians, &summaries[1..2], 8).unwrap();
    assert!(plan.is_empty());
}

#[test]
fn plans_and_histograms_are_checked() {
    let specs = [median_spec("x")];
    let summaries = summarize(&specs, array![[1.0], [2.0]].view()).unwrap();
    for bins in [0, 1, MAX_MEDIAN_BINS + 1] {
        assert!(matches!(
            HistogramPlan::new(&specs, &summaries, bins),
            Err(ModelError::InvalidBins { .. })
        ));
    }
    let bad = HistogramPlan {
        bins: 4,
        ranges: vec![Some(ValueRange { min: 2.0, max: 2.0 })],
    };
    assert!(matches!(
        bad.validate(1),
        Err(ModelError::InvalidValues { first: 0, .. })
    ));
    assert!(matches!(bad.validate(2), Err(ModelError::Dimension { .. })));

    let range = ValueRange { min: 0.0, max: 1.0 };
    let mut a = ColumnHistogram::empty(range, 4);
    assert!(matches!(
        a.merge(&ColumnHistogram::empty(range, 5)),
        Err(ModelError::Dimension { .. })
    ));
    assert!(matches!(
        a.merge(&ColumnHistogram::empty(
            ValueRange { min: 0.0, max: 2.0 },
            4
        )),
        Err(ModelError::InvalidAggregate { .. })
    ));
    let mut total = vec![Some(a.clone()), None];
    assert!(matches!(
        merge_histograms(&mut total, &[None, None]),
        Err(ModelError::Dimension { .. })
    ));
    a.counts[0] = u64::MAX;
    let mut one = ColumnHistogram::empty(range, 4);
    one.counts[0] = 1;
    assert!(matches!(a.merge(&one), Err(ModelError::Overflow { .. })));
    assert_eq!(a.validate(), Ok(()));
    let flat = ColumnHistogram {
        min: 1.0,
        max: f64::INFINITY,
        counts: vec![0; 4],
    };
    assert!(flat.validate().is_err());
}

/// Values with missing and unknown cells, at very different scales.
fn column() -> impl Strategy<Value = Vec<f64>> {
    let value = prop_oneof![
        1 => Just(f64::NAN),
        1 => Just(-999.0),
        6 => -1e4f64..1e4,
        2 => (0i32..5).prop_map(f64::from), // ties
        1 => 1e6f64..1e6 + 1.0,              // a far cluster
    ];
    proptest::collection::vec(value, 1..200)
}

proptest! {
    #[test]
    fn federated_median_is_within_the_bound(
        values in column(),
        bins in 2usize..3000,
        cuts in (0.0f64..=1.0, 0.0f64..=1.0),
    ) {
        let specs = [median_spec("v")];
        let n = values.len();
        let raw = Array2::from_shape_vec((n, 1), values.clone()).unwrap_or_default();
        let (a, b) = (cuts.0.min(cuts.1), cuts.0.max(cuts.1));
        let bounds = [0, (a * n as f64) as usize, (b * n as f64) as usize, n];
        let site_rows: Vec<_> = bounds.windows(2).map(|w| rows(raw.view(), w[0], w[1])).collect();

        // Pass 1 at each site, merged at the coordinator.
        let mut merged = summarize(&specs, site_rows[0]).unwrap();
        for site in &site_rows[1..] {
            merge_summaries(&mut merged, &summarize(&specs, *site).unwrap()).unwrap();
        }
        let plan = HistogramPlan::new(&specs, &merged, bins).unwrap();
        let mut exact: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan() && *v != -999.0).collect();
        exact.sort_by(f64::total_cmp);
        let Some(range) = plan.ranges[0] else {
            // No histogram only when there is at most one distinct value.
            prop_assert!(exact.first() == exact.last());
            return Ok(());
        };
        // Pass 2 at each site, merged.
        let mut histograms = plan.histograms(&specs, site_rows[0]).unwrap();
        for site in &site_rows[1..] {
            merge_histograms(&mut histograms, &plan.histograms(&specs, *site).unwrap()).unwrap();
        }
        let h = histograms[0].as_ref().unwrap();
        prop_assert_eq!(h.total(), exact.len() as u64);
        let m = exact.len();
        let median = 0.5 * (exact[(m - 1) / 2] + exact[m / 2]);
        let estimate = h.approximate_median().unwrap();
        let bound = h.median_error_bound();
        assert_relative_eq!(bound, (range.max - range.min) / bins as f64, max_relative = 1e-15);
        prop_assert!(
            (estimate - median).abs() <= bound,
            "estimate {} median {} bound {}", estimate, median, bound
        );
    }
}
