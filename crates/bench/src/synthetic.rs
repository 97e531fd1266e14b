//! Seeded synthetic logistic data with known coefficients, so that nothing
//! measured depends on a real data set.
//!
//! Features are independent standard normals (already standardised); the
//! true weights are standard normals scaled by `1 / sqrt(d)` so the linear
//! predictor has unit variance whatever `d`, the intercept is -0.3, and each
//! label is drawn from Bernoulli(sigmoid(z)).

use ndarray::{Array1, Array2};

/// A seeded generator of the data.
pub struct Generator {
    rng: fastrand::Rng,
    intercept: f64,
    weights: Vec<f64>,
}

impl Generator {
    /// A generator for `d` features whose true coefficients come from `seed`.
    pub fn new(d: usize, seed: u64) -> Generator {
        let mut rng = fastrand::Rng::with_seed(seed);
        let scale = 1.0 / (d.max(1) as f64).sqrt();
        let weights = (0..d).map(|_| normal(&mut rng) * scale).collect();
        Generator {
            rng,
            intercept: -0.3,
            weights,
        }
    }

    /// Restarts the row stream from `seed`, keeping the coefficients (one
    /// stream per site).
    pub fn reseed(&mut self, seed: u64) {
        self.rng = fastrand::Rng::with_seed(seed);
    }

    /// Fills `features` (length `d`) with one row and returns its label.
    pub fn row(&mut self, features: &mut [f64]) -> f64 {
        let mut z = self.intercept;
        for (x, w) in features.iter_mut().zip(&self.weights) {
            *x = normal(&mut self.rng);
            z += *x * w;
        }
        let p = 1.0 / (1.0 + (-z).exp());
        if self.rng.f64() < p { 1.0 } else { 0.0 }
    }

    /// `n` rows as a matrix and a label vector.
    pub fn matrix(&mut self, n: usize) -> (Array2<f64>, Array1<f64>) {
        let d = self.weights.len();
        let mut x = Array2::zeros((n, d));
        let mut y = Array1::zeros(n);
        for (mut row, label) in x.rows_mut().into_iter().zip(y.iter_mut()) {
            // Rows of a fresh standard-layout array are contiguous.
            if let Some(slice) = row.as_slice_mut() {
                *label = self.row(slice);
            }
        }
        (x, y)
    }
}

/// A standard normal by the Box–Muller transform.
fn normal(rng: &mut fastrand::Rng) -> f64 {
    // 1 - u is in (0, 1], so the logarithm is finite.
    let u = 1.0 - rng.f64();
    let v = rng.f64();
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_plausible() {
        let (x1, y1) = Generator::new(5, 7).matrix(4000);
        let (x2, y2) = Generator::new(5, 7).matrix(4000);
        assert_eq!(x1, x2);
        assert_eq!(y1, y2);
        let mean = x1.mean().unwrap_or(f64::NAN);
        let var = x1.mapv(|v| v * v).mean().unwrap_or(f64::NAN);
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
        // sigmoid(-0.3) is about 0.43; with unit-variance z the rate is near it.
        let rate = y1.mean().unwrap_or(f64::NAN);
        assert!((0.35..0.5).contains(&rate), "{rate}");
        assert!(y1.iter().all(|&v| v == 0.0 || v == 1.0));
    }
}
