//! Validation of a task's secure-aggregation settings.

use medfed_secure::secagg::FixedPoint;

use super::Result;
use crate::WireError;
use crate::message::{SecureAggregation, Task};

/// Checks a task's secure-aggregation settings against its member list.
///
/// # Errors
/// A threshold outside (n/2, n] for n members, fewer than 2 members, or
/// fixed-point bits outside 1 to [`FixedPoint::MAX_FRAC_BITS`].
pub fn validate_secure_aggregation(settings: &SecureAggregation, members: usize) -> Result<()> {
    let max_members = medfed_secure::secagg::MAX_MEMBERS as usize;
    if !(2..=max_members).contains(&members) {
        return Err(WireError::Invalid {
            field: "task.members",
            reason: format!(
                "secure aggregation needs 2 to {max_members} members, the task has {members}"
            ),
        });
    }
    let t = settings.threshold as usize;
    if t * 2 <= members || t > members {
        return Err(WireError::Invalid {
            field: "task.secure_aggregation.threshold",
            reason: format!(
                "{t} is out of range for {members} members: expected more than half and at \
                 most all ({} to {members})",
                members / 2 + 1
            ),
        });
    }
    if !(1..=FixedPoint::MAX_FRAC_BITS).contains(&settings.fixed_point_bits) {
        return Err(WireError::Invalid {
            field: "task.secure_aggregation.fixed_point_bits",
            reason: format!(
                "{} is out of range 1 to {}",
                settings.fixed_point_bits,
                FixedPoint::MAX_FRAC_BITS
            ),
        });
    }
    Ok(())
}

/// The settings of a task that uses secure aggregation; `field` names the
/// message that needs them when it does not.
pub(super) fn secagg_settings(task: &Task, field: &'static str) -> Result<SecureAggregation> {
    task.secure_aggregation.ok_or(WireError::Invalid {
        field,
        reason: "this task does not use secure aggregation".into(),
    })
}
