//! Loss, gradient, prediction and local training for logistic and linear
//! regression.
//!
//! Parameters are one flat vector of length `d + 1`: index 0 is the
//! intercept, indices `1..=d` the feature weights. The L2 penalty
//! `(l2 / 2) * ||w||^2` covers the weights only, never the intercept.
//!
//! Every computation is a single stream over the rows of `x` with no
//! allocation per row, so its cost is one read of the feature matrix.

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1, Axis};

use crate::check;
use crate::error::ModelError;
use crate::kind::ModelKind;
use crate::numeric::{logistic_terms, sigmoid};

/// Mean loss over the rows plus `(l2 / 2) * ||w||^2`, and its gradient with
/// respect to the parameters (length `d + 1`).
///
/// Logistic: mean log-loss, computed without overflow or `log(0)` for any
/// linear predictor; labels must be exactly 0 or 1. Linear: mean of
/// `0.5 * (prediction - y)^2`.
///
/// # Errors
/// [`ModelError::Dimension`] if `params` is not `x.ncols() + 1` long or `y`
/// not `x.nrows()` long; [`ModelError::Empty`] if `x` has no rows;
/// [`ModelError::InvalidValues`] for non-finite parameters;
/// [`ModelError::InvalidHyperparameter`] for a negative or non-finite `l2`;
/// [`ModelError::InvalidLabels`] for labels that do not fit `kind`;
/// [`ModelError::NonFiniteFeature`] if `x` holds a non-finite value;
/// [`ModelError::Overflow`] if the result is not finite for another reason.
pub fn loss_and_gradient(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    params: ArrayView1<'_, f64>,
    l2: f64,
) -> Result<(f64, Array1<f64>), ModelError> {
    check_training_inputs(kind, x, y, params, l2)?;
    let mut grad = Array1::zeros(params.len());
    let loss = accumulate(kind, x, y, params, l2, Some(grad.view_mut()));
    if !(loss.is_finite() && grad.iter().all(|g| g.is_finite())) {
        return Err(check::non_finite_result(x, "loss"));
    }
    Ok((loss, grad))
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
    check_training_inputs(kind, x, y, params, l2)?;
    let loss = accumulate(kind, x, y, params, l2, None);
    if !loss.is_finite() {
        return Err(check::non_finite_result(x, "loss"));
    }
    Ok(loss)
}

/// Predictions for each row of `x`: probabilities for
/// [`ModelKind::Logistic`], values for [`ModelKind::Linear`]. No rows gives
/// an empty vector.
///
/// # Errors
/// [`ModelError::Dimension`] if `params` is not `x.ncols() + 1` long;
/// [`ModelError::InvalidValues`] for non-finite parameters;
/// [`ModelError::NonFiniteFeature`] if `x` holds a non-finite value;
/// [`ModelError::Overflow`] if a linear predictor is not finite for another
/// reason.
pub fn predict(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    params: ArrayView1<'_, f64>,
) -> Result<Array1<f64>, ModelError> {
    check_params(x, params)?;
    let (intercept, weights) = split_params(params);
    let mut out = Array1::zeros(x.nrows());
    for (row, o) in x.rows().into_iter().zip(out.iter_mut()) {
        let z = intercept + row.dot(&weights);
        if !z.is_finite() {
            return Err(check::non_finite_result(x, "linear predictor"));
        }
        *o = match kind {
            ModelKind::Logistic => sigmoid(z),
            ModelKind::Linear => z,
        };
    }
    Ok(out)
}

/// Runs `steps` steps of full-batch gradient descent from `start` and returns
/// the final parameters and the loss at `start` (the training loss the
/// caller's current model has on these rows). Zero steps returns `start`.
///
/// # Errors
/// As [`loss_and_gradient`], plus [`ModelError::InvalidHyperparameter`] for a
/// learning rate that is not finite and positive, and
/// [`ModelError::Diverged`] if the loss or parameters become non-finite
/// after the first step.
pub fn gradient_descent(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    start: ArrayView1<'_, f64>,
    l2: f64,
    learning_rate: f64,
    steps: u32,
) -> Result<(Array1<f64>, f64), ModelError> {
    check::learning_rate(learning_rate)?;
    check_training_inputs(kind, x, y, start, l2)?;
    descend(kind, x, y, start, l2, learning_rate, steps, None)
}

/// [`gradient_descent`] for FedProx: minimises the local objective plus
/// `(mu / 2) * ||params - anchor||²` over all parameters, the intercept
/// included, which keeps a site's update near the global model `anchor`
/// when sites' data differ. Returns the final parameters and the loss of
/// [`loss`] at `start` (without the proximal term, so it is comparable with
/// [`gradient_descent`]'s). With `mu = 0` the result is exactly
/// [`gradient_descent`]'s.
///
/// # Errors
/// As [`gradient_descent`], plus [`ModelError::Dimension`] or
/// [`ModelError::InvalidValues`] for an `anchor` that is not `d + 1` finite
/// numbers and [`ModelError::InvalidHyperparameter`] for a `mu` that is not
/// finite and non-negative.
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
    check::learning_rate(learning_rate)?;
    if !(mu.is_finite() && mu >= 0.0) {
        return Err(ModelError::InvalidHyperparameter {
            name: "proximal mu",
            value: mu,
            allowed: "a finite number >= 0",
        });
    }
    check_training_inputs(kind, x, y, start, l2)?;
    check::length("anchor", start.len(), anchor.len())?;
    check::finite("anchor", anchor)?;
    // mu = 0 takes gradient_descent's path itself, so the two agree to the
    // bit rather than up to adding zeros.
    let prox = (mu > 0.0).then_some((anchor, mu));
    descend(kind, x, y, start, l2, learning_rate, steps, prox)
}

