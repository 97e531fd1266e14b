//! Closed-form ridge regression from mergeable sufficient statistics.
//!
//! For a linear model the whole training set enters the least-squares
//! objective only through `XᵀX`, `Xᵀy` and `yᵀy` (with `X` augmented by a
//! column of ones for the intercept). Sites send these [`NormalTerms`]
//! once, the coordinator merges them and [`solve_normal`] gives the exact
//! pooled optimum in a single round.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Slice};

use crate::check;
use crate::error::ModelError;
use crate::kind::ModelKind;
use crate::linalg::{SymmetricAccumulator, check_symmetric, solve_with_ridge_fallback};
use crate::regression::check_labels;

/// Relative slack for the Cauchy–Schwarz check `y_sum² <= n * yty`, which
/// rounding can break for near-constant targets.
const MOMENT_SLACK: f64 = 1e-6;

/// Sums over one site's standardised rows that determine the least-squares
/// objective: with `a = [1, x]` the augmented row and `y` its target, a row
/// adds `a aᵀ` to `xtx`, `y a` to `xty`, `y²` to `yty` and `y` to `y_sum`.
/// Additive, so terms of disjoint row sets [`merge`](NormalTerms::merge)
/// into those of their union.
#[derive(Clone, Debug, PartialEq)]
pub struct NormalTerms {
    /// Number of rows.
    pub n: u64,
    /// `XᵀX` of the augmented design, `(d + 1) x (d + 1)`; entry `[0][0]`
    /// is `n`.
    pub xtx: Array2<f64>,
    /// `Xᵀy` of the augmented design, length `d + 1`; entry 0 is `y_sum`.
    pub xty: Array1<f64>,
    /// Sum of squared targets.
    pub yty: f64,
    /// Sum of targets.
    pub y_sum: f64,
}

impl NormalTerms {
    /// The terms of no rows, for `d` features.
    pub fn zeros(d: usize) -> Self {
        NormalTerms {
            n: 0,
            xtx: Array2::zeros((d + 1, d + 1)),
            xty: Array1::zeros(d + 1),
            yty: 0.0,
            y_sum: 0.0,
        }
    }

    /// The terms of the rows of `x` (standardised, `(n, d)`) with targets
    /// `y`. One pass; `XᵀX` fills only its upper triangle, with no
    /// allocation per row. No rows gives [`NormalTerms::zeros`].
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if `y` is not `n` long;
    /// [`ModelError::InvalidLabels`] for non-finite targets;
    /// [`ModelError::NonFiniteFeature`] if `x` holds a non-finite value;
    /// [`ModelError::Overflow`] if a sum is not finite for another reason.
    pub fn from_rows(x: ArrayView2<'_, f64>, y: ArrayView1<'_, f64>) -> Result<Self, ModelError> {
        let d = x.ncols();
        check::length("targets", x.nrows(), y.len())?;
        check_labels(ModelKind::Linear, y)?;
        let mut augmented = vec![1.0; d + 1];
        let mut xtx = SymmetricAccumulator::new(d + 1);
        let mut xty = vec![0.0; d + 1];
        let (mut yty, mut y_sum) = (0.0, 0.0);
        for (row, &target) in x.rows().into_iter().zip(y) {
            for (a, &v) in augmented[1..].iter_mut().zip(row) {
                *a = v;
            }
            xtx.add(&augmented, 1.0);
            for (s, &a) in xty.iter_mut().zip(&augmented) {
                *s += target * a;
            }
            yty += target * target;
            y_sum += target;
        }
        let terms = NormalTerms {
            n: x.nrows() as u64,
            xtx: xtx.into_matrix(),
            xty: Array1::from(xty),
            yty,
            y_sum,
        };
        let finite =
            terms.yty.is_finite() && terms.xtx.iter().chain(&terms.xty).all(|v| v.is_finite());
        if !finite {
            return Err(check::non_finite_result(x, "normal equations"));
        }
        Ok(terms)
    }

    /// Number of features `d`.
    pub fn features(&self) -> usize {
        self.xty.len().saturating_sub(1)
    }

    /// Adds `other`'s rows to these. On error nothing is changed.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if the two are for different numbers of
    /// features, and [`ModelError::Overflow`] if the row count would pass
    /// `u64::MAX`.
    pub fn merge(&mut self, other: &NormalTerms) -> Result<(), ModelError> {
        let m = self.xty.len();
        check::length("merged xty", m, other.xty.len())?;
        check::length("merged xtx rows", m, other.xtx.nrows())?;
        check::length("merged xtx columns", m, other.xtx.ncols())?;
        check::length("xtx rows", m, self.xtx.nrows())?;
        check::length("xtx columns", m, self.xtx.ncols())?;
        self.n = self.n.checked_add(other.n).ok_or(ModelError::Overflow {
            what: "merged normal-equation row count",
        })?;
        self.xtx += &other.xtx;
        self.xty += &other.xty;
        self.yty += other.yty;
        self.y_sum += other.y_sum;
        Ok(())
    }

