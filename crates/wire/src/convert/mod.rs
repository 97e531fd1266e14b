//! Checked conversions between generated protobuf messages and domain types.
//!
//! Every `from_pb` function destructures the whole message, so a field added
//! to the proto cannot be silently ignored, and validates it against the task:
//! task id, dimensions, finite values and sizes. A message that fails is
//! refused whole.
//!
//! This module holds [`WireError`] and the checks every conversion shares;
//! the conversions themselves live in one file per idea: the task, the
//! instructions, and the reports a node sends (statistics, updates,
//! baselines, evaluations), all re-exported here.

use ndarray::Array1;

use crate::limits::MAX_NAME_BYTES;
use crate::message::Task;
use crate::pb;

mod instruction;
mod report;
mod task;

pub(crate) use instruction::kind_to_pb;
pub use instruction::{step_from_pb, step_to_pb, step_to_pb_for};
pub use report::{
    baseline_from_pb, baseline_to_pb, evaluation_from_pb, evaluation_to_pb, statistics_from_pb,
    statistics_to_pb, update_from_pb, update_to_pb,
};
pub(crate) use report::{counts_from_pb, counts_to_pb};
pub use task::{encode_task, task_from_pb, task_to_pb, validate_task};

/// Why a wire message was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum WireError {
    /// The message names another task.
    #[error("message is for task {got:?}, expected task {expected:?}")]
    TaskMismatch {
        /// This task's id.
        expected: String,
        /// The id the message carried.
        got: String,
    },
    /// A required field is absent.
    #[error("{field} is missing")]
    MissingField {
        /// Dotted path of the field.
        field: &'static str,
    },
    /// A vector has the wrong length.
    #[error("{field} has {got} values, expected {expected}")]
    Dimension {
        /// Dotted path of the field.
        field: &'static str,
        /// Length the task requires.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("{field}[{index}] is not a finite number")]
    NonFinite {
        /// Dotted path of the field.
        field: &'static str,
        /// Position of the first bad value.
        index: usize,
    },
    /// A size is over its bound.
    #[error("{field} is {got}, above the limit of {max}")]
    TooLarge {
        /// Dotted path of the field.
        field: &'static str,
        /// The bound.
        max: u64,
        /// What was received.
        got: u64,
    },
    /// A value is outside its allowed range.
    #[error("{field} is invalid: {reason}")]
    Invalid {
        /// Dotted path of the field.
        field: &'static str,
        /// What is allowed.
        reason: String,
    },
}

impl WireError {
    /// Dotted path of the field at fault, when one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            WireError::TaskMismatch { .. } => None,
            WireError::MissingField { field }
            | WireError::Dimension { field, .. }
            | WireError::NonFinite { field, .. }
            | WireError::TooLarge { field, .. }
            | WireError::Invalid { field, .. } => Some(field),
        }
    }
}

type Result<T> = std::result::Result<T, WireError>;

pub(crate) fn check_task_id(task: &Task, got: String) -> Result<()> {
    if got == task.task_id {
        Ok(())
    } else {
        Err(WireError::TaskMismatch {
            expected: task.task_id.clone(),
            got: truncate(got),
        })
    }
}

/// Keeps a peer-controlled string short enough to quote in an error.
fn truncate(mut text: String) -> String {
    if text.len() > 64 {
        let mut end = 64;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn check_name(field: &'static str, name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(WireError::Invalid {
            field,
            reason: "must not be empty".into(),
        });
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(WireError::TooLarge {
            field,
            max: MAX_NAME_BYTES as u64,
            got: name.len() as u64,
        });
    }
    Ok(())
}

/// Checks that `values` has `expected` entries, all finite.
///
/// # Errors
/// [`WireError::Dimension`] or [`WireError::NonFinite`] naming `field`.
pub(crate) fn check_finite(field: &'static str, values: &[f64], expected: usize) -> Result<()> {
    if values.len() != expected {
        return Err(WireError::Dimension {
            field,
            expected,
            got: values.len(),
        });
    }
    if let Some(index) = values.iter().position(|v| !v.is_finite()) {
        return Err(WireError::NonFinite { field, index });
    }
    Ok(())
}

/// `values` as a vector, checked as [`check_finite`] does.
pub(crate) fn finite_vector(
    field: &'static str,
    values: Vec<f64>,
    expected: usize,
) -> Result<Array1<f64>> {
    check_finite(field, &values, expected)?;
    Ok(Array1::from(values))
}

fn parameters_from_pb(
    field: &'static str,
    parameters: Option<pb::Parameters>,
    task: &Task,
) -> Result<Array1<f64>> {
    let pb::Parameters { values } = parameters.ok_or(WireError::MissingField { field })?;
    finite_vector(field, values, task.dimension())
}

fn parameters_to_pb(values: &Array1<f64>) -> pb::Parameters {
    pb::Parameters {
        values: values.to_vec(),
    }
}

#[cfg(test)]
mod tests;
