//! What a site sends for one Newton round: sums over its rows of a
//! family's loss and of its first and second derivatives.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Slice};

use crate::check;
use crate::error::ModelError;
use crate::family::{Family, Logistic, RowBound, TermBounds, with_family};
use crate::glm::{check_labels, check_offset, non_finite, split_params};
use crate::kind::ModelKind;
use crate::linalg::{SymmetricAccumulator, check_symmetric};
use crate::rows::{Offset, Rows, with_offset};

/// Relative slack for the range checks of [`NewtonTerms::validate`], which
/// rounding in long sums can break by a few ulps.
const SUM_SLACK: f64 = 1e-9;

/// Sums over one site's standardised rows of a [`Family`]'s per-row loss,
/// its gradient and its Hessian with respect to the parameters, at given
/// parameters.
///
/// With `a = [1, x]` the row's augmented features and `η = params · a`
/// (plus the row's offset), a row adds the family's loss to `loss_sum`,
/// `gradient weight * a` to `gradient_sum` and `curvature weight * a aᵀ` to
/// `hessian_sum` ([`Family::newton_weights`]). For logistic regression,
/// with `p = sigmoid(η)` and label `y`, these are `log_loss(η, y)`,
/// `(p - y) a` and `p (1 - p) a aᵀ`. These are plain sums, not means, and carry no L2 penalty,
/// so terms of disjoint row sets [`merge`](NewtonTerms::merge) into those of
/// their union and the coordinator adds the penalty once.
#[derive(Clone, Debug, PartialEq)]
pub struct NewtonTerms {
    /// Number of rows summed.
    pub n: u64,
    /// Sum of the per-row log-loss.
    pub loss_sum: f64,
    /// Sum of the per-row gradients, length `d + 1` (index 0: intercept).
    pub gradient_sum: Array1<f64>,
    /// Sum of the per-row Hessians, `(d + 1) x (d + 1)` and symmetric.
    pub hessian_sum: Array2<f64>,
}

impl NewtonTerms {
    /// The terms of no rows, for `d` features: the identity of
    /// [`NewtonTerms::merge`].
    pub fn zeros(d: usize) -> Self {
        NewtonTerms {
            n: 0,
            loss_sum: 0.0,
            gradient_sum: Array1::zeros(d + 1),
            hessian_sum: Array2::zeros((d + 1, d + 1)),
        }
    }

    /// The terms of the rows of `x` (standardised, `(n, d)`) with 0/1
    /// labels `y`, at `params` (length `d + 1`), for logistic regression:
    /// [`NewtonTerms::from_family`] with [`Logistic`] and no offset.
    ///
    /// # Errors
    /// As [`NewtonTerms::from_family`].
    pub fn from_rows(
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, f64>,
        params: ArrayView1<'_, f64>,
    ) -> Result<Self, ModelError> {
        Self::from_family(Logistic, Rows::new(x, y), params)
    }

    /// The terms of `rows` (standardised features, labels, optional offset)
    /// for `family` at `params` (length `d + 1`): a row adds the family's
    /// loss, `gradient weight * a` and `curvature weight * a aᵀ`. One pass
    /// over the rows; the Hessian fills only its upper triangle, `d²/2`
    /// multiply-adds per row, with no allocation per row. No rows gives
    /// [`NewtonTerms::zeros`].
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if `params` is not `d + 1` long or the
    /// labels or offset not `n` long; [`ModelError::InvalidValues`] for
    /// non-finite parameters or offsets; [`ModelError::InvalidLabels`] for
    /// labels that do not fit the family; [`ModelError::NonFiniteFeature`]
    /// if `x` holds a non-finite value; [`ModelError::Overflow`] if a sum is
    /// not finite for another reason.
    pub fn from_family<F: Family>(
        family: F,
        rows: Rows<'_>,
        params: ArrayView1<'_, f64>,
    ) -> Result<Self, ModelError> {
        let x = rows.x;
        check::length("parameters", x.ncols() + 1, params.len())?;
        check::finite("parameters", params)?;
        check::length("labels", x.nrows(), rows.y.len())?;
        check_offset(x, rows.offset)?;
        check_labels(family, rows.y)?;
        let terms = with_offset!(rows.offset, |o| sum_rows(family, x, rows.y, o, params));
        let finite = terms.loss_sum.is_finite()
            && terms.gradient_sum.iter().all(|v| v.is_finite())
            && terms.hessian_sum.iter().all(|v| v.is_finite());
        if !finite {
            return Err(non_finite(family, x, "Newton terms"));
        }
        Ok(terms)
    }

