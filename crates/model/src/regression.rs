//! Loss, gradient, prediction, local training and evaluation for the
//! family of a task's [`ModelKind`].
//!
//! Each function maps the kind to its family once and runs the generic
//! version of [`crate::glm`], whose loop is compiled for that family; see
//! there for the conventions. These take features and labels without an
//! offset, as tasks have none.

use ndarray::{Array1, ArrayView1, ArrayView2};

use crate::counts::EvaluationCounts;
use crate::error::ModelError;
use crate::family::with_family;
use crate::glm;
use crate::kind::ModelKind;
use crate::rows::Rows;

/// Mean loss over the rows plus `(l2 / 2) * ||w||^2`, and its gradient with
/// respect to the parameters (length `d + 1`).
///
/// Logistic: mean log-loss, computed without overflow or `log(0)` for any
/// linear predictor; labels must be exactly 0 or 1. Linear: mean of
/// `0.5 * (prediction - y)^2`.
///
/// # Errors
/// As [`glm::loss_and_gradient`].
pub fn loss_and_gradient(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    params: ArrayView1<'_, f64>,
    l2: f64,
) -> Result<(f64, Array1<f64>), ModelError> {
    with_family!(kind, |f| glm::loss_and_gradient(
        f,
        Rows::new(x, y),
        params,
        l2
    ))
}

/// The loss of [`loss_and_gradient`] alone; cheaper, as it skips the
/// gradient's accumulation.
///
/// # Errors
/// As [`loss_and_gradient`].
pub fn loss(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    params: ArrayView1<'_, f64>,
    l2: f64,
) -> Result<f64, ModelError> {
    with_family!(kind, |f| glm::loss(f, Rows::new(x, y), params, l2))
}

/// Predictions for each row of `x`, through the family's inverse link:
/// probabilities for [`ModelKind::Logistic`], values for
/// [`ModelKind::Linear`], expected counts for [`ModelKind::Poisson`]. No
/// rows gives an empty vector.
///
/// # Errors
/// As [`glm::predict`].
pub fn predict(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    params: ArrayView1<'_, f64>,
) -> Result<Array1<f64>, ModelError> {
    with_family!(kind, |f| glm::predict(f, x, None, params))
}

/// The evaluation counts of `kind` (binary for logistic models, regression
/// errors for linear ones, count deviance and totals for Poisson ones) of
/// the predictions of `params` on the rows of `x`
/// against `y`.
///
/// # Errors
/// As [`glm::evaluate`].
pub fn evaluate(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    params: ArrayView1<'_, f64>,
    score_bins: usize,
) -> Result<EvaluationCounts, ModelError> {
    with_family!(kind, |f| glm::evaluate(
        f,
        Rows::new(x, y),
        params,
        score_bins
    )
    .map(EvaluationCounts::from))
}

/// Runs `steps` steps of full-batch gradient descent from `start` and returns
/// the final parameters and the loss at `start` (the training loss the
/// caller's current model has on these rows). Zero steps returns `start`.
///
/// # Errors
/// As [`glm::gradient_descent`].
pub fn gradient_descent(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    start: ArrayView1<'_, f64>,
    l2: f64,
    learning_rate: f64,
    steps: u32,
) -> Result<(Array1<f64>, f64), ModelError> {
    with_family!(kind, |f| glm::gradient_descent(
        f,
        Rows::new(x, y),
        start,
        l2,
        learning_rate,
        steps
    ))
}

/// [`gradient_descent`] for FedProx: minimises the local objective plus
/// `(mu / 2) * ||params - anchor||²` over all parameters, the intercept
/// included. With `mu = 0` the result is exactly [`gradient_descent`]'s.
///
/// # Errors
/// As [`glm::gradient_descent_prox`].
// The arguments are gradient_descent's plus the two that define the
// proximal term; a struct would hide the symmetry with it.
#[allow(clippy::too_many_arguments)]
pub fn gradient_descent_prox(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    start: ArrayView1<'_, f64>,
    anchor: ArrayView1<'_, f64>,
    l2: f64,
    mu: f64,
    learning_rate: f64,
    steps: u32,
) -> Result<(Array1<f64>, f64), ModelError> {
    with_family!(kind, |f| glm::gradient_descent_prox(
        f,
        Rows::new(x, y),
        start,
        anchor,
        l2,
        mu,
        learning_rate,
        steps
    ))
}

/// Checks that labels fit the model: exactly 0 or 1 for
/// [`ModelKind::Logistic`], finite for [`ModelKind::Linear`]. An empty vector
/// passes.
///
/// # Errors
/// [`ModelError::InvalidLabels`], which says how many labels are invalid but
/// never which rows or values.
pub fn check_labels(kind: ModelKind, y: ArrayView1<'_, f64>) -> Result<(), ModelError> {
    with_family!(kind, |f| glm::check_labels(f, y))
}

#[cfg(test)]
#[path = "regression_tests.rs"]
mod tests;
