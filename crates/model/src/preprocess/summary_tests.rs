use ndarray::array;
use proptest::prelude::*;

use super::*;
use crate::testing::rows;

fn specs() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec {
            unknown_values: vec![0.0],
            ..ColumnSpec::numeric("chol")
        },
        ColumnSpec::categorical("cp", vec![1, 2, 3]),
    ]
}

#[test]
fn summary_by_hand() {
    // chol: 200, unknown 0, NaN, 300 -> 2 values of 4 rows.
    // cp: 1, 3, 3, NaN -> counts [1, 0, 2].
    let raw = array![[200.0, 1.0], [0.0, 3.0], [f64::NAN, 3.0], [300.0, f64::NAN]];
    let s = summarize(&specs(), raw.view()).unwrap();
    assert_eq!(
        s[0],
        ColumnSummary {
            rows: 4,
            count: 2,
            sum: 500.0,
            sum_sq: 130_000.0,
            min: 200.0,
            max: 300.0,
            category_counts: vec![],
        }
    );
    assert_eq!(s[0].missing(), 2);
    assert_eq!(s[0].mean(), Some(250.0));
    assert_eq!(s[1].category_counts, vec![1, 0, 2]);
    assert_eq!((s[1].count, s[1].min, s[1].max), (3, 1.0, 3.0));
    assert_eq!(s[0].validate(&specs()[0]), Ok(()));
    assert_eq!(s[1].validate(&specs()[1]), Ok(()));
    assert_eq!(
        summary_notes(&specs(), &s).unwrap(),
        vec![ColumnNote::ZeroVariance {
            column: "cp=2".into()
        }]
    );
}

#[test]
fn unknown_categories_and_shapes_are_refused() {
    let raw = array![[200.0, 1.0], [210.0, 5.0]];
    assert_eq!(
        summarize(&specs(), raw.view()),
        Err(ModelError::UnknownCategory {
            column: "cp".into(),
            row: 1
        })
    );
    assert!(matches!(
        summarize(&specs(), array![[1.0]].view()),
        Err(ModelError::Dimension { .. })
    ));
}

#[test]
fn an_empty_site_merges_as_the_identity() {
    let raw = array![[200.0, 1.0], [250.0, 2.0]];
    let mut total = summarize(&specs(), raw.view()).unwrap();
    let before = total.clone();
    let empty = summarize(&specs(), raw.slice_axis(ndarray::Axis(0), (0..0).into())).unwrap();
    assert_eq!(
        summary_notes(&specs(), &empty).unwrap(),
        vec![
            ColumnNote::AllMissing {
                column: "chol".into()
            },
            ColumnNote::AllMissing {
                column: "cp".into()
            }
        ]
    );
    merge_summaries(&mut total, &empty).unwrap();
    assert_eq!(total, before);
    let mut from_empty = empty;
    merge_summaries(&mut from_empty, &before).unwrap();
    assert_eq!(from_empty, before);
}

#[test]
fn validate_refuses_impossible_summaries() {
    let spec = ColumnSpec::numeric("x");
    let good = ColumnSummary {
        rows: 3,
        count: 2,
        sum: 3.0,
        sum_sq: 5.0,
        min: 1.0,
        max: 2.0,
        category_counts: vec![],
    };
    assert_eq!(good.validate(&spec), Ok(()));
    for (bad, what) in [
        (
            ColumnSummary {
                count: 4,
                ..good.clone()
            },
            "count",
        ),
        (
            ColumnSummary {
                sum: f64::NAN,
                ..good.clone()
            },
            "sums",
        ),
        (
            ColumnSummary {
                min: 3.0,
                ..good.clone()
            },
            "min",
        ),
        (
            ColumnSummary {
                sum: 5.0,
                ..good.clone()
            },
            "sum",
        ),
        (
            ColumnSummary {
                count: 0,
                ..good.clone()
            },
            "statistics of no values",
        ),
    ] {
        let err = bad.validate(&spec).unwrap_err();
        assert!(
            matches!(
                &err,
                ModelError::InvalidColumnAggregate { column, what: w, .. }
                    if column == "x" && *w == what
            ),
            "{what}: {err}"
        );
    }
    let cat = ColumnSpec::categorical("c", vec![1, 2]);
    let counts = ColumnSummary {
        category_counts: vec![1, 0],
        ..good.clone()
    };
    assert!(matches!(
        counts.validate(&cat),
        Err(ModelError::InvalidColumnAggregate {
            what: "category_counts",
            ..
        })
    ));
    assert!(matches!(
        good.validate(&cat),
        Err(ModelError::Dimension { .. })
    ));
    let mut short = vec![good.clone()];
    assert!(merge_summaries(&mut short, &[good.clone(), good]).is_err());
}

fn matrix() -> impl Strategy<Value = ndarray::Array2<f64>> {
    (0usize..30).prop_flat_map(|n| {
        proptest::collection::vec(
            (
                prop_oneof![1 => Just(f64::NAN), 1 => Just(0.0), 4 => -1e3f64..1e3],
                prop_oneof![1 => Just(f64::NAN), 4 => (1i64..4).prop_map(|c| c as f64)],
            ),
            n,
        )
        .prop_map(move |cells| {
            ndarray::Array2::from_shape_fn(
                (n, 2),
                |(i, j)| {
                    if j == 0 { cells[i].0 } else { cells[i].1 }
                },
            )
        })
    })
}

proptest! {
    #[test]
    fn merged_parts_equal_the_whole(raw in matrix(), cut in 0.0f64..=1.0) {
        let n = raw.nrows();
        let split = (n as f64 * cut) as usize;
        let whole = summarize(&specs(), raw.view()).unwrap();
        let mut merged = summarize(&specs(), rows(raw.view(), 0, split)).unwrap();
        merge_summaries(&mut merged, &summarize(&specs(), rows(raw.view(), split, n)).unwrap())
            .unwrap();
        for ((m, w), spec) in merged.iter().zip(&whole).zip(&specs()) {
            prop_assert!(m.validate(spec).is_ok());
            prop_assert_eq!((m.rows, m.count, m.min, m.max), (w.rows, w.count, w.min, w.max));
            prop_assert_eq!(&m.category_counts, &w.category_counts);
            prop_assert!((m.sum - w.sum).abs() <= 1e-9 * w.sum_sq.sqrt().max(1.0) * 30.0);
            prop_assert!((m.sum_sq - w.sum_sq).abs() <= 1e-9 * w.sum_sq.max(1.0));
        }
    }
}
