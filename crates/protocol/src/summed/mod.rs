//! What a step sums, as flat vectors: every kind of answer whose values the
//! coordinator adds over the members defines here, beside its type, the
//! layout of those values. In clear the coordinator adds the members'
//! vectors as they arrive; under secure aggregation each member masks its
//! vector and the coordinator learns only the sum. Either way the sum is
//! read back through the same [`Summed::read`], with the same checks.
//!
//! # Layout
//! - [`update`]: a FedAvg/FedProx round's update, row-weighted or (DP)
//!   equally weighted, with its held-out counts when asked.
//! - [`terms`]: Newton terms and normal-equation terms (symmetric matrices
//!   as their upper triangle, row by row).
//! - [`counts`]: held-out evaluation counts, a round's and the final
//!   evaluation's (with calibration counts).
//! - [`statistics`]: the preprocessing's two passes under secure
//!   aggregation (laid out by `medfed_model::preprocess`) and the clear
//!   median histograms.

use std::fmt;

use ndarray::Array2;

pub mod counts;
pub mod statistics;
pub mod terms;
pub mod update;

pub use counts::{CountsShape, FinalEvaluationShape, PooledEvaluation};
pub use statistics::{ColumnMoments, MomentsShape};
pub use terms::NewtonShape;
pub use update::{PooledUpdate, UpdateShape, Weighting};

/// A value whose sum over the members is what a step needs, laid out as a
/// flat vector of `f64`: summing the members' vectors entry by entry and
/// reading the result gives the pooled value.
pub trait Summed {
    /// What fixes the layout (dimension, bins, columns, ...), known to both
    /// sides from the task and the step.
    type Shape: ?Sized;
    /// What the summed vector is read back as.
    type Sum;

    /// Length of the vector for `shape`.
    fn len(shape: &Self::Shape) -> usize;

    /// Appends this value's vector for `shape` to `out`.
    ///
    /// # Errors
    /// The value does not fit `shape` (wrong sizes, parts missing or not
    /// asked for, values the layout cannot hold).
    fn write(&self, shape: &Self::Shape, out: &mut Vec<f64>) -> Result<(), LayoutError>;

    /// This value's vector for `shape`, on its own.
    ///
    /// # Errors
    /// As [`Summed::write`].
    fn to_vector(&self, shape: &Self::Shape) -> Result<Vec<f64>, LayoutError> {
        let mut out = Vec::with_capacity(Self::len(shape));
        self.write(shape, &mut out)?;
        Ok(out)
    }

    /// Reads the sum of the members' vectors for `shape`.
    ///
    /// # Errors
    /// A wrong length, non-finite values, counts that are not whole numbers
    /// at least 0, or sums that cannot come from real rows.
    fn read(shape: &Self::Shape, values: &[f64]) -> Result<Self::Sum, LayoutError>;
}

/// Why a value does not fit its layout, or a sum cannot be read.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum LayoutError {
    /// The vector (or a part of the value) has the wrong length.
    Length {
        /// Which layout, or which part of it.
        layout: &'static str,
        /// Length the shape gives.
        expected: usize,
        /// Length found.
        got: usize,
    },
    /// A value is NaN or infinite.
    NonFinite {
        /// Which layout.
        layout: &'static str,
        /// Position of the first bad value.
        index: usize,
    },
    /// The values cannot be what the layout holds.
    Invalid {
        /// Which layout.
        layout: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Length {
                layout,
                expected,
                got,
            } => write!(f, "{layout} has {got} values, expected {expected}"),
            LayoutError::NonFinite { layout, index } => {
                write!(f, "{layout}[{index}] is not a finite number")
            }
            LayoutError::Invalid { layout, reason } => write!(f, "{layout} is invalid: {reason}"),
        }
    }
}

impl std::error::Error for LayoutError {}

impl LayoutError {
    /// An [`LayoutError::Invalid`] for `layout`, with the reason `e` gives.
    pub(crate) fn invalid(layout: &'static str, e: impl fmt::Display) -> LayoutError {
        LayoutError::Invalid {
            layout,
            reason: e.to_string(),
        }
    }
}

/// Checks that `values` has `expected` entries, all finite.
pub(crate) fn check_finite(
    layout: &'static str,
    values: &[f64],
    expected: usize,
) -> Result<(), LayoutError> {
    if values.len() != expected {
        return Err(LayoutError::Length {
            layout,
            expected,
            got: values.len(),
        });
    }
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(LayoutError::NonFinite { layout, index }),
        None => Ok(()),
    }
}

/// Checks that a part of a value has the length its shape gives.
pub(crate) fn check_len(
    layout: &'static str,
    expected: usize,
    got: usize,
) -> Result<(), LayoutError> {
    if expected == got {
        Ok(())
    } else {
        Err(LayoutError::Length {
            layout,
            expected,
            got,
        })
    }
}

/// A summed count: a finite whole number >= 0 (fixed-point rounding leaves
/// sums of whole numbers exact).
pub(crate) fn whole(v: f64, layout: &'static str) -> Result<u64, LayoutError> {
    if v.is_finite() && v >= 0.0 && v < u64::MAX as f64 && v.fract() == 0.0 {
        Ok(v as u64)
    } else {
        Err(LayoutError::Invalid {
            layout,
            reason: format!("the summed count {v} is not a whole number >= 0"),
        })
    }
}

/// Appends the upper triangle of a square matrix, row by row.
pub fn write_upper(matrix: &Array2<f64>, out: &mut Vec<f64>) {
    let n = matrix.nrows();
    for i in 0..n {
        for j in i..n {
            out.push(matrix[[i, j]]);
        }
    }
}

/// The symmetric `n x n` matrix whose upper triangle, row by row, is
/// `values` (which must be `n(n+1)/2` long).
pub fn symmetric(values: &[f64], n: usize) -> Array2<f64> {
    let mut matrix = Array2::zeros((n, n));
    let mut next = values.iter();
    for i in 0..n {
        for j in i..n {
            let value = next.next().copied().unwrap_or_default();
            matrix[[i, j]] = value;
            matrix[[j, i]] = value;
        }
    }
    matrix
}

/// Entries of the upper triangle of an `n x n` matrix.
pub fn triangle_len(n: usize) -> usize {
    n * (n + 1) / 2
}

/// Adds `values` to the running sum `sum` entry by entry (the clear path's
/// way of forming a sum).
///
/// # Errors
/// [`LayoutError::Length`] if the two differ in length; the sum is
/// unchanged then.
pub fn add_into(sum: &mut [f64], values: &[f64]) -> Result<(), LayoutError> {
    check_len("summed vector", sum.len(), values.len())?;
    for (s, v) in sum.iter_mut().zip(values) {
        *s += v;
    }
    Ok(())
}
