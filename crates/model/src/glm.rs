//! Loss, gradient, prediction, local training and evaluation for any
//! [`Family`], optionally with a per-row offset.
//!
//! Parameters are one flat vector of length `d + 1`: index 0 is the
//! intercept, indices `1..=d` the feature weights. The L2 penalty
//! `(l2 / 2) * ||w||^2` covers the weights only, never the intercept. The
//! linear predictor of a row is `intercept + x · w` plus its offset, if any.
//!
//! Every computation is a single stream over the rows of `x` with no
//! allocation per row, so its cost is one read of the feature matrix. Each
//! function is generic over the family and (privately) over whether there
//! is an offset, so each combination compiles to its own loop with the
//! family's per-row terms inlined. [`crate::regression`] offers the same
//! functions for a task's [`crate::ModelKind`].

use ndarray::{Array1, ArrayView1, ArrayView2, ArrayViewMut1, Axis};

use crate::check;
use crate::counts::EvaluationKind;
use crate::error::ModelError;
use crate::family::Family;
use crate::rows::{Offset, Rows, with_offset};

/// Mean loss over the rows plus `(l2 / 2) * ||w||^2`, and its gradient with
/// respect to the parameters (length `d + 1`).
///
/// # Errors
/// [`ModelError::Dimension`] if `params` is not `x.ncols() + 1` long or `y`
/// or the offset not `x.nrows()` long; [`ModelError::Empty`] if `x` has no
/// rows; [`ModelError::InvalidValues`] for non-finite parameters or
/// offsets; [`ModelError::InvalidHyperparameter`] for a negative or
/// non-finite `l2`; [`ModelError::InvalidLabels`] for labels that do not fit
/// the family; [`ModelError::NonFiniteFeature`] if `x` holds a non-finite
/// value; [`ModelError::Overflow`] if the result is not finite for another
/// reason.
pub fn loss_and_gradient<F: Family>(
    family: F,
    rows: Rows<'_>,
    params: ArrayView1<'_, f64>,
    l2: f64,
) -> Result<(f64, Array1<f64>), ModelError> {
    check_training_inputs(family, rows, params, l2)?;
    let mut grad = Array1::zeros(params.len());
    let loss = accumulate(family, rows, params, l2, Some(grad.view_mut()));
    if !(loss.is_finite() && grad.iter().all(|g| g.is_finite())) {
        return Err(non_finite(family, rows.x, "loss"));
    }
    Ok((loss, grad))
}

/// The loss of [`loss_and_gradient`] alone; cheaper, as it skips the
/// gradient's accumulation.
///
/// # Errors
/// As [`loss_and_gradient`].
pub fn loss<F: Family>(
    family: F,
    rows: Rows<'_>,
    params: ArrayView1<'_, f64>,
    l2: f64,
) -> Result<f64, ModelError> {
    check_training_inputs(family, rows, params, l2)?;
    let loss = accumulate(family, rows, params, l2, None);
    if !loss.is_finite() {
        return Err(non_finite(family, rows.x, "loss"));
    }
    Ok(loss)
}

/// Predictions ([`Family::inverse_link`] of the linear predictor, offset
/// included) for each row of `x`. No rows gives an empty vector.
///
/// # Errors
/// [`ModelError::Dimension`] if `params` is not `x.ncols() + 1` long or the
/// offset not `x.nrows()` long; [`ModelError::InvalidValues`] for
/// non-finite parameters or offsets; [`ModelError::NonFiniteFeature`] if
/// `x` holds a non-finite value; [`ModelError::Overflow`] if a linear
/// predictor or prediction is not finite for another reason.
pub fn predict<F: Family>(
    family: F,
    x: ArrayView2<'_, f64>,
    offset: Option<ArrayView1<'_, f64>>,
    params: ArrayView1<'_, f64>,
) -> Result<Array1<f64>, ModelError> {
    check_params(x, params)?;
    check_offset(x, offset)?;
    with_offset!(offset, |o| predict_with(family, x, o, params))
}

fn predict_with<F: Family>(
    family: F,
    x: ArrayView2<'_, f64>,
    offset: impl Offset,
    params: ArrayView1<'_, f64>,
) -> Result<Array1<f64>, ModelError> {
    let (intercept, weights) = split_params(params);
    let mut out = Array1::zeros(x.nrows());
    for (i, (row, o)) in x.rows().into_iter().zip(out.iter_mut()).enumerate() {
        let z = offset.shift(i, intercept + row.dot(&weights));
        if !z.is_finite() {
            return Err(check::non_finite_result(x, "linear predictor"));
        }
        *o = family.inverse_link(z);
        if !o.is_finite() {
            return Err(non_finite(family, x, "prediction"));
        }
    }
    Ok(out)
}