/// The gradient-descent loop on validated inputs, with an optional proximal
/// term `(mu / 2) ||params - anchor||²` added to the gradient.
#[allow(clippy::too_many_arguments)]
fn descend(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    start: ArrayView1<'_, f64>,
    l2: f64,
    learning_rate: f64,
    steps: u32,
    prox: Option<(ArrayView1<'_, f64>, f64)>,
) -> Result<(Array1<f64>, f64), ModelError> {
    let mut params = start.to_owned();
    let mut grad = Array1::zeros(params.len());
    let mut start_loss = None;
    for step in 0..steps {
        let loss = accumulate(kind, x, y, params.view(), l2, Some(grad.view_mut()));
        let finite = loss.is_finite() && grad.iter().all(|g| g.is_finite());
        if !finite {
            return Err(if step == 0 {
                check::non_finite_result(x, "loss")
            } else {
                // Step 0 succeeded on the same rows, so the data are finite
                // and the parameters have run away.
                ModelError::Diverged { step, steps }
            });
        }
        start_loss.get_or_insert(loss);
        if let Some((anchor, mu)) = prox {
            for ((g, &p), &a) in grad.iter_mut().zip(&params).zip(anchor) {
                *g += mu * (p - a);
            }
        }
        params.scaled_add(-learning_rate, &grad);
        if !params.iter().all(|p| p.is_finite()) {
            return Err(ModelError::Diverged {
                step: step + 1,
                steps,
            });
        }
    }
    let start_loss = match start_loss {
        Some(loss) => loss,
        None => self::loss(kind, x, y, start, l2)?,
    };
    Ok((params, start_loss))
}

/// Checks that labels fit the model: exactly 0 or 1 for
/// [`ModelKind::Logistic`], finite for [`ModelKind::Linear`]. An empty vector
/// passes.
///
/// # Errors
/// [`ModelError::InvalidLabels`], which says how many labels are invalid but
/// never which rows or values.
pub fn check_labels(kind: ModelKind, y: ArrayView1<'_, f64>) -> Result<(), ModelError> {
    let invalid = y.iter().filter(|&&v| !kind.is_valid_label(v)).count();
    if invalid == 0 {
        Ok(())
    } else {
        Err(ModelError::InvalidLabels {
            kind,
            invalid,
            total: y.len(),
        })
    }
}

fn check_params(x: ArrayView2<'_, f64>, params: ArrayView1<'_, f64>) -> Result<(), ModelError> {
    check::length("parameters", x.ncols() + 1, params.len())?;
    check::finite("parameters", params)
}

fn check_training_inputs(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    params: ArrayView1<'_, f64>,
    l2: f64,
) -> Result<(), ModelError> {
    check_params(x, params)?;
    check::length("labels", x.nrows(), y.len())?;
    if x.nrows() == 0 {
        return Err(ModelError::Empty);
    }
    check::l2(l2)?;
    check_labels(kind, y)
}

/// Intercept and weights of a parameter vector already checked to be
/// non-empty.
fn split_params(params: ArrayView1<'_, f64>) -> (f64, ArrayView1<'_, f64>) {
    let (intercept, weights) = params.split_at(Axis(0), 1);
    (intercept[0], weights)
}

/// One pass over validated, non-empty inputs: returns the penalised mean
/// loss and, if `grad` is given, overwrites it with the gradient. Results are
/// not checked for finiteness; callers do that.
fn accumulate(
    kind: ModelKind,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    params: ArrayView1<'_, f64>,
    l2: f64,
    grad: Option<ArrayViewMut1<'_, f64>>,
) -> f64 {
    // Dispatching once, outside the loop, lets each loop inline its own
    // per-row terms.
    match kind {
        ModelKind::Logistic => accumulate_with(x, y, params, l2, grad, logistic_terms),
        ModelKind::Linear => accumulate_with(x, y, params, l2, grad, |z, y| {
            let r = z - y;
            (0.5 * r * r, r)
        }),
    }
}

/// [`accumulate`] for per-row terms `(loss, residual)`, where the residual is
/// the derivative of the row's loss with respect to its linear predictor.
fn accumulate_with(
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    params: ArrayView1<'_, f64>,
    l2: f64,
    grad: Option<ArrayViewMut1<'_, f64>>,
    terms: impl Fn(f64, f64) -> (f64, f64),
) -> f64 {
    let (intercept, weights) = split_params(params);
    let n = x.nrows() as f64;
    let penalty = 0.5 * l2 * weights.dot(&weights);
    let mut loss_sum = 0.0;
    match grad {
        None => {
            for (row, &label) in x.rows().into_iter().zip(y) {
                loss_sum += terms(intercept + row.dot(&weights), label).0;
            }
        }
        Some(mut grad) => {
            grad.fill(0.0);
            let (mut grad_intercept, mut grad_weights) = grad.view_mut().split_at(Axis(0), 1);
            let mut residual_sum = 0.0;
            for (row, &label) in x.rows().into_iter().zip(y) {
                let (loss, residual) = terms(intercept + row.dot(&weights), label);
                loss_sum += loss;
                residual_sum += residual;
                grad_weights.scaled_add(residual, &row);
            }
            grad_intercept[0] = residual_sum / n;
            grad_weights /= n;
            grad_weights.scaled_add(l2, &weights);
        }
    }
    loss_sum / n + penalty
}

#[cfg(test)]
#[path = "regression_tests.rs"]
mod tests;
