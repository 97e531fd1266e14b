//! Model families: what makes logistic, linear and Poisson regression
//! different, behind one trait.
//!
//! A [`Family`] says, per row, how its loss and the loss's first two
//! derivatives with respect to the linear predictor `η` depend on `η` and
//! the label, which labels are valid, and how `η` becomes a prediction
//! (the inverse link). Everything else — the gradient pass, gradient descent
//! and FedProx, Newton terms, prediction and evaluation counts — is written
//! once in [`crate::glm`] and [`crate::newton`], generic over the family, so
//! each hot loop is compiled for each family with its per-row terms inlined.
//!
//! [`ModelKind`] is the registry of the families a task can name; the one
//! place that maps a kind to its family is the private `with_family!` macro
//! of this module, which every kind-level function uses to dispatch once,
//! outside its loop. Adding a family means its own file here plus, when
//! tasks may name it, one variant and one line in that macro.

mod linear;
mod logistic;
mod poisson;

use std::fmt;

pub use linear::Linear;
pub use logistic::Logistic;
pub use poisson::Poisson;
pub(crate) use poisson::half_deviance;

use crate::counts::{EvaluationKind, MetricName};
use crate::error::ModelError;
use crate::kind::ModelKind;

/// An upper bound on a per-row quantity of a family, used to refuse sums
/// received from elsewhere that no real rows could have produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowBound {
    /// The bound on one row's value (magnitude for residuals).
    pub per_row: f64,
    /// What the refused sum must be, for the error message, e.g.
    /// `"at most n / 4 (each row's curvature is at most 1/4)"`.
    pub rule: &'static str,
}

/// Per-row bounds a family's Newton terms obey, checked by
/// [`crate::NewtonTerms::validate_for`]. `None` means unbounded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TermBounds {
    /// Bound on `|gradient weight|` of one row, so that
    /// `|gradient_sum[0]| <= n * per_row`.
    pub residual: Option<RowBound>,
    /// Bound on the curvature weight of one row, so that
    /// `hessian_sum[0][0] <= n * per_row`.
    pub curvature: Option<RowBound>,
}

/// One regression family: a loss on the linear predictor, its derivatives,
/// its labels and its link.
///
/// With `a = [1, x]` a row's augmented features, `params` the parameters
/// and `offset` the row's optional offset, the linear predictor is
/// `η = params · a + offset`. Each method below is about one row, given `η`
/// (offset included) and the label `y`; the training objective is the mean
/// of [`Family::loss`] over the rows plus the L2 penalty.
///
/// Implementations are zero-sized (or small) `Copy` values; generic code
/// takes them by value so that the compiler inlines the per-row terms.
pub trait Family: Copy + fmt::Debug + Send + Sync + 'static {
    /// The evaluation counts this family's held-out predictions are
    /// summarised into.
    type Counts: EvaluationKind;

    /// Lowercase name, e.g. `"logistic"`, as in task files and messages.
    fn name(self) -> &'static str;

    /// Name of the link function, e.g. `"logit"`.
    fn link(self) -> &'static str;

    /// What a label must be, for error messages, e.g. `"exactly 0 or 1"`.
    fn label_rule(self) -> &'static str;

    /// Whether `y` is a valid label.
    fn is_valid_label(self, y: f64) -> bool;

    /// The row's loss and its derivative with respect to `η` (the gradient
    /// weight: a row adds `weight * a` to the gradient of the summed loss).
    /// Not checked for finiteness; callers check the sums.
    fn loss_and_gradient_weight(self, eta: f64, y: f64) -> (f64, f64);

    /// [`Family::loss_and_gradient_weight`] plus the second derivative with
    /// respect to `η` (the curvature weight: a row adds `weight * a aᵀ` to
    /// the Hessian). The first two values equal
    /// [`Family::loss_and_gradient_weight`]'s to the bit.
    fn newton_weights(self, eta: f64, y: f64) -> (f64, f64, f64);

    /// The row's loss alone.
    #[inline]
    fn loss(self, eta: f64, y: f64) -> f64 {
        self.loss_and_gradient_weight(eta, y).0
    }

    /// The inverse link: the prediction for linear predictor `η`.
    fn inverse_link(self, eta: f64) -> f64;

    /// What a prediction is, as a column header, e.g. `"probability"`.
    fn prediction_name(self) -> &'static str;

    /// What `exp(coefficient)` means per unit of a feature, if the link
    /// makes it meaningful (`"odds ratio / unit"` for the logit link).
    fn exp_coefficient_name(self) -> Option<&'static str> {
        None
    }

    /// Whether predictions are probabilities of a 0/1 label, so that ROC
    /// curves and calibration counts apply.
    fn predicts_probabilities(self) -> bool {
        false
    }

    /// Whether the penalised objective has a closed-form minimiser from
    /// mergeable sums ([`crate::NormalTerms`]); true for least squares only.
    fn has_closed_form(self) -> bool {
        false
    }

    /// The per-row bounds of the Newton terms.
    fn term_bounds(self) -> TermBounds;

    /// What overflowed when the loss or its derivatives of finite inputs
    /// come out non-finite, if the family can name the cause better than
    /// the computation can (e.g. the Poisson mean `exp(η)`).
    fn overflow_cause(self) -> Option<&'static str> {
        None
    }

    /// The error for `invalid` of `total` labels not fitting this family.
    /// Only counts are reported, never rows or values.
    fn label_error(self, invalid: usize, total: usize) -> ModelError {
        ModelError::InvalidLabels {
            family: self.name(),
            rule: self.label_rule(),
            invalid,
            total,
        }
    }
}

