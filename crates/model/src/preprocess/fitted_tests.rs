use approx::assert_relative_eq;
use ndarray::{Array2, array};

use super::*;
use crate::preprocess::histogram::{HistogramPlan, merge_histograms};
use crate::preprocess::summary::{merge_summaries, summarize, summary_notes};
use crate::testing::rows;

fn specs() -> Vec<ColumnSpec> {
    vec![
        ColumnSpec::numeric("age"),
        ColumnSpec {
            transform: Transform::None,
            missing: Impute::Median,
            unknown_values: vec![0.0],
            missing_indicator: true,
            ..ColumnSpec::numeric("chol")
        },
        ColumnSpec {
            transform: Transform::None,
            missing_indicator: true,
            ..ColumnSpec::categorical("cp", vec![1, 2, 3])
        },
        ColumnSpec {
            transform: Transform::MinMax,
            missing: Impute::Constant(120.0),
            ..ColumnSpec::numeric("bp")
        },
    ]
}

/// Runs both passes over two "sites" (rows 0..2 and 2..) and fits.
fn fit_two_sites(
    specs: &[ColumnSpec],
    raw: &Array2<f64>,
    bins: usize,
) -> Result<(FittedPreprocessor, Vec<ColumnNote>), ModelError> {
    let n = raw.nrows();
    let sites = [rows(raw.view(), 0, 2), rows(raw.view(), 2, n)];
    let mut merged = summarize(specs, sites[0])?;
    merge_summaries(&mut merged, &summarize(specs, sites[1])?)?;
    let plan = HistogramPlan::new(specs, &merged, bins)?;
    if plan.is_empty() {
        return FittedPreprocessor::fit(specs, &merged, None);
    }
    let mut histograms = plan.histograms(specs, sites[0])?;
    merge_histograms(&mut histograms, &plan.histograms(specs, sites[1])?)?;
    FittedPreprocessor::fit(specs, &merged, Some(&histograms))
}

