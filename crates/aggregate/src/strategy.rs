//! The traits every aggregation rule implements.

use ndarray::{Array1, ArrayView1};

/// Why an update could not be folded in.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AggregateError {
    /// The update's length differs from the round's parameter count.
    #[error("update has {got} values, expected {expected}")]
    Dimension {
        /// Parameters in this round.
        expected: usize,
        /// Values in the update.
        got: usize,
    },
    /// A value of the update is NaN or infinite.
    #[error("update value {index} is not finite")]
    NonFinite {
        /// Position of the first bad value.
        index: usize,
    },
    /// The weight is not a finite positive number.
    #[error("update weight must be finite and positive")]
    Weight,
}

/// Combines one round's updates.
pub trait Aggregator: Send {
    /// Folds one update in with its weight (e.g. its row count).
    ///
    /// # Errors
    /// A wrong dimension, a non-finite value or a bad weight; the aggregate is
    /// unchanged then.
    fn add(&mut self, update: ArrayView1<'_, f64>, weight: f64) -> Result<(), AggregateError>;

    /// Updates folded in so far.
    fn contributors(&self) -> usize;

    /// The combined update, or `None` when no update arrived (keep the model).
    fn finish(self: Box<Self>) -> Option<Array1<f64>>;
}

/// An aggregation rule: opens one [`Aggregator`] per round.
pub trait Strategy: Send + Sync {
    /// Short name for logs and run summaries.
    fn name(&self) -> &'static str;

    /// Starts a round whose updates have `dimension` values.
    fn start_round(&self, dimension: usize) -> Box<dyn Aggregator>;
}

/// A boxed strategy is a strategy, so wrappers such as
/// [`NormClip`](crate::NormClip) can wrap one chosen at run time.
impl<S: Strategy + ?Sized> Strategy for Box<S> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    fn start_round(&self, dimension: usize) -> Box<dyn Aggregator> {
        (**self).start_round(dimension)
    }
}

/// Checks an update before it touches an aggregate.
///
/// # Errors
/// See [`AggregateError`].
pub fn check_update(
    update: ArrayView1<'_, f64>,
    weight: f64,
    expected: usize,
) -> Result<(), AggregateError> {
    if update.len() != expected {
        return Err(AggregateError::Dimension {
            expected,
            got: update.len(),
        });
    }
    if let Some(index) = update.iter().position(|v| !v.is_finite()) {
        return Err(AggregateError::NonFinite { index });
    }
    if !(weight.is_finite() && weight > 0.0) {
        return Err(AggregateError::Weight);
    }
    Ok(())
}
