//! The exact-fit terms as summed vectors. For `D` = [`Task::dimension`]:
//! Newton terms are `[n, loss sum, gradient sum..., upper triangle of the
//! Hessian sum row by row...]` and normal-equation terms `[n, yᵀy, Xᵀy...,
//! upper triangle of XᵀX row by row...]`, both `2 + D + D(D+1)/2` values
//! (`y_sum` travels as `Xᵀy[0]`, which it equals). A Newton round's
//! held-out counts follow its terms when asked for.

use medfed_model::{ModelKind, NewtonTerms, NormalTerms};

use super::update::{read_round_counts, write_round_counts};
use super::{
    CountsShape, LayoutError, Summed, check_finite, check_len, symmetric, triangle_len, write_upper,
};
use crate::submission::{EvaluationCounts, NewtonReport, NormalReport};
use crate::task::Task;

/// Length of Newton or normal-equation terms for `dimension` parameters.
fn terms_len(dimension: usize) -> usize {
    2 + dimension + triangle_len(dimension)
}

/// Checks a summed vector's length and values, and reads its row count
/// (the nearest whole number, at least 1).
fn rows(layout: &'static str, values: &[f64], dimension: usize) -> Result<u64, LayoutError> {
    check_finite(layout, values, terms_len(dimension))?;
    let n = values[0].round();
    if !(n >= 1.0 && n < u64::MAX as f64) {
        return Err(LayoutError::Invalid {
            layout,
            reason: format!("the summed row count {} is not a positive count", values[0]),
        });
    }
    Ok(n as u64)
}

fn check_dimension(
    what: &'static str,
    dimension: usize,
    vector: usize,
    matrix: (usize, usize),
) -> Result<(), LayoutError> {
    check_len(what, dimension, vector)?;
    check_len(what, dimension, matrix.0)?;
    check_len(what, dimension, matrix.1)
}

const NEWTON: &str = "summed Newton terms";

/// The shape is the model's dimension `D`.
impl Summed for NewtonTerms {
    type Shape = usize;
    type Sum = NewtonTerms;

    fn len(dimension: &usize) -> usize {
        terms_len(*dimension)
    }

    fn write(&self, dimension: &usize, out: &mut Vec<f64>) -> Result<(), LayoutError> {
        check_dimension(
            "Newton terms",
            *dimension,
            self.gradient_sum.len(),
            self.hessian_sum.dim(),
        )?;
        out.extend([self.n as f64, self.loss_sum]);
        out.extend(self.gradient_sum.iter());
        write_upper(&self.hessian_sum, out);
        Ok(())
    }

    /// # Errors
    /// Wrong length, non-finite values, a row count below 1, or terms that
    /// cannot come from real rows (see `NewtonTerms::validate`).
    fn read(dimension: &usize, values: &[f64]) -> Result<NewtonTerms, LayoutError> {
        let d = *dimension;
        let n = rows(NEWTON, values, d)?;
        let terms = NewtonTerms {
            n,
            loss_sum: values[1],
            gradient_sum: values[2..2 + d].iter().copied().collect(),
            hessian_sum: symmetric(&values[2 + d..], d),
        };
        terms
            .validate_sums(d - 1)
            .map_err(|e| LayoutError::invalid(NEWTON, e))?;
        Ok(terms)
    }
}

const NORMAL: &str = "summed normal-equation terms";

/// The shape is the model's dimension `D`.
impl Summed for NormalTerms {
    type Shape = usize;
    type Sum = NormalTerms;

    fn len(dimension: &usize) -> usize {
        terms_len(*dimension)
    }

    fn write(&self, dimension: &usize, out: &mut Vec<f64>) -> Result<(), LayoutError> {
        check_dimension(
            "normal-equation terms",
            *dimension,
            self.xty.len(),
            self.xtx.dim(),
        )?;
        out.extend([self.n as f64, self.yty]);
        out.extend(self.xty.iter());
        write_upper(&self.xtx, out);
        Ok(())
    }

    /// # Errors
    /// Wrong length, non-finite values, a row count below 1, or terms that
    /// cannot come from real rows (see `NormalTerms::validate`).
    fn read(dimension: &usize, values: &[f64]) -> Result<NormalTerms, LayoutError> {
        let d = *dimension;
        let n = rows(NORMAL, values, d)?;
        let xty: ndarray::Array1<f64> = values[2..2 + d].iter().copied().collect();
        let terms = NormalTerms {
            n,
            yty: values[1],
            y_sum: xty[0],
            xtx: symmetric(&values[2 + d..], d),
            xty,
        };
        terms
            .validate(d - 1)
            .map_err(|e| LayoutError::invalid(NORMAL, e))?;
        Ok(terms)
    }
}

/// The layout of a Newton round: its terms, then its held-out counts when
/// asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewtonShape {
    /// The task's model, whose family bounds the terms.
    pub model: ModelKind,
    /// Parameters of the model.
    pub dimension: usize,
    /// The round's held-out counts, when asked for.
    pub counts: Option<CountsShape>,
}

impl NewtonShape {
    /// A Newton round of `task`, with its counts when `evaluate`.
    pub fn new(task: &Task, evaluate: bool) -> NewtonShape {
        NewtonShape {
            model: task.model,
            dimension: task.dimension(),
            counts: evaluate.then(|| CountsShape::round(task)),
        }
    }
}

