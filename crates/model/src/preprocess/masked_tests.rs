use ndarray::{Array2, array};
use proptest::prelude::*;

use super::*;
use crate::preprocess::{
    FittedPreprocessor, coarse_bounds, merge_histograms, merge_summaries, summarize,
};

fn specs() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec {
            unknown_values: vec![0.0],
            missing: Impute::Median,
            ..ColumnSpec::numeric("chol")
        },
        ColumnSpec::categorical("cp", vec![3, 1, 2]),
        ColumnSpec::numeric("oldpeak"),
        ColumnSpec::numeric("all-missing"),
        ColumnSpec::numeric("constant"),
    ]
}

/// A site's coarse summaries, as it sends them in the clear pass.
fn coarse(specs: &[ColumnSpec], raw: &Array2<f64>) -> Vec<ColumnSummary> {
    let mut s = summarize(specs, raw.view()).unwrap();
    for summary in &mut s {
        if summary.count > 0 {
            (summary.min, summary.max) = coarse_bounds(summary.min, summary.max);
        }
    }
    s
}

fn sites() -> Vec<Array2<f64>> {
    let nan = f64::NAN;
    vec![
        array![
            [233.0, 1.0, 2.3, nan, 5.0],
            [0.0, 3.0, -0.1, nan, 5.0],
            [nan, 3.0, 1.4, nan, 5.0],
            [286.0, nan, 0.0, nan, 5.0]
        ],
        array![[354.0, 2.0, 3.6, nan, 5.0], [192.0, 2.0, 0.8, nan, nan]],
        array![
            [564.0, 1.0, 6.2, nan, 5.0],
            [126.0, 3.0, 0.5, nan, 5.0],
            [250.0, 2.0, nan, nan, 5.0]
        ],
    ]
}

fn add(total: &mut Vec<f64>, v: &[f64]) {
    if total.is_empty() {
        total.resize(v.len(), 0.0);
    }
    for (t, x) in total.iter_mut().zip(v) {
        *t += x;
    }
}

#[test]
fn two_summed_passes_give_the_clear_passes_aggregates() {
    let specs = specs();
    let sites = sites();
    // First pass, summed.
    let mut first = Vec::new();
    for raw in &sites {
        let rows = RowCounts {
            train: raw.nrows() as u64,
            holdout: 1,
            missing_target: 0,
        };
        let v = statistics_to_masked(&specs, &coarse(&specs, raw), rows).unwrap();
        assert_eq!(v.len(), statistics_len(&specs));
        add(&mut first, &v);
    }
    let pooled = statistics_from_masked(&specs, &first).unwrap();
    assert_eq!(
        pooled.rows,
        RowCounts {
            train: 9,
            holdout: 3,
            missing_target: 0
        }
    );
    let plan = pooled.plan(&specs, 16);
    // chol and oldpeak have ranges; the categorical, empty and constant
    // columns do not.
    let ranged: Vec<bool> = plan.ranges.iter().map(Option::is_some).collect();
    assert_eq!(ranged, [true, false, true, false, false]);

    // Second pass, summed.
    let mut second = Vec::new();
    for raw in &sites {
        let exact = summarize(&specs, raw.view()).unwrap();
        let histograms = median_plan(&specs, &plan)
            .histograms(&specs, raw.view())
            .unwrap();
        let v = moments_to_masked(&specs, &plan, &exact, &histograms).unwrap();
        assert_eq!(v.len(), moments_len(&specs, &plan).unwrap());
        add(&mut second, &v);
    }
    let (summaries, histograms) = pooled.finish(&specs, &plan, &second).unwrap();

    // The clear passes over the same rows.
    let mut merged: Vec<ColumnSummary> = specs.iter().map(ColumnSummary::empty).collect();
    for raw in &sites {
        merge_summaries(&mut merged, &coarse(&specs, raw)).unwrap();
    }
    let clear_plan = HistogramPlan::new(&specs, &merged, 16).unwrap();
    let mut clear_histograms: Vec<Option<ColumnHistogram>> = clear_plan
        .ranges
        .iter()
        .map(|r| r.map(|r| ColumnHistogram::empty(r, 16)))
        .collect();
    for raw in &sites {
        let h = clear_plan.histograms(&specs, raw.view()).unwrap();
        merge_histograms(&mut clear_histograms, &h).unwrap();
    }
    for (i, (got, want)) in summaries.iter().zip(&merged).enumerate() {
        assert_eq!(
            (got.rows, got.count, &got.category_counts),
            (want.rows, want.count, &want.category_counts),
            "column {i}"
        );
        if specs[i].categories.is_none() {
            assert_eq!((got.min, got.max), (want.min, want.max), "column {i}");
        }
        let scale = want.sum_sq.max(1.0);
        assert!((got.sum - want.sum).abs() <= 1e-12 * scale, "column {i}");
        assert!(
            (got.sum_sq - want.sum_sq).abs() <= 1e-12 * scale,
            "column {i}"
        );
    }
    assert_eq!(histograms, clear_histograms);
    let (secure, _) = FittedPreprocessor::fit(&specs, &summaries, Some(&histograms)).unwrap();
    let (clear, _) = FittedPreprocessor::fit(&specs, &merged, Some(&clear_histograms)).unwrap();
    let x = array![
        [250.0, 2.0, 1.0, f64::NAN, 5.0],
        [f64::NAN, 3.0, 0.0, 1.0, 5.0]
    ];
    let (a, b) = (
        secure.apply(x.view()).unwrap(),
        clear.apply(x.view()).unwrap(),
    );
    for (u, v) in a.iter().zip(&b) {
        assert!((u - v).abs() <= 1e-9, "{u} vs {v}");
    }
}

