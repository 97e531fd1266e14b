//! Logistic regression: 0/1 labels, the logit link, log-loss.

use crate::counts::BinaryCounts;
use crate::family::{Family, RowBound, TermBounds};
use crate::numeric::{logistic_newton_terms, logistic_terms, sigmoid};

/// Logistic regression. A row's loss is the log-loss
/// `softplus(η) - y η`, computed without overflow for any `η`; its gradient
/// weight is `sigmoid(η) - y` and its curvature `sigmoid(η) (1 - sigmoid(η))`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Logistic;

impl Family for Logistic {
    type Counts = BinaryCounts;

    fn name(self) -> &'static str {
        "logistic"
    }

    fn link(self) -> &'static str {
        "logit"
    }

    fn label_rule(self) -> &'static str {
        "exactly 0 or 1"
    }

    #[inline]
    fn is_valid_label(self, y: f64) -> bool {
        y == 0.0 || y == 1.0
    }

    #[inline]
    fn loss_and_gradient_weight(self, eta: f64, y: f64) -> (f64, f64) {
        logistic_terms(eta, y)
    }

    #[inline]
    fn newton_weights(self, eta: f64, y: f64) -> (f64, f64, f64) {
        logistic_newton_terms(eta, y)
    }

    #[inline]
    fn inverse_link(self, eta: f64) -> f64 {
        sigmoid(eta)
    }

    fn prediction_name(self) -> &'static str {
        "probability"
    }

    fn exp_coefficient_name(self) -> Option<&'static str> {
        Some("odds ratio / unit")
    }

    fn predicts_probabilities(self) -> bool {
        true
    }

    fn term_bounds(self) -> TermBounds {
        TermBounds {
            residual: Some(RowBound {
                per_row: 1.0,
                rule: "at most n in magnitude (each residual is in [-1, 1])",
            }),
            curvature: Some(RowBound {
                per_row: 0.25,
                rule: "at most n / 4 (each row's curvature is at most 1/4)",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rule() {
        assert!(Logistic.is_valid_label(0.0));
        assert!(Logistic.is_valid_label(1.0));
        assert!(!Logistic.is_valid_label(0.5));
        assert!(!Logistic.is_valid_label(f64::NAN));
    }

    #[test]
    fn weights_are_the_derivatives_of_the_loss() {
        let h = 1e-6;
        for eta in [-3.0, -0.2, 0.0, 1.5] {
            for y in [0.0, 1.0] {
                let (_, g, c) = Logistic.newton_weights(eta, y);
                let numeric = (Logistic.loss(eta + h, y) - Logistic.loss(eta - h, y)) / (2.0 * h);
                assert!((g - numeric).abs() < 1e-8, "{eta} {y}");
                let g_up = Logistic.loss_and_gradient_weight(eta + h, y).1;
                let g_down = Logistic.loss_and_gradient_weight(eta - h, y).1;
                assert!((c - (g_up - g_down) / (2.0 * h)).abs() < 1e-8, "{eta} {y}");
            }
        }
    }
}