impl Summed for NewtonReport {
    type Shape = NewtonShape;
    type Sum = (NewtonTerms, Option<EvaluationCounts>);

    fn len(shape: &NewtonShape) -> usize {
        NewtonTerms::len(&shape.dimension) + shape.counts.as_ref().map_or(0, EvaluationCounts::len)
    }

    fn write(&self, shape: &NewtonShape, out: &mut Vec<f64>) -> Result<(), LayoutError> {
        self.terms.write(&shape.dimension, out)?;
        write_round_counts(self.evaluation.as_ref(), shape.counts.as_ref(), out)
    }

    /// # Errors
    /// As [`NewtonTerms`] and [`EvaluationCounts`] read their parts, and
    /// terms that no rows of the model's family could have summed to.
    fn read(shape: &NewtonShape, values: &[f64]) -> Result<Self::Sum, LayoutError> {
        let split = NewtonTerms::len(&shape.dimension).min(values.len());
        let (terms, counts) = values.split_at(split);
        let terms = NewtonTerms::read(&shape.dimension, terms)?;
        terms
            .validate_for_kind(shape.model, shape.dimension - 1)
            .map_err(|e| LayoutError::invalid(NEWTON, e))?;
        Ok((terms, read_round_counts(shape.counts.as_ref(), counts)?))
    }
}

/// The shape is the model's dimension `D`.
impl Summed for NormalReport {
    type Shape = usize;
    type Sum = NormalTerms;

    fn len(dimension: &usize) -> usize {
        NormalTerms::len(dimension)
    }

    fn write(&self, dimension: &usize, out: &mut Vec<f64>) -> Result<(), LayoutError> {
        self.terms.write(dimension, out)
    }

    fn read(dimension: &usize, values: &[f64]) -> Result<NormalTerms, LayoutError> {
        NormalTerms::read(dimension, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summed::add_into;
    use ndarray::{Axis, Slice, array};

    #[test]
    fn summed_terms_are_the_pooled_terms_and_are_checked() {
        let x = array![[0.5, -1.0], [1.5, 0.2], [-0.3, 0.7], [2.0, -0.4]];
        let (first, rest) = (Slice::from(..2), Slice::from(2..));
        let (a, b) = (x.slice_axis(Axis(0), first), x.slice_axis(Axis(0), rest));
        let d = 3;
        let y = array![1.0, 0.0, 1.0, 0.0];
        let (ya, yb) = (y.slice_axis(Axis(0), first), y.slice_axis(Axis(0), rest));
        let params = array![0.1, 0.2, -0.3];
        let pooled = NewtonTerms::from_rows(x.view(), y.view(), params.view()).unwrap();
        let mut sum = NewtonTerms::from_rows(a, ya, params.view())
            .unwrap()
            .to_vector(&d)
            .unwrap();
        assert_eq!(sum.len(), 2 + 3 + 6);
        let vb = NewtonTerms::from_rows(b, yb, params.view())
            .unwrap()
            .to_vector(&d)
            .unwrap();
        add_into(&mut sum, &vb).unwrap();
        let got = NewtonTerms::read(&d, &sum).unwrap();
        assert_eq!(got.n, 4);
        assert!((got.loss_sum - pooled.loss_sum).abs() < 1e-12);
        let close = |p: &ndarray::ArrayD<f64>, q: &ndarray::ArrayD<f64>| {
            (p - q).iter().all(|v| v.abs() < 1e-12)
        };
        assert!(close(
            &got.gradient_sum.clone().into_dyn(),
            &pooled.gradient_sum.clone().into_dyn()
        ));
        assert!(close(
            &got.hessian_sum.clone().into_dyn(),
            &pooled.hessian_sum.clone().into_dyn()
        ));
        assert!(NewtonTerms::read(&d, &sum[1..]).is_err());
        let mut no_rows = sum.clone();
        no_rows[0] = 0.2;
        assert!(NewtonTerms::read(&d, &no_rows).is_err());
        let mut negative_loss = sum.clone();
        negative_loss[1] = -1.0;
        assert!(NewtonTerms::read(&d, &negative_loss).is_err());
        assert!(pooled.to_vector(&2).is_err());

        let y = array![1.0, 2.0, 3.0, -1.0];
        let (ya, yb) = (y.slice_axis(Axis(0), first), y.slice_axis(Axis(0), rest));
        let pooled = NormalTerms::from_rows(x.view(), y.view()).unwrap();
        let mut sum = NormalTerms::from_rows(a, ya)
            .unwrap()
            .to_vector(&d)
            .unwrap();
        let vb = NormalTerms::from_rows(b, yb)
            .unwrap()
            .to_vector(&d)
            .unwrap();
        add_into(&mut sum, &vb).unwrap();
        let got = NormalTerms::read(&d, &sum).unwrap();
        assert_eq!(got.n, 4);
        assert!((got.yty - pooled.yty).abs() < 1e-12);
        assert!((got.y_sum - pooled.y_sum).abs() < 1e-12);
        assert!(close(
            &got.xty.clone().into_dyn(),
            &pooled.xty.clone().into_dyn()
        ));
        assert!(close(
            &got.xtx.clone().into_dyn(),
            &pooled.xtx.clone().into_dyn()
        ));
        // XᵀX[0][0] is the row count: a sum whose two disagree is refused.
        let mut wrong_rows = sum;
        wrong_rows[0] = 5.0;
        assert!(NormalTerms::read(&d, &wrong_rows).is_err());
    }
}