#[test]
fn one_hot_imputation_and_scaling_by_hand() {
    let nan = f64::NAN;
    //            age   chol   cp   bp
    let raw = array![
        [40.0, 200.0, 1.0, 100.0],
        [50.0, 0.0, 2.0, nan], // chol 0 means unknown
        [60.0, 300.0, 1.0, 140.0],
        [nan, 250.0, nan, 120.0],
    ];
    let (fitted, notes) = fit_two_sites(&specs(), &raw, 4).unwrap();
    assert_eq!(
        fitted.output_names(),
        [
            "age",
            "chol",
            "chol_missing",
            "cp=1",
            "cp=2",
            "cp=3",
            "cp_missing",
            "bp"
        ]
    );
    assert_eq!(fitted.width(), 8);
    // Category 3 never occurs, so its column is constant.
    assert_eq!(
        notes,
        vec![ColumnNote::ZeroVariance {
            column: "cp=3".into()
        }]
    );
    // age: 40, 50, 60 -> mean 50, population std sqrt(200/3); missing -> 0.
    // chol: values 200, 300, 250 in 4 bins of 25 over [200, 300]; the
    //   median (rank 2 of 3) is 250, in bin 2, read as its midpoint 262.5.
    //   No transform; the unknown 0 is missing, filled with 262.5.
    // cp: counts [2, 1, 0] of 3 values; a missing value gets the shares.
    // bp: min 100, max 140; missing -> the constant 120 -> (120-100)/40.
    let s = (200.0f64 / 3.0).sqrt();
    let expected = array![
        [-10.0 / s, 200.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 262.5, 1.0, 0.0, 1.0, 0.0, 0.0, 0.5],
        [10.0 / s, 300.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        [0.0, 250.0, 0.0, 2.0 / 3.0, 1.0 / 3.0, 0.0, 1.0, 0.5],
    ];
    let design = fitted.apply(raw.view()).unwrap();
    assert_eq!(design.dim(), expected.dim());
    for (got, want) in design.iter().zip(&expected) {
        assert_relative_eq!(*got, *want, epsilon = 1e-12);
    }
    // The indicator and one-hot cells are exact, not merely close.
    assert_eq!(design.column(2).to_vec(), [0.0, 1.0, 0.0, 0.0]);
    assert_eq!(design.column(3).to_vec(), [1.0, 0.0, 1.0, 2.0 / 3.0]);

    // What the coordinator publishes round-trips through JSON.
    let json = serde_json::to_string(&fitted).unwrap();
    let back: FittedPreprocessor = serde_json::from_str(&json).unwrap();
    assert_eq!(back, fitted);
    assert_eq!(back.validate(), Ok(()));
    assert_eq!(back.apply(raw.view()).unwrap(), design);
}

#[test]
fn categories_outside_the_list_name_column_and_row_only() {
    let raw = array![[40.0, 200.0, 1.0, 100.0], [50.0, 210.0, 2.0, 110.0]];
    let (fitted, _) = fit_two_sites(&specs(), &raw, 4).unwrap();
    let bad = array![[41.0, 201.0, 1.0, 101.0], [42.0, 202.0, 7.0, 102.0]];
    let err = fitted.apply(bad.view()).unwrap_err();
    assert_eq!(
        err,
        ModelError::UnknownCategory {
            column: "cp".into(),
            row: 1
        }
    );
    let message = err.to_string();
    assert!(
        message.contains("\"cp\"") && message.contains("row 1"),
        "{message}"
    );
    assert!(!message.contains('7'), "{message}");
    // A non-integer is refused the same way, and so is a code at a site's
    // first pass.
    let half = array![[41.0, 201.0, 1.5, 101.0]];
    assert!(matches!(
        fitted.apply(half.view()),
        Err(ModelError::UnknownCategory { row: 0, .. })
    ));
    assert!(matches!(
        summarize(&specs(), bad.view()),
        Err(ModelError::UnknownCategory { row: 1, .. })
    ));
    assert_eq!(
        fitted.apply(array![[f64::INFINITY, 1.0, 1.0, 1.0]].view()),
        Err(ModelError::NonFiniteFeature { row: 0, column: 0 })
    );
    assert!(matches!(
        fitted.apply(array![[1.0, 2.0]].view()),
        Err(ModelError::Dimension { .. })
    ));
}

#[test]
fn unknown_values_become_missing_before_anything_else() {
    // Cholesterol recorded as 0 at one site means "not measured": it must
    // not drag the mean down nor count as a value.
    let spec = ColumnSpec {
        unknown_values: vec![0.0, -1.0],
        missing_indicator: true,
        transform: Transform::None,
        ..ColumnSpec::numeric("chol")
    };
    let raw = array![[200.0], [0.0], [-1.0], [300.0]];
    let (fitted, notes) = fit_two_sites(std::slice::from_ref(&spec), &raw, 8).unwrap();
    assert!(notes.is_empty());
    let design = fitted.apply(raw.view()).unwrap();
    assert_eq!(
        design,
        array![[200.0, 0.0], [250.0, 1.0], [250.0, 1.0], [300.0, 0.0]]
    );
}

#[test]
fn degenerate_columns_get_safe_transforms_and_notes() {
    let nan = f64::NAN;
    let specs = vec![
        ColumnSpec::numeric("empty"),
        ColumnSpec {
            missing: Impute::Constant(7.0),
            transform: Transform::None,
            ..ColumnSpec::numeric("empty_const")
        },
        ColumnSpec::numeric("flat"),
        ColumnSpec {
            transform: Transform::MinMax,
            missing: Impute::Median,
            ..ColumnSpec::numeric("flat_minmax")
        },
        ColumnSpec::categorical("one", vec![5, 6]),
        // Present at the second site only.
        ColumnSpec::numeric("late"),
    ];
    let raw = array![
        [nan, nan, 3.0, 9.0, 5.0, nan],
        [nan, nan, 3.0, 9.0, 5.0, nan],
        [nan, nan, 3.0, 9.0, 5.0, 1.0],
        [nan, nan, 3.0, nan, nan, 3.0],
    ];
    // At the first site "late" has no value; globally it is fine.
    let first = summarize(&specs, rows(raw.view(), 0, 2)).unwrap();
    assert!(
        summary_notes(&specs, &first)
            .unwrap()
            .contains(&ColumnNote::AllMissing {
                column: "late".into()
            })
    );
    let (fitted, notes) = fit_two_sites(&specs, &raw, 16).unwrap();
    let names: Vec<String> = notes.iter().map(ToString::to_string).collect();
    assert_eq!(
        notes,
        vec![
            ColumnNote::AllMissing {
                column: "empty".into()
            },
            ColumnNote::AllMissing {
                column: "empty_const".into()
            },
            ColumnNote::ZeroVariance {
                column: "flat".into()
            },
            ColumnNote::ZeroVariance {
                column: "flat_minmax".into()
            },
            ColumnNote::ZeroVariance {
                column: "one=5".into()
            },
            ColumnNote::ZeroVariance {
                column: "one=6".into()
            },
        ],
        "{names:?}"
    );
    assert_eq!(fitted.validate(), Ok(()));
    let design = fitted.apply(raw.view()).unwrap();
    assert!(design.iter().all(|v| v.is_finite()));
    // empty -> 0; empty_const -> 7 untransformed; flat -> 0; flat_minmax
    // (median of the constant 9) -> 0; one=5 -> 0 (always 5, missing gets
    // the share 1, centred on 1); one=6 -> 0; late -> standardised 1, 3.
    let expected = array![
        [0.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 7.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [0.0, 7.0, 0.0, 0.0, 0.0, 0.0, -1.0],
        [0.0, 7.0, 0.0, 0.0, 0.0, 0.0, 1.0],
    ];
    assert_eq!(design, expected);
}

#[test]
fn median_columns_need_a_matching_histogram() {
    let specs = specs();
    let raw = array![
        [40.0, 200.0, 1.0, 100.0],
        [50.0, 220.0, 2.0, 110.0],
        [60.0, 240.0, 2.0, 120.0]
    ];
    let summaries = summarize(&specs, raw.view()).unwrap();
    assert_eq!(
        FittedPreprocessor::fit(&specs, &summaries, None),
        Err(ModelError::MissingHistogram {
            column: "chol".into()
        })
    );
    let plan = HistogramPlan::new(&specs, &summaries, 10).unwrap();
    // A histogram of fewer rows than the summary: the passes disagree.
    let partial = plan.histograms(&specs, rows(raw.view(), 0, 2)).unwrap();
    assert!(matches!(
        FittedPreprocessor::fit(&specs, &summaries, Some(&partial)),
        Err(ModelError::InvalidColumnAggregate {
            what: "histogram total",
            ..
        })
    ));
    let full = plan.histograms(&specs, raw.view()).unwrap();
    assert!(FittedPreprocessor::fit(&specs, &summaries, Some(&full)).is_ok());
    assert!(matches!(
        FittedPreprocessor::fit(&specs, &summaries, Some(&full[..2])),
        Err(ModelError::Dimension { .. })
    ));
}

#[test]
fn validate_refuses_tampered_preprocessors() {
    let raw = array![[40.0, 200.0, 1.0, 100.0], [50.0, 210.0, 2.0, 110.0]];
    let (fitted, _) = fit_two_sites(&specs(), &raw, 4).unwrap();
    let field = |p: &FittedPreprocessor| match p.validate() {
        Err(ModelError::InvalidColumnSpec { column, field, .. }) => (column, field),
        other => panic!("unexpected {other:?}"),
    };

    let mut bad = fitted.clone();
    bad.columns[0].encoding = Encoding::Numeric(Scaling {
        fill: 0.0,
        center: 0.0,
        scale: 0.0,
    });
    assert_eq!(field(&bad), ("age".into(), "encoding"));
    assert!(bad.apply(raw.view()).is_err());

    let mut bad = fitted.clone();
    if let Encoding::Categorical { dummies, .. } = &mut bad.columns[2].encoding {
        dummies.pop();
    }
    assert_eq!(field(&bad), ("cp".into(), "dummies"));

    let mut bad = fitted.clone();
    bad.columns[3].name = "age".into();
    assert_eq!(field(&bad), ("age".into(), "name"));

    let mut bad = fitted.clone();
    bad.columns[1].unknown_values.push(f64::NAN);
    assert_eq!(field(&bad), ("chol".into(), "unknown_values"));

    let mut json: serde_json::Value = serde_json::to_value(&fitted).unwrap();
    json["columns"][0]["extra"] = serde_json::Value::Bool(true);
    assert!(serde_json::from_value::<FittedPreprocessor>(json).is_err());
}