    /// Checks that terms received from elsewhere could have come from
    /// [`NormalTerms::from_rows`] for `d` features: sizes; finite sums; a
    /// symmetric `xtx` with non-negative diagonal and `xtx[0][0] == n`
    /// exactly (a sum of ones); `xty[0] == y_sum` up to rounding;
    /// `yty >= 0` and `y_sum² <= n * yty` (Cauchy–Schwarz, with slack); and
    /// everything zero when `n` is 0.
    ///
    /// # Errors
    /// [`ModelError::Dimension`], [`ModelError::InvalidValues`],
    /// [`ModelError::Asymmetric`] or [`ModelError::InvalidAggregate`] for
    /// the first rule broken.
    pub fn validate(&self, d: usize) -> Result<(), ModelError> {
        check::length("xty", d + 1, self.xty.len())?;
        check::length("xtx rows", d + 1, self.xtx.nrows())?;
        check::length("xtx columns", d + 1, self.xtx.ncols())?;
        check::finite("xtx", self.xtx.iter())?;
        check::finite("xty", &self.xty)?;
        check_symmetric("xtx", self.xtx.view())?;
        check::values("xtx diagonal", "numbers >= 0", self.xtx.diag(), |v| {
            v >= 0.0
        })?;
        let invalid = |what, allowed| Err(ModelError::InvalidAggregate { what, allowed });
        if self.xtx[[0, 0]] != self.n as f64 {
            return invalid("xtx[0][0]", "exactly n (a sum of ones)");
        }
        if !(self.yty.is_finite() && self.yty >= 0.0) {
            return invalid("yty", "a finite number >= 0");
        }
        if !self.y_sum.is_finite() {
            return invalid("y_sum", "a finite number");
        }
        let scale = self.xty[0].abs().max(self.y_sum.abs());
        if (self.xty[0] - self.y_sum).abs() > 1e-9 * scale {
            return invalid("xty[0]", "equal to y_sum");
        }
        let n = self.n as f64;
        if self.y_sum * self.y_sum > n * self.yty * (1.0 + MOMENT_SLACK) {
            return invalid("y_sum", "at most sqrt(n * yty) in magnitude");
        }
        let any_sum = self.yty != 0.0 || self.xtx.iter().chain(&self.xty).any(|&v| v != 0.0);
        if self.n == 0 && any_sum {
            return invalid("sums of zero rows", "zero");
        }
        Ok(())
    }
}

/// The ridge-regression fit of merged terms: solves
/// `(XᵀX / N + l2 I') w = Xᵀy / N`, where `I'` is the identity with 0 for
/// the intercept, and returns the parameters (length `d + 1`, index 0 the
/// intercept) with their training loss.
///
/// The loss follows [`loss`](crate::loss) for [`ModelKind::Linear`]: the
/// mean of `0.5 * (prediction - y)²` plus `(l2 / 2) ||w||²` over the weights,
/// computed from the terms as
/// `(yᵀy - 2 wᵀXᵀy + wᵀXᵀXw) / (2N) + (l2 / 2) ||w||²`. That expansion loses
/// digits when the fit is nearly perfect: its absolute error is about
/// `1e-16 * yᵀy / N`. It is clamped at 0.
///
/// With `l2 = 0` and collinear or constant features the minimiser is not
/// unique and the matrix is singular; the solve is then retried once with
/// [`RIDGE_FACTOR`](crate::linalg::RIDGE_FACTOR) times the mean diagonal added to the diagonal, which
/// picks the minimiser of (nearly) smallest norm, and the loss is that of
/// the returned parameters under the requested `l2`.
///
/// # Errors
/// [`ModelError::InvalidHyperparameter`] for a negative or non-finite `l2`;
/// as [`NormalTerms::validate`]; [`ModelError::Empty`] for terms of no
/// rows; [`ModelError::NotPositiveDefinite`] if even the ridged system is
/// singular; [`ModelError::Overflow`] if the solution is not finite.
pub fn solve_normal(terms: &NormalTerms, l2: f64) -> Result<(Array1<f64>, f64), ModelError> {
    check::l2(l2)?;
    if terms.xty.is_empty() {
        return Err(ModelError::Dimension {
            what: "xty",
            expected: 1,
            got: 0,
        });
    }
    terms.validate(terms.features())?;
    if terms.n == 0 {
        return Err(ModelError::Empty);
    }
    let n = terms.n as f64;
    let mut a = &terms.xtx / n;
    for j in 1..a.nrows() {
        a[[j, j]] += l2;
    }
    let b = &terms.xty / n;
    let (params, _ridge) = solve_with_ridge_fallback(a, b.view())?;
    let weights = params.slice_axis(Axis(0), Slice::from(1..));
    let fitted = params.dot(&terms.xtx.dot(&params));
    let squared_error = (terms.yty - 2.0 * params.dot(&terms.xty) + fitted).max(0.0);
    let loss = 0.5 * squared_error / n + 0.5 * l2 * weights.dot(&weights);
    if !loss.is_finite() {
        return Err(ModelError::Overflow {
            what: "training loss",
        });
    }
    Ok((params, loss))
}

#[cfg(test)]
#[path = "normal_tests.rs"]
mod tests;