    /// [`NewtonTerms::from_family`] with the family of a registered `kind`
    /// and no offset: what a node computes for a Newton round.
    ///
    /// # Errors
    /// As [`NewtonTerms::from_family`].
    pub fn for_kind(
        kind: ModelKind,
        x: ArrayView2<'_, f64>,
        y: ArrayView1<'_, f64>,
        params: ArrayView1<'_, f64>,
    ) -> Result<Self, ModelError> {
        with_family!(kind, |f| Self::from_family(f, Rows::new(x, y), params))
    }

    /// Number of features `d` these terms are for (the gradient has
    /// `d + 1` entries).
    pub fn features(&self) -> usize {
        self.gradient_sum.len().saturating_sub(1)
    }

    /// Adds `other`'s rows to these, as if both row sets were one. On error
    /// nothing is changed.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if the two are for different numbers of
    /// features, and [`ModelError::Overflow`] if the row count would pass
    /// `u64::MAX`.
    pub fn merge(&mut self, other: &NewtonTerms) -> Result<(), ModelError> {
        let m = self.gradient_sum.len();
        check::length("merged gradient_sum", m, other.gradient_sum.len())?;
        check::length("merged hessian_sum rows", m, other.hessian_sum.nrows())?;
        check::length("merged hessian_sum columns", m, other.hessian_sum.ncols())?;
        check::length("hessian_sum rows", m, self.hessian_sum.nrows())?;
        check::length("hessian_sum columns", m, self.hessian_sum.ncols())?;
        self.n = self.n.checked_add(other.n).ok_or(ModelError::Overflow {
            what: "merged Newton row count",
        })?;
        self.loss_sum += other.loss_sum;
        self.gradient_sum += &other.gradient_sum;
        self.hessian_sum += &other.hessian_sum;
        Ok(())
    }

    /// Checks that logistic terms received from elsewhere could have come
    /// from [`NewtonTerms::from_rows`] for `d` features:
    /// [`NewtonTerms::validate_for`] with [`Logistic`], whose bounds are
    /// `|gradient_sum[0]| <= n` and `hessian_sum[0][0] <= n / 4` (each row's
    /// residual is in `[-1, 1]` and its curvature at most 1/4).
    ///
    /// # Errors
    /// As [`NewtonTerms::validate_for`].
    pub fn validate(&self, d: usize) -> Result<(), ModelError> {
        self.validate_for(Logistic, d)
    }

    /// Checks that terms received from elsewhere could have come from
    /// [`NewtonTerms::from_family`] with `family` for `d` features: sizes;
    /// finite sums; `loss_sum >= 0` (every family's row loss is); a
    /// symmetric Hessian with non-negative diagonal; `gradient_sum[0]` and
    /// `hessian_sum[0][0]` within `n` times the family's per-row bounds
    /// ([`Family::term_bounds`]), where it has them; and all sums zero when
    /// `n` is 0.
    ///
    /// # Errors
    /// [`ModelError::Dimension`], [`ModelError::InvalidValues`],
    /// [`ModelError::Asymmetric`] or [`ModelError::InvalidAggregate`] for
    /// the first rule broken.
    pub fn validate_for<F: Family>(&self, family: F, d: usize) -> Result<(), ModelError> {
        self.validate_within(&family.term_bounds(), d)
    }

    /// [`NewtonTerms::validate_for`] with the family of a registered `kind`.
    ///
    /// # Errors
    /// As [`NewtonTerms::validate_for`].
    pub fn validate_for_kind(&self, kind: ModelKind, d: usize) -> Result<(), ModelError> {
        with_family!(kind, |f| self.validate_for(f, d))
    }

    /// The checks of [`NewtonTerms::validate_for`] that hold for every
    /// family (sizes, finite sums, `n >= 1` where there are rows, a
    /// non-negative loss, a symmetric Hessian), without any family's
    /// per-row bounds: for sums whose family is checked later.
    ///
    /// # Errors
    /// As [`NewtonTerms::validate_for`].
    pub fn validate_sums(&self, d: usize) -> Result<(), ModelError> {
        self.validate_within(
            &TermBounds {
                residual: None,
                curvature: None,
            },
            d,
        )
    }

