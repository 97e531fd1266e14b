//! Linear regression: finite labels, the identity link, squared error.

use crate::counts::RegressionCounts;
use crate::family::{Family, RowBound, TermBounds};

/// Linear regression. A row's loss is `0.5 (η - y)²`, its gradient weight
/// the residual `η - y` and its curvature 1. The only family with a closed
/// form ([`crate::NormalTerms`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Linear;

impl Family for Linear {
    type Counts = RegressionCounts;

    fn name(self) -> &'static str {
        "linear"
    }

    fn link(self) -> &'static str {
        "identity"
    }

    fn label_rule(self) -> &'static str {
        "a finite number"
    }

    #[inline]
    fn is_valid_label(self, y: f64) -> bool {
        y.is_finite()
    }

    #[inline]
    fn loss_and_gradient_weight(self, eta: f64, y: f64) -> (f64, f64) {
        let r = eta - y;
        (0.5 * r * r, r)
    }

    #[inline]
    fn newton_weights(self, eta: f64, y: f64) -> (f64, f64, f64) {
        let (loss, r) = self.loss_and_gradient_weight(eta, y);
        (loss, r, 1.0)
    }

    #[inline]
    fn inverse_link(self, eta: f64) -> f64 {
        eta
    }

    fn prediction_name(self) -> &'static str {
        "prediction"
    }

    fn has_closed_form(self) -> bool {
        true
    }

    fn term_bounds(self) -> TermBounds {
        TermBounds {
            residual: None,
            curvature: Some(RowBound {
                per_row: 1.0,
                rule: "at most n (each row's curvature is 1)",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_rule() {
        assert!(Linear.is_valid_label(-3.5));
        assert!(!Linear.is_valid_label(f64::INFINITY));
        assert!(!Linear.is_valid_label(f64::NAN));
    }

    #[test]
    fn weights_by_hand() {
        assert_eq!(Linear.newton_weights(2.0, 0.5), (1.125, 1.5, 1.0));
        assert_eq!(Linear.inverse_link(-4.0), -4.0);
    }
}
