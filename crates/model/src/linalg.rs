//! The little dense linear algebra the second-order methods need: a
//! Cholesky solver for symmetric positive-definite systems, and an
//! accumulator of weighted outer products.
//!
//! ndarray has no LAPACK backend in this build, and the systems are tiny
//! (`d + 1` unknowns, `d` the number of features), so a textbook Cholesky
//! factorisation is both enough and easy to audit.

use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Slice};

use crate::check;
use crate::error::ModelError;

/// A pivot counts as non-positive when it is at most this fraction of the
/// diagonal entry it came from. An exactly singular matrix leaves rounding
/// noise of order `f64::EPSILON` times its diagonal in the pivot instead of
/// an exact zero; this threshold refuses such pivots, which would otherwise
/// give a huge, meaningless solution.
const PIVOT_TOLERANCE: f64 = 1e-12;

/// When a system that should be positive definite is not (no L2 penalty and
/// collinear or constant features), the solvers of this crate retry once
/// with this fraction of the matrix's mean diagonal added to its whole
/// diagonal. Small enough not to move a well-posed solution visibly, large
/// enough to make an exactly singular matrix factorisable.
pub const RIDGE_FACTOR: f64 = 1e-8;

/// Solves `a x = b` for a symmetric positive-definite `a` by Cholesky
/// factorisation `a = L Lᵀ`, then forward and back substitution.
///
/// Only the lower triangle of `a` is read; symmetry is the caller's
/// promise. Cost: `m³/6` multiply-adds for an `m x m` matrix. An empty
/// system gives an empty solution.
///
/// # Errors
/// [`ModelError::Dimension`] if `a` is not square or `b` does not match it;
/// [`ModelError::InvalidValues`] for non-finite entries;
/// [`ModelError::NotPositiveDefinite`] naming the first pivot that is not
/// positive (beyond rounding), which happens when `a` is singular or
/// indefinite; [`ModelError::Overflow`] if the solution is not finite.
pub fn cholesky_solve(
    a: ArrayView2<'_, f64>,
    b: ArrayView1<'_, f64>,
) -> Result<Array1<f64>, ModelError> {
    let m = a.nrows();
    check::length("matrix columns", m, a.ncols())?;
    check::length("right-hand side", m, b.len())?;
    check::finite("matrix", a.iter())?;
    check::finite("right-hand side", b)?;
    let l = cholesky_lower(a)?;
    // Forward substitution: L z = b.
    let mut x: Vec<f64> = b.to_vec();
    for i in 0..m {
        let row = &l[i * m..i * m + i];
        let s: f64 = row.iter().zip(&x[..i]).map(|(lik, zk)| lik * zk).sum();
        x[i] = (x[i] - s) / l[i * m + i];
    }
    // Back substitution: Lᵀ x = z, reading L by columns.
    for i in (0..m).rev() {
        let s: f64 = (i + 1..m).map(|k| l[k * m + i] * x[k]).sum();
        x[i] = (x[i] - s) / l[i * m + i];
    }
    if !x.iter().all(|v| v.is_finite()) {
        return Err(ModelError::Overflow {
            what: "Cholesky solution",
        });
    }
    Ok(Array1::from(x))
}

/// [`cholesky_solve`], retried once with a ridge of [`RIDGE_FACTOR`] times
/// the mean diagonal if `a` is not positive definite. Returns the ridge if
/// one was needed.
pub(crate) fn solve_with_ridge_fallback(
    mut a: Array2<f64>,
    b: ArrayView1<'_, f64>,
) -> Result<(Array1<f64>, Option<f64>), ModelError> {
    match cholesky_solve(a.view(), b) {
        Ok(x) => Ok((x, None)),
        Err(first @ ModelError::NotPositiveDefinite { .. }) => {
            let ridge = RIDGE_FACTOR * a.diag().sum() / a.nrows() as f64;
            if !(ridge.is_finite() && ridge > 0.0) {
                return Err(first);
            }
            a.diag_mut().mapv_inplace(|v| v + ridge);
            Ok((cholesky_solve(a.view(), b)?, Some(ridge)))
        }
        Err(other) => Err(other),
    }
}

/// The lower Cholesky factor of `a` (lower triangle read), row-major in a
/// flat `m * m` vector with zeros above the diagonal.
fn cholesky_lower(a: ArrayView2<'_, f64>) -> Result<Vec<f64>, ModelError> {
    let m = a.nrows();
    let mut l = vec![0.0; m * m];
    for j in 0..m {
        for i in j..m {
            let s = a[[i, j]] - (0..j).map(|k| l[i * m + k] * l[j * m + k]).sum::<f64>();
            if i == j {
                // Written so that NaN also fails.
                if !(s > 0.0 && s > PIVOT_TOLERANCE * a[[j, j]].abs()) {
                    return Err(ModelError::NotPositiveDefinite { pivot: j, size: m });
                }
                l[j * m + j] = s.sqrt();
            } else {
                l[i * m + j] = s / l[j * m + j];
            }
        }
    }
    Ok(l)
}

