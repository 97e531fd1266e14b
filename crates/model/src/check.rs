//! Input checks shared by the modules: sizes, value ranges, hyperparameters,
//! and locating the cause of a non-finite result.

use ndarray::ArrayView2;

use crate::error::ModelError;

/// Fails with [`ModelError::Dimension`] unless `got == expected`.
pub(crate) fn length(what: &'static str, expected: usize, got: usize) -> Result<(), ModelError> {
    if expected == got {
        Ok(())
    } else {
        Err(ModelError::Dimension {
            what,
            expected,
            got,
        })
    }
}

/// Fails with [`ModelError::InvalidValues`] if any value fails `ok`, saying
/// how many do and where the first is.
pub(crate) fn values<'a>(
    what: &'static str,
    allowed: &'static str,
    values: impl IntoIterator<Item = &'a f64>,
    ok: impl Fn(f64) -> bool,
) -> Result<(), ModelError> {
    entries(what, allowed, values.into_iter().map(|&v| ok(v)))
}

/// Fails with [`ModelError::InvalidValues`] if any entry is flagged `false`
/// (invalid), saying how many are and where the first is.
pub(crate) fn entries(
    what: &'static str,
    allowed: &'static str,
    valid: impl IntoIterator<Item = bool>,
) -> Result<(), ModelError> {
    let mut total = 0;
    let mut invalid = 0;
    let mut first = None;
    for (index, ok) in valid.into_iter().enumerate() {
        total += 1;
        if !ok {
            invalid += 1;
            first.get_or_insert(index);
        }
    }
    match first {
        None => Ok(()),
        Some(first) => Err(ModelError::InvalidValues {
            what,
            invalid,
            total,
            first,
            allowed,
        }),
    }
}

/// Fails unless every value is finite.
pub(crate) fn finite<'a>(
    what: &'static str,
    v: impl IntoIterator<Item = &'a f64>,
) -> Result<(), ModelError> {
    values(what, "finite numbers", v, f64::is_finite)
}

/// Fails unless every value is a probability, i.e. in `[0, 1]` (so not NaN).
pub(crate) fn probabilities<'a>(
    what: &'static str,
    v: impl IntoIterator<Item = &'a f64>,
) -> Result<(), ModelError> {
    values(what, "probabilities in [0, 1]", v, |p| {
        (0.0..=1.0).contains(&p)
    })
}

/// The L2 penalty must be finite and non-negative.
pub(crate) fn l2(l2: f64) -> Result<(), ModelError> {
    if l2.is_finite() && l2 >= 0.0 {
        Ok(())
    } else {
        Err(ModelError::InvalidHyperparameter {
            name: "l2 penalty",
            value: l2,
            allowed: "a finite number >= 0",
        })
    }
}

/// The learning rate must be finite and positive.
pub(crate) fn learning_rate(rate: f64) -> Result<(), ModelError> {
    if rate.is_finite() && rate > 0.0 {
        Ok(())
    } else {
        Err(ModelError::InvalidHyperparameter {
            name: "learning rate",
            value: rate,
            allowed: "a finite number > 0",
        })
    }
}

/// Explains a non-finite result computed from `x` and otherwise validated
/// inputs. The hot loops do not check every cell (that would cost a second
/// pass over the data); they check their result and call this only when it
/// is bad, so the scan happens on the error path alone.
pub(crate) fn non_finite_result(x: ArrayView2<'_, f64>, what: &'static str) -> ModelError {
    for (row, values) in x.rows().into_iter().enumerate() {
        if let Some(column) = values.iter().position(|v| !v.is_finite()) {
            return ModelError::NonFiniteFeature { row, column };
        }
    }
    ModelError::Overflow { what }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    #[test]
    fn values_reports_count_and_first_index() {
        let v = [1.0, f64::NAN, 2.0, f64::INFINITY];
        assert_eq!(
            finite("parameters", &v),
            Err(ModelError::InvalidValues {
                what: "parameters",
                invalid: 2,
                total: 4,
                first: 1,
                allowed: "finite numbers",
            })
        );
        assert_eq!(finite("parameters", &[0.0, -1.0]), Ok(()));
    }

    #[test]
    fn hyperparameter_ranges() {
        assert!(l2(0.0).is_ok());
        assert!(l2(-1e-9).is_err());
        assert!(l2(f64::NAN).is_err());
        assert!(learning_rate(0.1).is_ok());
        assert!(learning_rate(0.0).is_err());
        assert!(learning_rate(f64::INFINITY).is_err());
    }

    #[test]
    fn non_finite_result_names_the_first_bad_cell() {
        let x = array![[1.0, 2.0], [3.0, f64::NEG_INFINITY], [f64::NAN, 0.0]];
        assert_eq!(
            non_finite_result(x.view(), "loss"),
            ModelError::NonFiniteFeature { row: 1, column: 1 }
        );
        let x = array![[1.0, 2.0]];
        assert_eq!(
            non_finite_result(x.view(), "loss"),
            ModelError::Overflow { what: "loss" }
        );
    }
}