    /// [`NewtonTerms::validate_for`] with the family's bounds given.
    pub(crate) fn validate_within(&self, bounds: &TermBounds, d: usize) -> Result<(), ModelError> {
        check::length("gradient_sum", d + 1, self.gradient_sum.len())?;
        check::length("hessian_sum rows", d + 1, self.hessian_sum.nrows())?;
        check::length("hessian_sum columns", d + 1, self.hessian_sum.ncols())?;
        if !(self.loss_sum.is_finite() && self.loss_sum >= 0.0) {
            return Err(ModelError::InvalidAggregate {
                what: "loss_sum",
                allowed: "a finite number >= 0",
            });
        }
        check::finite("gradient_sum", &self.gradient_sum)?;
        check::finite("hessian_sum", self.hessian_sum.iter())?;
        check_symmetric("hessian_sum", self.hessian_sum.view())?;
        check::values(
            "hessian_sum diagonal",
            "numbers >= 0",
            self.hessian_sum.diag(),
            |v| v >= 0.0,
        )?;
        let n = self.n as f64;
        let beyond = |bound: &RowBound, value: f64| value > bound.per_row * n * (1.0 + SUM_SLACK);
        if let Some(bound) = bounds.residual
            && beyond(&bound, self.gradient_sum[0].abs())
        {
            return Err(ModelError::InvalidAggregate {
                what: "gradient_sum[0]",
                allowed: bound.rule,
            });
        }
        if let Some(bound) = bounds.curvature
            && beyond(&bound, self.hessian_sum[[0, 0]])
        {
            return Err(ModelError::InvalidAggregate {
                what: "hessian_sum[0][0]",
                allowed: bound.rule,
            });
        }
        let any_sum = self.loss_sum != 0.0
            || self.gradient_sum.iter().any(|&v| v != 0.0)
            || self.hessian_sum.iter().any(|&v| v != 0.0);
        if self.n == 0 && any_sum {
            return Err(ModelError::InvalidAggregate {
                what: "sums of zero rows",
                allowed: "zero",
            });
        }
        Ok(())
    }
}

/// The sums of [`NewtonTerms::from_family`] over validated rows, for one
/// family and one kind of offset; not checked for finiteness.
fn sum_rows<F: Family>(
    family: F,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    offset: impl Offset,
    params: ArrayView1<'_, f64>,
) -> NewtonTerms {
    let d = x.ncols();
    let (intercept, weights) = split_params(params);
    // One buffer for the augmented row [1, x], reused for every row.
    let mut augmented = vec![1.0; d + 1];
    let mut gradient = vec![0.0; d + 1];
    let mut hessian = SymmetricAccumulator::new(d + 1);
    let mut loss_sum = 0.0;
    for (i, (row, &label)) in x.rows().into_iter().zip(y).enumerate() {
        for (a, &v) in augmented[1..].iter_mut().zip(row) {
            *a = v;
        }
        // The same expression as `glm::loss`, so one site's objective
        // matches it to the last bit.
        let eta = offset.shift(i, intercept + row.dot(&weights));
        let (loss, residual, curvature) = family.newton_weights(eta, label);
        loss_sum += loss;
        for (g, &a) in gradient.iter_mut().zip(&augmented) {
            *g += residual * a;
        }
        hessian.add(&augmented, curvature);
    }
    NewtonTerms {
        n: x.nrows() as u64,
        loss_sum,
        gradient_sum: Array1::from(gradient),
        hessian_sum: hessian.into_matrix(),
    }
}

/// The regularised objective `loss_sum / n + (l2 / 2) ||w||²` at `params`,
/// for terms with `n > 0` evaluated at `params`. Not checked for finiteness.
pub(super) fn objective(terms: &NewtonTerms, params: ArrayView1<'_, f64>, l2: f64) -> f64 {
    let weights = params.slice_axis(Axis(0), Slice::from(1..));
    terms.loss_sum / terms.n as f64 + 0.5 * l2 * weights.dot(&weights)
}