#[test]
fn sums_that_cannot_come_from_sites_are_refused() {
    let specs = specs();
    let raw = &sites()[0];
    let rows = RowCounts {
        train: raw.nrows() as u64,
        ..RowCounts::default()
    };
    let v = statistics_to_masked(&specs, &coarse(&specs, raw), rows).unwrap();
    assert!(statistics_from_masked(&specs, &v).is_ok());
    assert!(statistics_from_masked(&specs, &v[1..]).is_err());
    // chol's range start without its end.
    let low = 4;
    let mut one_sided = v.clone();
    let at = one_sided[low..].iter().position(|&x| x == 1.0).unwrap();
    one_sided[low + at] = 2.0;
    assert!(matches!(
        statistics_from_masked(&specs, &one_sided),
        Err(ModelError::InvalidColumnAggregate { what: "range", .. })
    ));
    let mut fractional = v.clone();
    fractional[3] += 0.5;
    assert!(statistics_from_masked(&specs, &fractional).is_err());
    let mut more_than_rows = v.clone();
    more_than_rows[3] = 99.0;
    assert!(statistics_from_masked(&specs, &more_than_rows).is_err());
    let mut negative = v;
    negative[0] = -1.0;
    assert!(statistics_from_masked(&specs, &negative).is_err());
}

#[test]
fn ranges_beyond_the_grid_are_an_error_naming_the_column() {
    let specs = vec![ColumnSpec::numeric("huge")];
    let raw = array![[1.0], [9e15]];
    let error = statistics_to_masked(&specs, &coarse(&specs, &raw), RowCounts::default());
    assert!(matches!(
        error,
        Err(ModelError::InvalidColumnAggregate { ref column, what: "range", .. }) if column == "huge"
    ));
}

#[test]
fn a_histogram_that_does_not_count_every_value_is_refused() {
    let specs = specs();
    let raw = &sites()[0];
    let rows = RowCounts {
        train: raw.nrows() as u64,
        ..RowCounts::default()
    };
    let first = statistics_to_masked(&specs, &coarse(&specs, raw), rows).unwrap();
    let pooled = statistics_from_masked(&specs, &first).unwrap();
    let plan = pooled.plan(&specs, 8);
    let exact = summarize(&specs, raw.view()).unwrap();
    let histograms = median_plan(&specs, &plan)
        .histograms(&specs, raw.view())
        .unwrap();
    let mut second = moments_to_masked(&specs, &plan, &exact, &histograms).unwrap();
    second[2] += 1.0;
    assert!(matches!(
        pooled.finish(&specs, &plan, &second),
        Err(ModelError::InvalidColumnAggregate {
            what: "histogram",
            ..
        })
    ));
    // A median column without its histogram cannot be encoded.
    let none = vec![None; specs.len()];
    assert!(matches!(
        moments_to_masked(&specs, &plan, &exact, &none),
        Err(ModelError::MissingHistogram { .. })
    ));
}

#[test]
fn the_grid_is_sorted_and_holds_every_coarse_bound() {
    let grid = range_grid();
    assert_eq!(grid.len(), 169);
    assert!(grid.windows(2).all(|w| w[0] < w[1]));
    assert_eq!((grid[0], grid[168]), (-5e15, 5e15));
}

proptest! {
    #[test]
    fn coarse_bounds_are_grid_values(a in -1e12f64..1e12, b in -1e12f64..1e12) {
        let (min, max) = (a.min(b), a.max(b));
        let (low, high) = coarse_bounds(min, max);
        let grid = range_grid();
        // Magnitudes below 1e-12 are not on the grid (they widen to the
        // next grid value); others are, exactly.
        for v in [low, high] {
            prop_assert!(v == 0.0 || v.abs() < 1e-12 || grid.contains(&v), "{v}");
        }
    }
}