/// Runs `$body` with `$f` bound to the family of the [`ModelKind`] `$kind`.
/// The only place a kind is mapped to its family: each arm is compiled for
/// its own family, so a body calling a generic function dispatches once.
macro_rules! with_family {
    ($kind:expr, |$f:ident| $body:expr) => {
        match $kind {
            $crate::kind::ModelKind::Logistic => {
                let $f = $crate::family::Logistic;
                $body
            }
            $crate::kind::ModelKind::Linear => {
                let $f = $crate::family::Linear;
                $body
            }
            $crate::kind::ModelKind::Poisson => {
                let $f = $crate::family::Poisson;
                $body
            }
        }
    };
}
pub(crate) use with_family;

/// The three headline metrics of a family's counts, see
/// [`EvaluationKind::summary_metrics`].
fn summary_metrics_of<F: Family>(_: F) -> [MetricName; 3] {
    <F::Counts as EvaluationKind>::summary_metrics()
}

/// What each registered kind's family says, so that callers outside this
/// crate ask the kind instead of matching on its variants.
impl ModelKind {
    /// Lowercase name, as in task files.
    pub fn name(self) -> &'static str {
        with_family!(self, |f| f.name())
    }

    /// Name of the link function.
    pub fn link(self) -> &'static str {
        with_family!(self, |f| f.link())
    }

    /// What a label must be for this kind, for messages.
    pub fn label_rule(self) -> &'static str {
        with_family!(self, |f| f.label_rule())
    }

    /// Whether `y` is a valid label for this kind.
    #[inline]
    pub fn is_valid_label(self, y: f64) -> bool {
        with_family!(self, |f| f.is_valid_label(y))
    }

    /// What a prediction is, as a column header.
    pub fn prediction_name(self) -> &'static str {
        with_family!(self, |f| f.prediction_name())
    }

    /// What `exp(coefficient)` means per unit, if anything.
    pub fn exp_coefficient_name(self) -> Option<&'static str> {
        with_family!(self, |f| f.exp_coefficient_name())
    }

    /// Whether predictions are probabilities (ROC and calibration apply).
    pub fn predicts_probabilities(self) -> bool {
        with_family!(self, |f| f.predicts_probabilities())
    }

    /// Whether the fit has a closed form from [`crate::NormalTerms`].
    pub fn has_closed_form(self) -> bool {
        with_family!(self, |f| f.has_closed_form())
    }

    /// The metrics the operator's summary shows for this kind, headline
    /// first.
    pub fn summary_metrics(self) -> [MetricName; 3] {
        with_family!(self, |f| summary_metrics_of(f))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_speak_for_their_families() {
        assert_eq!(ModelKind::Logistic.link(), "logit");
        assert_eq!(ModelKind::Linear.link(), "identity");
        assert_eq!(ModelKind::Logistic.prediction_name(), "probability");
        assert_eq!(ModelKind::Linear.prediction_name(), "prediction");
        assert!(ModelKind::Linear.has_closed_form());
        assert!(!ModelKind::Logistic.has_closed_form());
        assert!(ModelKind::Logistic.predicts_probabilities());
        assert!(!ModelKind::Linear.predicts_probabilities());
        assert_eq!(ModelKind::Logistic.summary_metrics()[0].key, "auc");
        assert_eq!(ModelKind::Linear.summary_metrics()[0].key, "r2");
        assert_eq!(
            ModelKind::Logistic.exp_coefficient_name(),
            Some("odds ratio / unit")
        );
        assert_eq!(ModelKind::Linear.exp_coefficient_name(), None);
    }

    #[test]
    fn label_errors_name_the_family_and_its_rule() {
        let message = Poisson.label_error(2, 9).to_string();
        assert!(message.contains("2 of 9"), "{message}");
        assert!(message.contains("poisson"), "{message}");
        assert!(message.contains(Poisson.label_rule()), "{message}");
    }
}
