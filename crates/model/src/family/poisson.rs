//! Poisson regression: whole-number counts, the log link, half the Poisson
//! deviance.

use crate::counts::CountCounts;
use crate::family::{Family, TermBounds};

/// Poisson regression of counts `y ∈ {0, 1, 2, …}` with mean
/// `μ = exp(η)`, where `η` includes the row's offset (the log of its
/// exposure, if any).
///
/// A row's loss is half its Poisson deviance,
/// `y ln(y / μ) - (y - μ)` (with `0 ln 0 = 0`), which differs from the
/// negative log-likelihood `μ - y η + ln(y!)` only by a term free of the
/// parameters, so minimising it (by Newton's method or gradient descent)
/// gives the maximum-likelihood fit; unlike the likelihood it is never
/// negative and is 0 for a perfect prediction. Its gradient weight is
/// `μ - y` and its curvature `μ`.
///
/// `exp(η)` overflows for `η` above `ln(f64::MAX) ≈ 709.78`. Nothing is
/// clamped: a pass whose mean overflows fails with
/// [`crate::ModelError::Overflow`] naming the Poisson mean (or, after the
/// first step of gradient descent, [`crate::ModelError::Diverged`]), since a
/// clamped mean would silently give a wrong gradient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Poisson;

impl Family for Poisson {
    type Counts = CountCounts;

    fn name(self) -> &'static str {
        "poisson"
    }

    fn link(self) -> &'static str {
        "log"
    }

    fn label_rule(self) -> &'static str {
        "a whole number >= 0 (a count)"
    }

    #[inline]
    fn is_valid_label(self, y: f64) -> bool {
        // NaN and infinities fail `fract() == 0`; -0.0 counts as 0.
        y >= 0.0 && y.fract() == 0.0
    }

    #[inline]
    fn loss_and_gradient_weight(self, eta: f64, y: f64) -> (f64, f64) {
        let mu = eta.exp();
        (half_deviance(eta, mu, y), mu - y)
    }

    #[inline]
    fn newton_weights(self, eta: f64, y: f64) -> (f64, f64, f64) {
        let mu = eta.exp();
        (half_deviance(eta, mu, y), mu - y, mu)
    }

    #[inline]
    fn inverse_link(self, eta: f64) -> f64 {
        eta.exp()
    }

    fn prediction_name(self) -> &'static str {
        "expected count"
    }

    fn exp_coefficient_name(self) -> Option<&'static str> {
        Some("rate ratio / unit")
    }

    fn term_bounds(self) -> TermBounds {
        // Neither μ - y nor μ is bounded per row.
        TermBounds {
            residual: None,
            curvature: None,
        }
    }

    fn overflow_cause(self) -> Option<&'static str> {
        Some("the Poisson mean exp(linear predictor + offset)")
    }
}

/// Half the Poisson deviance of mean `mu = exp(eta)` against count `y`:
/// `y (ln y - eta) - y + mu`, written with `eta` rather than `ln(mu)` so
/// that it stays exact where `mu` underflows to 0.
#[inline]
pub(crate) fn half_deviance(eta: f64, mu: f64, y: f64) -> f64 {
    if y > 0.0 {
        y * (y.ln() - eta) - y + mu
    } else {
        mu
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;

    use super::*;

    #[test]
    fn label_rule() {
        for y in [0.0, -0.0, 1.0, 3.0, 1e6] {
            assert!(Poisson.is_valid_label(y), "{y}");
        }
        for y in [-1.0, 0.5, 2.000_001, f64::NAN, f64::INFINITY] {
            assert!(!Poisson.is_valid_label(y), "{y}");
        }
    }

    #[test]
    fn loss_is_half_the_deviance_and_zero_at_the_truth() {
        // y = 3, mu = 3: deviance 0.
        let (loss, g, c) = Poisson.newton_weights(3f64.ln(), 3.0);
        assert_relative_eq!(loss, 0.0, epsilon = 1e-15);
        assert_relative_eq!(g, 0.0, epsilon = 1e-15);
        assert_relative_eq!(c, 3.0, epsilon = 1e-14);
        // y = 0: the loss is mu.
        assert_eq!(Poisson.loss(0.0, 0.0), 1.0);
        // y = 2, mu = 1: 2 ln 2 - 1.
        assert_relative_eq!(
            Poisson.loss(0.0, 2.0),
            2.0 * 2f64.ln() - 1.0,
            epsilon = 1e-15
        );
    }

    #[test]
    fn loss_differs_from_the_negative_log_likelihood_by_a_constant() {
        let y = 4.0;
        let ln_factorial: f64 = (1..=4).map(|k| f64::from(k).ln()).sum();
        let nll = |eta: f64| eta.exp() - y * eta + ln_factorial;
        let gap = nll(0.3) - Poisson.loss(0.3, y);
        for eta in [-2.0, 0.0, 1.0, 2.5] {
            assert_relative_eq!(nll(eta) - Poisson.loss(eta, y), gap, epsilon = 1e-12);
        }
    }

    #[test]
    fn weights_are_the_derivatives_of_the_loss() {
        let h = 1e-6;
        for eta in [-3.0, -0.2, 0.0, 1.5] {
            for y in [0.0, 1.0, 5.0] {
                let (_, g, c) = Poisson.newton_weights(eta, y);
                let numeric = (Poisson.loss(eta + h, y) - Poisson.loss(eta - h, y)) / (2.0 * h);
                assert_relative_eq!(g, numeric, epsilon = 1e-7, max_relative = 1e-7);
                let g_up = Poisson.loss_and_gradient_weight(eta + h, y).1;
                let g_down = Poisson.loss_and_gradient_weight(eta - h, y).1;
                assert_relative_eq!(
                    c,
                    (g_up - g_down) / (2.0 * h),
                    epsilon = 1e-7,
                    max_relative = 1e-7
                );
            }
        }
    }

    #[test]
    fn a_huge_linear_predictor_is_not_finite() {
        let (loss, g, c) = Poisson.newton_weights(800.0, 1.0);
        assert!(loss.is_infinite() && g.is_infinite() && c.is_infinite());
        // Far below, the mean underflows but the loss stays exact.
        assert_relative_eq!(Poisson.loss(-800.0, 2.0), 2.0 * (2f64.ln() + 800.0) - 2.0);
    }
}
