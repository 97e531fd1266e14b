//! The counts behind each design column a task would make on this site's
//! training rows, checked against `min_cell` before anything is computed.
//!
//! A 0/1 design column (a one-hot code, a missing indicator) held by a few
//! rows, or by all but a few, singles those rows out: its row of XᵀX or of
//! the Hessian is their feature vector, and secure aggregation does not
//! help, since the sum over one record is the record. The same holds for any
//! column that takes two values only (a numeric 0/1 column, or a column
//! whose missing values are filled with one value). So every such column
//! must have at least `min_cell` rows on each side, or none.

use medfed_model::ColumnSpec;
use ndarray::ArrayView2;

use super::Refused;

/// Checks the columns `specs` would make from the raw training rows `x`
/// (NaN = missing, one column per spec), and the binary labels `y` of a
/// model that predicts probabilities, against `min_cell`.
///
/// # Errors
/// [`Refused`] by `min_cell`, naming the column and what is too small
/// (never a value).
pub(super) fn check_design_cells(
    specs: &[ColumnSpec],
    x: ArrayView2<'_, f64>,
    labels: Option<ndarray::ArrayView1<'_, f64>>,
    min_cell: u64,
) -> Result<(), Refused> {
    let n = x.nrows() as u64;
    let too_few = |what: String| {
        Refused::task(
            "min_cell",
            format!(
                "{what} would hold between 1 and {} of this site's training rows, fewer than \
                 min_cell = {min_cell}",
                min_cell - 1
            ),
        )
    };
    // Both sides of a 0/1 split must be empty or hold min_cell rows.
    let split_ok = |ones: u64| side_ok(ones, min_cell) && side_ok(n - ones, min_cell);
    for (j, spec) in specs.iter().enumerate() {
        let column = x.column(j);
        let unknown = |v: f64| spec.unknown_values.contains(&v);
        for code in &spec.unknown_values {
            let count = column.iter().filter(|v| **v == *code).count() as u64;
            if !side_ok(count, min_cell) {
                return Err(too_few(format!(
                    "the unknown-value code of column `{}`",
                    spec.name
                )));
            }
        }
        let missing = column.iter().filter(|v| v.is_nan() || unknown(**v)).count() as u64;
        if spec.missing_indicator && !split_ok(missing) {
            return Err(too_few(format!(
                "the missing-value indicator `{}_missing` (or its complement)",
                spec.name
            )));
        }
        match &spec.categories {
            Some(codes) => {
                for code in codes {
                    let count = column.iter().filter(|v| **v == *code as f64).count() as u64;
                    if !split_ok(count) {
                        return Err(too_few(format!(
                            "the one-hot column `{}={code}` (or its complement)",
                            spec.name
                        )));
                    }
                }
            }
            None => {
                // A column of two classes (missing values filled with one
                // value count as a class of their own).
                let mut classes: Vec<(f64, u64)> = Vec::new();
                for v in column.iter().filter(|v| !(v.is_nan() || unknown(**v))) {
                    if let Some(i) = classes.iter().position(|(c, _)| c == v) {
                        classes[i].1 += 1;
                    } else if classes.len() < 3 {
                        classes.push((*v, 1));
                    } else {
                        break;
                    }
                }
                let mut counts: Vec<u64> = classes.iter().map(|(_, c)| *c).collect();
                if missing > 0 {
                    counts.push(missing);
                }
                if counts.len() == 2 && counts.iter().any(|c| !side_ok(*c, min_cell)) {
                    return Err(too_few(format!(
                        "one of the two values of column `{}`",
                        spec.name
                    )));
                }
            }
        }
    }
    if let Some(y) = labels {
        let positives = y.iter().filter(|v| **v == 1.0).count() as u64;
        if !split_ok(positives) {
            return Err(too_few("one class of the target".into()));
        }
    }
    Ok(())
}

/// Whether `count` rows may stand behind a released count: none, or at
/// least `min_cell`.
pub(super) fn side_ok(count: u64, min_cell: u64) -> bool {
    count == 0 || count >= min_cell
}

#[cfg(test)]
mod tests {
    use ndarray::{Array1, Array2};

    use super::*;

    fn column(values: &[f64]) -> Array2<f64> {
        Array2::from_shape_vec((values.len(), 1), values.to_vec()).expect("one column")
    }

    fn check(spec: ColumnSpec, values: &[f64]) -> Result<(), Refused> {
        check_design_cells(&[spec], column(values).view(), None, 5)
    }

    #[test]
    fn one_patient_singled_out_by_a_code_an_indicator_or_a_category_is_refused() {
        let ages: Vec<f64> = (0..40).map(|i| 40.0 + f64::from(i % 30)).collect();
        let mut isolate = ColumnSpec::numeric("age");
        isolate.unknown_values = vec![40.0 + 29.0];
        isolate.missing_indicator = true;
        let refused = check(isolate, &ages).expect_err("one row has the code");
        assert_eq!(refused.rule, "min_cell");
        assert!(!refused.reason.contains("69"), "{}", refused.reason);

        let codes: Vec<f64> = (0..40).map(|i| if i == 7 { 3.0 } else { 1.0 }).collect();
        let one_hot = ColumnSpec::categorical("cp", vec![1, 3]);
        assert_eq!(check(one_hot, &codes).map_err(|r| r.rule), Err("min_cell"));
        // All but one row: the complement singles the last one out.
        let all_but_one = ColumnSpec::categorical("cp", vec![1]);
        assert_eq!(
            check(all_but_one, &codes).map_err(|r| r.rule),
            Err("min_cell")
        );
        let numeric = ColumnSpec::numeric("sex");
        assert_eq!(check(numeric, &codes).map_err(|r| r.rule), Err("min_cell"));
    }

    #[test]
    fn ordinary_columns_pass() {
        let spread: Vec<f64> = (0..40).map(|i| f64::from(i % 4)).collect();
        assert_eq!(
            check(ColumnSpec::categorical("cp", vec![0, 1, 2, 3]), &spread),
            Ok(())
        );
        let mut with_missing: Vec<f64> = (0..40).map(f64::from).collect();
        for v in with_missing.iter_mut().take(6) {
            *v = f64::NAN;
        }
        let mut indicated = ColumnSpec::numeric("chol");
        indicated.missing_indicator = true;
        assert_eq!(check(indicated, &with_missing), Ok(()));
        let binary: Vec<f64> = (0..40).map(|i| f64::from(i % 2)).collect();
        assert_eq!(check(ColumnSpec::numeric("sex"), &binary), Ok(()));
        // A code nobody has, and a code everybody has, single nobody out.
        assert_eq!(
            check(ColumnSpec::categorical("cp", vec![0, 1]), &binary),
            Ok(())
        );
        let labels = Array1::from_iter(binary.iter().copied());
        let x = column(&spread);
        let specs = [ColumnSpec::numeric("a")];
        assert_eq!(
            check_design_cells(&specs, x.view(), Some(labels.view()), 5),
            Ok(())
        );
        let few = Array1::from_iter((0..40).map(|i| if i < 3 { 1.0 } else { 0.0 }));
        assert_eq!(
            check_design_cells(&specs, x.view(), Some(few.view()), 5).map_err(|r| r.rule),
            Err("min_cell")
        );
    }
}
