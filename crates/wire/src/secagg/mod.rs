//! Checked conversions of the secure-aggregation instructions and
//! submissions. The protocol's own messages travel as medfed-secure bytes
//! inside the protobuf ones; they are parsed here, once, with the sizes the
//! task allows, so the coordinator and nodes only see typed messages.
//!
//! This module holds the checks the conversions share; which vector a step
//! masks ([`MaskedKind`]), the validation of a task's settings, and the
//! conversions of instructions and of submissions live in their own files,
//! all re-exported here.

use medfed_secure::secagg::SecAggError;

use crate::WireError;
use crate::message::Task;

mod instruction;
mod masked;
mod settings;
mod submission;

pub(crate) use instruction::{instruction_from_pb, instruction_to_pb};
pub use masked::MaskedKind;
pub use settings::validate_secure_aggregation;
pub use submission::{submission_from_pb, submission_to_pb};

type Result<T> = std::result::Result<T, WireError>;

fn protocol(field: &'static str, error: SecAggError) -> WireError {
    WireError::Invalid {
        field,
        reason: error.to_string(),
    }
}

/// A list of member ids no longer than the task's roster: the protocol
/// refuses repeats itself, so a longer list can only be a hostile one.
fn check_ids(field: &'static str, len: usize, task: &Task) -> Result<()> {
    if len > task.members.len() {
        return Err(WireError::TooLarge {
            field,
            max: task.members.len() as u64,
            got: len as u64,
        });
    }
    Ok(())
}

/// A training round in range, or 0 for the steps outside training (the
/// preprocessing passes and the final evaluation).
fn check_round(field: &'static str, round: u32, task: &Task) -> Result<()> {
    if round > task.rounds {
        return Err(WireError::Invalid {
            field,
            reason: format!("round {round} is outside 0..={}", task.rounds),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
