//! Synthetic data for the unit tests of the federated solvers.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Slice};

use crate::numeric::sigmoid;
use crate::rng::SplitMix64;

/// Features uniform in [-2, 2) and 0/1 labels drawn with probability
/// `sigmoid(0.5 + x · w)` for fixed weights `w_j = 1 - 0.6 j`: noisy enough
/// that no hyperplane separates the classes, so the unpenalised fit has a
/// finite optimum.
pub(crate) fn logistic_data(n: usize, d: usize, seed: u64) -> (Array2<f64>, Array1<f64>) {
    let mut rng = SplitMix64::new(seed);
    let x = Array2::from_shape_simple_fn((n, d), || 4.0 * rng.unit() - 2.0);
    let y = x
        .rows()
        .into_iter()
        .map(|row| {
            let z: f64 = 0.5
                + row
                    .iter()
                    .enumerate()
                    .map(|(j, v)| (1.0 - 0.6 * j as f64) * v)
                    .sum::<f64>();
            f64::from(rng.unit() < sigmoid(z))
        })
        .collect();
    (x, y)
}

/// Features uniform in [-2, 2) and targets `3 + x · w + noise` with
/// `w_j = 1 - 0.6 j` and noise uniform in [-1, 1).
pub(crate) fn linear_data(n: usize, d: usize, seed: u64) -> (Array2<f64>, Array1<f64>) {
    let mut rng = SplitMix64::new(seed);
    let x = Array2::from_shape_simple_fn((n, d), || 4.0 * rng.unit() - 2.0);
    let y = x
        .rows()
        .into_iter()
        .map(|row| {
            3.0 + row
                .iter()
                .enumerate()
                .map(|(j, v)| (1.0 - 0.6 * j as f64) * v)
                .sum::<f64>()
                + (2.0 * rng.unit() - 1.0)
        })
        .collect();
    (x, y)
}

/// Features uniform in [-1, 1) and counts drawn from a Poisson
/// distribution with mean `exp(0.4 + x · w)`, `w_j = 0.5 - 0.3 j`, by
/// inverting its distribution function.
pub(crate) fn poisson_data(n: usize, d: usize, seed: u64) -> (Array2<f64>, Array1<f64>) {
    let mut rng = SplitMix64::new(seed);
    let x = Array2::from_shape_simple_fn((n, d), || 2.0 * rng.unit() - 1.0);
    let y = x
        .rows()
        .into_iter()
        .map(|row| {
            let eta: f64 = 0.4
                + row
                    .iter()
                    .enumerate()
                    .map(|(j, v)| (0.5 - 0.3 * j as f64) * v)
                    .sum::<f64>();
            let mu = eta.exp();
            let u = rng.unit();
            let (mut k, mut p) = (0.0, (-mu).exp());
            let mut cdf = p;
            while u > cdf && k < 1000.0 {
                k += 1.0;
                p *= mu / k;
                cdf += p;
            }
            k
        })
        .collect();
    (x, y)
}

/// The rows cut into consecutive "sites" at the given row indices.
pub(crate) fn sites<'a>(
    x: &'a Array2<f64>,
    y: &'a Array1<f64>,
    cuts: &[usize],
) -> Vec<(ArrayView2<'a, f64>, ArrayView1<'a, f64>)> {
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(x.nrows());
    bounds
        .windows(2)
        .map(|w| {
            (
                rows(x.view(), w[0], w[1]),
                y.slice_axis(Axis(0), Slice::from(w[0]..w[1])),
            )
        })
        .collect()
}

/// Rows `start..end` of `x` (the `s!` macro is unavailable under
/// `forbid(unsafe_code)`).
pub(crate) fn rows(x: ArrayView2<'_, f64>, start: usize, end: usize) -> ArrayView2<'_, f64> {
    x.slice_axis_move(Axis(0), Slice::from(start..end))
}

/// Columns `start..end` of `x`.
pub(crate) fn columns(x: ArrayView2<'_, f64>, start: usize, end: usize) -> ArrayView2<'_, f64> {
    x.slice_axis_move(Axis(1), Slice::from(start..end))
}
