//! The one error type of this crate.
//!
//! Messages name what was wrong by position (row, column, index) or by count,
//! never by value: the inputs are patient data, and an error message may end
//! up in a log or be sent to the coordinator.

use crate::kind::ModelKind;

/// Why the model library refused an input or could not finish a computation.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Two inputs that must agree in size do not.
    #[error("dimension mismatch: {what} has length {got}, expected {expected}")]
    Dimension {
        /// The input whose size is wrong, e.g. `"parameters"`.
        what: &'static str,
        /// The size it must have.
        expected: usize,
        /// The size it has.
        got: usize,
    },
    /// A computation that needs at least one row (a mean over rows) got none.
    #[error("the input has no rows")]
    Empty,
    /// A feature matrix holds an infinite or NaN value where only finite
    /// values are allowed (after standardisation a missing value is 0, not NaN).
    #[error("the feature matrix has a non-finite value at row {row}, column {column}")]
    NonFiniteFeature {
        /// Row index of the first offending cell.
        row: usize,
        /// Column (feature) index of the first offending cell.
        column: usize,
    },
    /// Some entries of a vector are outside the allowed range.
    #[error("{invalid} of {total} entries of {what} are not {allowed} (first at index {first})")]
    InvalidValues {
        /// The vector, e.g. `"parameters"` or `"probabilities"`.
        what: &'static str,
        /// How many entries are invalid.
        invalid: usize,
        /// How many entries the vector has.
        total: usize,
        /// Index of the first invalid entry.
        first: usize,
        /// What the entries must be, e.g. `"finite numbers"`.
        allowed: &'static str,
    },
    /// Labels that do not fit the model: not 0/1 for a logistic model, not
    /// finite for a linear one. Only the count is reported, never which rows
    /// or which values.
    #[error("{invalid} of {total} labels are not valid for a {kind} model, which needs {}", kind.label_rule())]
    InvalidLabels {
        /// The model the labels were checked for.
        kind: ModelKind,
        /// How many labels are invalid.
        invalid: usize,
        /// How many labels there are.
        total: usize,
    },
    /// A hyperparameter is outside its allowed range.
    #[error("invalid {name} {value}: must be {allowed}")]
    InvalidHyperparameter {
        /// The hyperparameter, e.g. `"learning rate"`.
        name: &'static str,
        /// The value given.
        value: f64,
        /// What is allowed, e.g. `"a finite number > 0"`.
        allowed: &'static str,
    },
    /// A histogram size outside the supported range.
    #[error("invalid number of score bins {got}: must be in {min}..={max}")]
    InvalidBins {
        /// The number of bins asked for.
        got: usize,
        /// The smallest number allowed.
        min: usize,
        /// The largest number allowed.
        max: usize,
    },
    /// A computation left its numeric type although every input was valid:
    /// a float became infinite or NaN from finite inputs, or a count went past
    /// `u64::MAX`.
    #[error("{what} overflowed: the numbers involved are too large to represent")]
    Overflow {
        /// The quantity that overflowed, e.g. `"loss"`.
        what: &'static str,
    },
    /// Gradient descent left the finite numbers: the learning rate is too
    /// large for the data.
    #[error(
        "gradient descent diverged at step {step} of {steps}: the loss or parameters became \
         non-finite; lower the learning rate"
    )]
    Diverged {
        /// The step (1-based) after which the parameters or loss were non-finite.
        step: u32,
        /// The number of steps asked for.
        steps: u32,
    },
    /// Aggregate counts that do not add up.
    #[error("inconsistent counts: {what} is {got}, expected {expected}")]
    InconsistentCounts {
        /// The quantity checked, e.g. `"tp + fp + tn + fn_"`.
        what: &'static str,
        /// What it must equal.
        expected: u64,
        /// What it is.
        got: u64,
    },
    /// An aggregate sum outside its possible range.
    #[error("invalid aggregate: {what} must be {allowed}")]
    InvalidAggregate {
        /// The field, e.g. `"log_loss_sum"`.
        what: &'static str,
        /// What it must be.
        allowed: &'static str,
    },
}