/// Rows buffered by [`SymmetricAccumulator`] before they are folded into
/// the sum with one matrix product.
const GRAM_BLOCK: usize = 64;

/// Sums weighted outer products `w * v vᵀ` of `m`-vectors. Used for
/// Hessians and Gram matrices accumulated row by row, with no allocation
/// per row.
///
/// Rows are buffered [`GRAM_BLOCK`] at a time and folded in with one
/// matrix product `(w ∘ V)ᵀ V` (ndarray's `general_mat_mul`, which uses the
/// CPU's vector and fused multiply-add units where it has them). The sum is
/// O(m²) multiply-adds per row whichever way it is computed; blocking makes
/// them run several times faster than rank-one updates of the upper
/// triangle (medfed-bench: the Newton-terms pass over 1,000,000 x 100 rows,
/// docs/BENCHMARKS.md). The product computes both triangles; the upper one
/// is mirrored at the end, so the result is exactly symmetric.
#[derive(Clone, Debug)]
pub(crate) struct SymmetricAccumulator {
    m: usize,
    /// The running sum, `m x m`; only its upper triangle is read at the end.
    sum: Array2<f64>,
    /// Buffered rows `v`, `GRAM_BLOCK x m`; the first `filled` are in use.
    rows: Array2<f64>,
    /// The same rows times their weights.
    weighted: Array2<f64>,
    filled: usize,
}

impl SymmetricAccumulator {
    /// A zero `m x m` accumulator.
    pub(crate) fn new(m: usize) -> Self {
        SymmetricAccumulator {
            m,
            sum: Array2::zeros((m, m)),
            rows: Array2::zeros((GRAM_BLOCK, m)),
            weighted: Array2::zeros((GRAM_BLOCK, m)),
            filled: 0,
        }
    }

    /// Adds `weight * v vᵀ`. `v` must have length `m`.
    #[inline]
    pub(crate) fn add(&mut self, v: &[f64], weight: f64) {
        debug_assert_eq!(v.len(), self.m, "callers pass vectors of length m");
        let i = self.filled;
        for ((r, w), &vj) in self
            .rows
            .row_mut(i)
            .iter_mut()
            .zip(self.weighted.row_mut(i).iter_mut())
            .zip(v)
        {
            *r = vj;
            *w = weight * vj;
        }
        self.filled += 1;
        if self.filled == GRAM_BLOCK {
            self.flush();
        }
    }

    /// Folds the buffered rows into the sum.
    fn flush(&mut self) {
        let n = self.filled;
        if n == 0 {
            return;
        }
        let rows = self.rows.slice_axis(Axis(0), Slice::from(..n));
        let weighted = self.weighted.slice_axis(Axis(0), Slice::from(..n));
        general_mat_mul(1.0, &weighted.t(), &rows, 1.0, &mut self.sum);
        self.filled = 0;
    }

    /// The full symmetric matrix.
    pub(crate) fn into_matrix(mut self) -> Array2<f64> {
        self.flush();
        let (m, sum) = (self.m, self.sum);
        Array2::from_shape_fn((m, m), |(i, j)| sum[[i.min(j), i.max(j)]])
    }
}

