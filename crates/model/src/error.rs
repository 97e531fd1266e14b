//! The error type of this crate's computations. (Refusing to release counts
//! under a minimum cell size is a decision by rule, not a failure, and has
//! its own type, [`crate::CellError`].)
//!
//! Messages name what was wrong by position (row, column, index) or by count,
//! never by value: the inputs are patient data, and an error message may end
//! up in a log or be sent to the coordinator.

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
    /// Labels that do not fit the model's family: not 0/1 for a logistic
    /// model, not finite for a linear one, not a whole number `>= 0` for a
    /// Poisson one. Only the count is reported, never which rows or which
    /// values.
    #[error("{invalid} of {total} labels are not valid for a {family} model, which needs {rule}")]
    InvalidLabels {
        /// The family the labels were checked for, e.g. `"logistic"`
        /// ([`crate::Family::name`]).
        family: &'static str,
        /// What its labels must be ([`crate::Family::label_rule`]).
        rule: &'static str,
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
    /// A matrix that must be symmetric is not, beyond rounding.
    #[error("{what} is not symmetric: entries ({row}, {column}) and ({column}, {row}) differ")]
    Asymmetric {
        /// The matrix, e.g. `"hessian_sum"`.
        what: &'static str,
        /// Row of the first offending entry (upper triangle).
        row: usize,
        /// Column of the first offending entry.
        column: usize,
    },
    /// A linear system that must be symmetric positive definite is not, or
    /// is too close to singular to solve reliably: typically collinear or
    /// constant features without an L2 penalty.
    #[error(
        "the {size}x{size} matrix is not positive definite: Cholesky pivot {pivot} is not \
         positive (collinear or constant features; a positive l2 penalty fixes this)"
    )]
    NotPositiveDefinite {
        /// Index (0-based) of the first pivot that was not positive.
        pivot: usize,
        /// Size of the matrix.
        size: usize,
    },
    /// A preprocessing column specification, or a fitted preprocessor
    /// received from elsewhere, is invalid.
    #[error("column {column:?}: invalid {field}: {problem}")]
    InvalidColumnSpec {
        /// The column's configured name (not patient data).
        column: String,
        /// The offending field, e.g. `"categories"`.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A per-column aggregate (a column summary or histogram) that could not
    /// have come from real values.
    #[error("column {column:?}: invalid aggregate: {what} must be {allowed}")]
    InvalidColumnAggregate {
        /// The column's configured name.
        column: String,
        /// The field, e.g. `"min"`.
        what: &'static str,
        /// What it must be.
        allowed: &'static str,
    },
    /// A categorical column holds a value that is not one of its listed
    /// category codes. The value itself is not reported.
    #[error("column {column:?}, row {row}: the value is not one of the column's listed categories")]
    UnknownCategory {
        /// The column's configured name.
        column: String,
        /// Row index of the first offending value.
        row: usize,
    },
    /// A column imputed by its median needs the histogram pass, and its
    /// histogram is missing or was built for another value range.
    #[error(
        "column {column:?}: median imputation needs a histogram over the column's global range, \
         and none matching was given"
    )]
    MissingHistogram {
        /// The column's configured name.
        column: String,
    },
}
