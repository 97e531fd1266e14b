//! What a failed FedAvg/FedProx round means: under secure aggregation with
//! `failed_round = "skip"`, a round whose sum could not be formed (or was
//! wrong) is skipped with the model unchanged; a member whose privacy
//! budget is spent ends training with the last completed round's model
//! (or the run, before any round); anything else ends the run.

use std::sync::Arc;

use crate::algorithm::Control;
use crate::config::{FailedRound, TaskConfig};
use crate::run_error::RunError;
use crate::state::Shared;

/// What `round`'s failure with `error` means for training.
///
/// # Errors
/// `error` itself, when it ends the run.
pub fn failed_round(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    round: u32,
    error: RunError,
) -> Result<Control, RunError> {
    match error {
        error @ (RunError::SecureAggregation { .. } | RunError::Timeout { .. })
            if shared.task.secure_aggregation.is_some()
                && config.failed_round == FailedRound::Skip =>
        {
            tracing::warn!(round, %error, "secure round failed; skipping it");
            Ok(Control::Skip(format!(
                "failed and skipped ({error}); the model is unchanged"
            )))
        }
        // No round completed (rounds are recorded in order, skipped ones
        // too): there is no model to stand, and the untrained start must
        // not be published as one.
        error @ RunError::BudgetSpent { .. } if round == 1 => Err(error),
        RunError::BudgetSpent { site, refusal } => {
            // The model of the last completed round stands; the member has
            // left, so no later step waits for it.
            shared.depart(&site);
            tracing::warn!(%site, round, "training stopped: a member's privacy budget is spent");
            Ok(Control::End(format!(
                "stopped before round {round}: {site} declined it because {refusal}"
            )))
        }
        error => Err(error),
    }
}