/// Checks that a square matrix is symmetric up to rounding: entries
/// `(i, j)` and `(j, i)` may differ by at most `1e-9` times the larger of
/// their magnitudes (or absolutely by `1e-300`, for zeros). Honest
/// accumulation mirrors exactly, so any real difference means corruption.
pub(crate) fn check_symmetric(
    what: &'static str,
    a: ArrayView2<'_, f64>,
) -> Result<(), ModelError> {
    check::length(what, a.nrows(), a.ncols())?;
    for i in 0..a.nrows() {
        for j in i + 1..a.ncols() {
            let (x, y) = (a[[i, j]], a[[j, i]]);
            let tolerance = 1e-9 * x.abs().max(y.abs()) + 1e-300;
            // False for NaN, which must fail too.
            let close = (x - y).abs() <= tolerance;
            if !close {
                return Err(ModelError::Asymmetric {
                    what,
                    row: i,
                    column: j,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use ndarray::{Array2, array};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn solves_a_small_system_by_hand() {
        // a = [[4, 2], [2, 3]] = L Lᵀ with L = [[2, 0], [1, sqrt 2]].
        // a x = [2, 5] gives x = [-0.5, 2]: 4(-0.5) + 2(2) = 2, 2(-0.5) + 3(2) = 5.
        let a = array![[4.0, 2.0], [2.0, 3.0]];
        let x = cholesky_solve(a.view(), array![2.0, 5.0].view()).unwrap();
        assert_relative_eq!(x[0], -0.5, epsilon = 1e-15);
        assert_relative_eq!(x[1], 2.0, epsilon = 1e-15);
        assert_eq!(
            cholesky_solve(Array2::zeros((0, 0)).view(), array![].view())
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn names_the_failing_pivot() {
        // Rank 1 in the leading 2x2 block: the second pivot is 1 - 1 = 0.
        let singular = array![[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        assert_eq!(
            cholesky_solve(singular.view(), array![1.0, 1.0, 1.0].view()),
            Err(ModelError::NotPositiveDefinite { pivot: 1, size: 3 })
        );
        let indefinite = array![[-1.0, 0.0], [0.0, 1.0]];
        assert_eq!(
            cholesky_solve(indefinite.view(), array![1.0, 1.0].view()),
            Err(ModelError::NotPositiveDefinite { pivot: 0, size: 2 })
        );
        // Singular only by rounding: a third column equal to the sum of the
        // first two, scaled oddly so the pivot is noise rather than 0.
        let v = array![[0.1, 0.7], [0.3, 0.2], [1.9, 0.3], [0.5, 0.11]];
        let mut x = Array2::zeros((4, 3));
        x.column_mut(0).assign(&v.column(0));
        x.column_mut(1).assign(&v.column(1));
        x.column_mut(2)
            .assign(&(&v.column(0) * 0.3 + &v.column(1) * 1.7));
        let gram = x.t().dot(&x);
        assert!(matches!(
            cholesky_solve(gram.view(), array![1.0, 1.0, 1.0].view()),
            Err(ModelError::NotPositiveDefinite { pivot: 2, size: 3 })
        ));
    }

    #[test]
    fn refuses_bad_shapes_and_values() {
        let a = array![[1.0, 0.0], [0.0, 1.0]];
        assert!(matches!(
            cholesky_solve(array![[1.0, 0.0]].view(), array![1.0].view()),
            Err(ModelError::Dimension { .. })
        ));
        assert!(matches!(
            cholesky_solve(a.view(), array![1.0].view()),
            Err(ModelError::Dimension { .. })
        ));
        assert!(matches!(
            cholesky_solve(
                array![[1.0, f64::NAN], [0.0, 1.0]].view(),
                array![1.0, 1.0].view()
            ),
            Err(ModelError::InvalidValues { first: 1, .. })
        ));
    }

    #[test]
    fn accumulator_mirrors_the_upper_triangle() {
        let mut acc = SymmetricAccumulator::new(3);
        acc.add(&[1.0, 2.0, 3.0], 2.0);
        acc.add(&[0.0, 1.0, -1.0], 1.0);
        let h = acc.into_matrix();
        let v1 = array![1.0, 2.0, 3.0];
        let v2 = array![0.0, 1.0, -1.0];
        let expected = 2.0 * outer(&v1, &v1) + outer(&v2, &v2);
        assert_eq!(h, expected);
        assert_eq!(check_symmetric("h", h.view()), Ok(()));
        let mut bent = h;
        bent[[2, 0]] += 1e-3;
        assert_eq!(
            check_symmetric("h", bent.view()),
            Err(ModelError::Asymmetric {
                what: "h",
                row: 0,
                column: 2
            })
        );
    }

    #[test]
    fn accumulator_matches_outer_products_across_blocks() {
        // Row counts around and past the block size, so partial and full
        // blocks are both folded in.
        for n in [
            1,
            GRAM_BLOCK - 1,
            GRAM_BLOCK,
            GRAM_BLOCK + 1,
            3 * GRAM_BLOCK + 5,
        ] {
            let m = 5;
            let mut acc = SymmetricAccumulator::new(m);
            let mut expected = Array2::<f64>::zeros((m, m));
            for r in 0..n {
                let v = Array1::from_shape_fn(m, |j| ((r * 7 + j * 3) % 11) as f64 - 5.0);
                let weight = 0.25 + (r % 4) as f64;
                acc.add(v.as_slice().unwrap_or(&[]), weight);
                expected += &(weight * outer(&v, &v));
            }
            let h = acc.into_matrix();
            // Small integers times quarters: every sum is exact in f64.
            assert_eq!(h, expected, "{n} rows");
            assert_eq!(h, h.t(), "{n} rows");
        }
    }

    fn outer(a: &Array1<f64>, b: &Array1<f64>) -> Array2<f64> {
        Array2::from_shape_fn((a.len(), b.len()), |(i, j)| a[i] * b[j])
    }

    proptest! {
        #[test]
        fn solves_random_spd_systems(
            (m, entries, rhs) in (1usize..7).prop_flat_map(|m| (
                Just(m),
                proptest::collection::vec(-3.0f64..3.0, m * m),
                proptest::collection::vec(-5.0f64..5.0, m),
            ))
        ) {
            // BᵀB + I is symmetric positive definite with eigenvalues >= 1.
            let b = Array2::from_shape_vec((m, m), entries).unwrap_or_default();
            let a = b.t().dot(&b) + Array2::<f64>::eye(m);
            let rhs = Array1::from(rhs);
            let x = cholesky_solve(a.view(), rhs.view()).unwrap();
            let residual = a.dot(&x) - &rhs;
            for r in residual {
                prop_assert!(r.abs() < 1e-9, "residual {r}");
            }
        }
    }
}