/// Counts of the family's kind ([`Family::Counts`]) of the predictions of
/// `params` against the labels of `rows`; `score_bins` is the histogram
/// resolution of kinds that bin scores.
///
/// # Errors
/// As [`predict`], and as [`EvaluationKind::from_predictions`].
pub fn evaluate<F: Family>(
    family: F,
    rows: Rows<'_>,
    params: ArrayView1<'_, f64>,
    score_bins: usize,
) -> Result<F::Counts, ModelError> {
    let predictions = predict(family, rows.x, rows.offset, params)?;
    F::Counts::from_predictions(predictions.view(), rows.y, score_bins)
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
pub fn gradient_descent<F: Family>(
    family: F,
    rows: Rows<'_>,
    start: ArrayView1<'_, f64>,
    l2: f64,
    learning_rate: f64,
    steps: u32,
) -> Result<(Array1<f64>, f64), ModelError> {
    check::learning_rate(learning_rate)?;
    check_training_inputs(family, rows, start, l2)?;
    descend(family, rows, start, l2, learning_rate, steps, None)
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
pub fn gradient_descent_prox<F: Family>(
    family: F,
    rows: Rows<'_>,
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
    check_training_inputs(family, rows, start, l2)?;
    check::length("anchor", start.len(), anchor.len())?;
    check::finite("anchor", anchor)?;
    // mu = 0 takes gradient_descent's path itself, so the two agree to the
    // bit rather than up to adding zeros.
    let prox = (mu > 0.0).then_some((anchor, mu));
    descend(family, rows, start, l2, learning_rate, steps, prox)
}

/// The gradient-descent loop on validated inputs, with an optional proximal
/// term `(mu / 2) ||params - anchor||²` added to the gradient.
fn descend<F: Family>(
    family: F,
    rows: Rows<'_>,
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
        let loss = accumulate(family, rows, params.view(), l2, Some(grad.view_mut()));
        let finite = loss.is_finite() && grad.iter().all(|g| g.is_finite());
        if !finite {
            return Err(if step == 0 {
                non_finite(family, rows.x, "loss")
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
        None => self::loss(family, rows, start, l2)?,
    };
    Ok((params, start_loss))
}

/// Checks that labels fit `family`. An empty vector passes.
///
/// # Errors
/// [`ModelError::InvalidLabels`], which says how many labels are invalid but
/// never which rows or values.
pub fn check_labels<F: Family>(family: F, y: ArrayView1<'_, f64>) -> Result<(), ModelError> {
    let invalid = y.iter().filter(|&&v| !family.is_valid_label(v)).count();
    if invalid == 0 {
        Ok(())
    } else {
        Err(family.label_error(invalid, y.len()))
    }
}

/// The error for a non-finite result of finite-looking inputs: a bad cell
/// of `x` if there is one, else an overflow of what the family names (or of
/// `what`).
pub(crate) fn non_finite<F: Family>(
    family: F,
    x: ArrayView2<'_, f64>,
    what: &'static str,
) -> ModelError {
    check::non_finite_result(x, family.overflow_cause().unwrap_or(what))
}

fn check_params(x: ArrayView2<'_, f64>, params: ArrayView1<'_, f64>) -> Result<(), ModelError> {
    check::length("parameters", x.ncols() + 1, params.len())?;
    check::finite("parameters", params)
}

/// The offset, if any, must have one finite value per row.
pub(crate) fn check_offset(
    x: ArrayView2<'_, f64>,
    offset: Option<ArrayView1<'_, f64>>,
) -> Result<(), ModelError> {
    match offset {
        None => Ok(()),
        Some(offset) => {
            check::length("offset", x.nrows(), offset.len())?;
            check::finite("offset", offset)
        }
    }
}

fn check_training_inputs<F: Family>(
    family: F,
    rows: Rows<'_>,
    params: ArrayView1<'_, f64>,
    l2: f64,
) -> Result<(), ModelError> {
    check_params(rows.x, params)?;
    check::length("labels", rows.x.nrows(), rows.y.len())?;
    check_offset(rows.x, rows.offset)?;
    if rows.x.nrows() == 0 {
        return Err(ModelError::Empty);
    }
    check::l2(l2)?;
    check_labels(family, rows.y)
}

/// Intercept and weights of a parameter vector already checked to be
/// non-empty.
pub(crate) fn split_params(params: ArrayView1<'_, f64>) -> (f64, ArrayView1<'_, f64>) {
    let (intercept, weights) = params.split_at(Axis(0), 1);
    (intercept[0], weights)
}

/// One pass over validated, non-empty inputs: returns the penalised mean
/// loss and, if `grad` is given, overwrites it with the gradient. Results are
/// not checked for finiteness; callers do that.
fn accumulate<F: Family>(
    family: F,
    rows: Rows<'_>,
    params: ArrayView1<'_, f64>,
    l2: f64,
    grad: Option<ArrayViewMut1<'_, f64>>,
) -> f64 {
    // Dispatching once, outside the loop, lets each loop inline its own
    // per-row terms.
    with_offset!(rows.offset, |o| accumulate_with(
        family, rows.x, rows.y, o, params, l2, grad
    ))
}

/// [`accumulate`] for one family and one kind of offset. The family's
/// gradient weight is the derivative of the row's loss with respect to its
/// linear predictor.
fn accumulate_with<F: Family>(
    family: F,
    x: ArrayView2<'_, f64>,
    y: ArrayView1<'_, f64>,
    offset: impl Offset,
    params: ArrayView1<'_, f64>,
    l2: f64,
    grad: Option<ArrayViewMut1<'_, f64>>,
) -> f64 {
    let (intercept, weights) = split_params(params);
    let n = x.nrows() as f64;
    let penalty = 0.5 * l2 * weights.dot(&weights);
    let mut loss_sum = 0.0;
    match grad {
        None => {
            for (i, (row, &label)) in x.rows().into_iter().zip(y).enumerate() {
                loss_sum += family.loss(offset.shift(i, intercept + row.dot(&weights)), label);
            }
        }
        Some(mut grad) => {
            grad.fill(0.0);
            let (mut grad_intercept, mut grad_weights) = grad.view_mut().split_at(Axis(0), 1);
            let mut residual_sum = 0.0;
            for (i, (row, &label)) in x.rows().into_iter().zip(y).enumerate() {
                let eta = offset.shift(i, intercept + row.dot(&weights));
                let (loss, residual) = family.loss_and_gradient_weight(eta, label);
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
#[path = "glm_tests.rs"]
mod tests;