/// Gradient and Hessian of [`objective`]: the sums divided by `n`, plus
/// `l2 w` and `l2 I'` (identity with 0 for the intercept).
pub(super) fn derivatives(
    terms: &NewtonTerms,
    params: ArrayView1<'_, f64>,
    l2: f64,
) -> (Array1<f64>, Array2<f64>) {
    let n = terms.n as f64;
    let mut gradient = &terms.gradient_sum / n;
    gradient
        .slice_axis_mut(Axis(0), Slice::from(1..))
        .scaled_add(l2, &params.slice_axis(Axis(0), Slice::from(1..)));
    let mut hessian = &terms.hessian_sum / n;
    for j in 1..hessian.nrows() {
        hessian[[j, j]] += l2;
    }
    (gradient, hessian)
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use ndarray::{array, aview1};

    use super::*;
    use crate::kind::ModelKind;
    use crate::regression::{loss, loss_and_gradient};
    use crate::testing::{logistic_data, sites};

    #[test]
    fn terms_by_hand() {
        // Rows x = 0, 1, 2 with labels 0, 1, 1, at params 0: every p = 1/2,
        // so residuals are 1/2, -1/2, -1/2 and curvatures 1/4.
        // gradient_sum = [sum r, sum r x] = [-1/2, -1/2 - 1] = [-0.5, -1.5].
        // hessian_sum = 1/4 [[3, 0 + 1 + 2], [3, 0 + 1 + 4]].
        let x = array![[0.0], [1.0], [2.0]];
        let y = array![0.0, 1.0, 1.0];
        let t = NewtonTerms::from_rows(x.view(), y.view(), aview1(&[0.0, 0.0])).unwrap();
        assert_eq!(t.n, 3);
        assert_relative_eq!(t.loss_sum, 3.0 * std::f64::consts::LN_2, epsilon = 1e-15);
        assert_eq!(t.gradient_sum, array![-0.5, -1.5]);
        assert_eq!(t.hessian_sum, array![[0.75, 0.75], [0.75, 1.25]]);
        assert_eq!(t.features(), 1);
        assert_eq!(t.validate(1), Ok(()));
    }

    #[test]
    fn derivatives_match_finite_differences_of_the_loss() {
        for l2 in [0.0, 0.3] {
            let (x, y) = logistic_data(30, 3, 5);
            let params = array![0.2, -0.5, 0.8, 0.1];
            let t = NewtonTerms::from_rows(x.view(), y.view(), params.view()).unwrap();
            let kind = ModelKind::Logistic;
            let f = objective(&t, params.view(), l2);
            assert_relative_eq!(
                f,
                loss(kind, x.view(), y.view(), params.view(), l2).unwrap(),
                max_relative = 1e-14
            );
            let (gradient, hessian) = derivatives(&t, params.view(), l2);
            let h = 1e-6;
            for j in 0..params.len() {
                let mut up = params.clone();
                up[j] += h;
                let mut down = params.clone();
                down[j] -= h;
                let numeric = (loss(kind, x.view(), y.view(), up.view(), l2).unwrap()
                    - loss(kind, x.view(), y.view(), down.view(), l2).unwrap())
                    / (2.0 * h);
                assert_relative_eq!(gradient[j], numeric, epsilon = 1e-7, max_relative = 1e-6);
                // Column j of the Hessian: central differences of the
                // (independently computed) gradient.
                let g_up = loss_and_gradient(kind, x.view(), y.view(), up.view(), l2)
                    .unwrap()
                    .1;
                let g_down = loss_and_gradient(kind, x.view(), y.view(), down.view(), l2)
                    .unwrap()
                    .1;
                let column = (g_up - g_down) / (2.0 * h);
                for i in 0..params.len() {
                    assert_relative_eq!(
                        hessian[[i, j]],
                        column[i],
                        epsilon = 1e-7,
                        max_relative = 1e-6
                    );
                }
            }
        }
    }

    #[test]
    fn merged_sites_equal_the_pooled_rows() {
        let (x, y) = logistic_data(50, 2, 9);
        let params = array![0.1, 0.4, -0.3];
        let whole = NewtonTerms::from_rows(x.view(), y.view(), params.view()).unwrap();
        let mut merged = NewtonTerms::zeros(2);
        for (xs, ys) in sites(&x, &y, &[7, 30, 30]) {
            let site = NewtonTerms::from_rows(xs, ys, params.view()).unwrap();
            site.validate(2).unwrap();
            merged.merge(&site).unwrap();
        }
        assert_eq!(merged.n, whole.n);
        assert_relative_eq!(merged.loss_sum, whole.loss_sum, max_relative = 1e-13);
        for (a, b) in merged.gradient_sum.iter().zip(&whole.gradient_sum) {
            assert_relative_eq!(*a, *b, epsilon = 1e-12, max_relative = 1e-13);
        }
        for (a, b) in merged.hessian_sum.iter().zip(&whole.hessian_sum) {
            assert_relative_eq!(*a, *b, epsilon = 1e-12, max_relative = 1e-13);
        }
        assert_eq!(merged.validate(2), Ok(()));
    }

    #[test]
    fn no_rows_gives_zeros() {
        let x = Array2::<f64>::zeros((0, 2));
        let t = NewtonTerms::from_rows(x.view(), aview1(&[]), aview1(&[1.0, 2.0, 3.0])).unwrap();
        assert_eq!(t, NewtonTerms::zeros(2));
        assert_eq!(t.validate(2), Ok(()));
    }

    #[test]
    fn from_rows_refuses_bad_inputs() {
        let x = array![[1.0], [f64::INFINITY]];
        let y = array![0.0, 1.0];
        assert_eq!(
            NewtonTerms::from_rows(x.view(), y.view(), aview1(&[0.0, 1.0])),
            Err(ModelError::NonFiniteFeature { row: 1, column: 0 })
        );
        assert!(matches!(
            NewtonTerms::from_rows(x.view(), array![0.0, 0.5].view(), aview1(&[0.0, 1.0])),
            Err(ModelError::InvalidLabels { invalid: 1, .. })
        ));
        assert!(matches!(
            NewtonTerms::from_rows(x.view(), y.view(), aview1(&[0.0])),
            Err(ModelError::Dimension {
                what: "parameters",
                ..
            })
        ));
    }

    #[test]
    fn merge_refuses_other_dimensions_and_changes_nothing() {
        let mut a = NewtonTerms::zeros(2);
        a.n = 1;
        let before = a.clone();
        assert!(matches!(
            a.merge(&NewtonTerms::zeros(3)),
            Err(ModelError::Dimension { .. })
        ));
        let mut huge = NewtonTerms::zeros(2);
        huge.n = u64::MAX;
        assert_eq!(
            a.merge(&huge),
            Err(ModelError::Overflow {
                what: "merged Newton row count"
            })
        );
        assert_eq!(a, before);
    }

    #[test]
    fn validate_refuses_impossible_terms() {
        let (x, y) = logistic_data(20, 2, 3);
        let good = NewtonTerms::from_rows(x.view(), y.view(), aview1(&[0.0, 0.5, -0.5])).unwrap();
        assert_eq!(good.validate(2), Ok(()));
        assert!(matches!(
            good.validate(3),
            Err(ModelError::Dimension { .. })
        ));
        let mut bad = good.clone();
        bad.hessian_sum[[1, 2]] += 1.0;
        assert_eq!(
            bad.validate(2),
            Err(ModelError::Asymmetric {
                what: "hessian_sum",
                row: 1,
                column: 2
            })
        );
        let mut bad = good.clone();
        bad.hessian_sum[[2, 2]] = -1.0;
        assert!(matches!(
            bad.validate(2),
            Err(ModelError::InvalidValues { first: 2, .. })
        ));
        let mut bad = good.clone();
        bad.gradient_sum[1] = f64::NAN;
        assert!(matches!(
            bad.validate(2),
            Err(ModelError::InvalidValues { first: 1, .. })
        ));
        let mut bad = good.clone();
        bad.loss_sum = -1.0;
        assert!(matches!(
            bad.validate(2),
            Err(ModelError::InvalidAggregate {
                what: "loss_sum",
                ..
            })
        ));
        let mut bad = good.clone();
        bad.hessian_sum[[0, 0]] = 6.0; // n / 4 = 5
        assert!(matches!(
            bad.validate(2),
            Err(ModelError::InvalidAggregate {
                what: "hessian_sum[0][0]",
                ..
            })
        ));
        let mut bad = good.clone();
        bad.gradient_sum[0] = -21.0;
        assert!(matches!(
            bad.validate(2),
            Err(ModelError::InvalidAggregate {
                what: "gradient_sum[0]",
                ..
            })
        ));
        let mut bad = NewtonTerms::zeros(2);
        bad.gradient_sum[2] = 1.0;
        assert!(matches!(
            bad.validate(2),
            Err(ModelError::InvalidAggregate {
                what: "sums of zero rows",
                ..
            })
        ));
    }
}
