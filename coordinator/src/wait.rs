//! Waiting for members: every step closes here, with all answers or, by the
//! deadline, a quorum of them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::config::TaskConfig;
use crate::run_error::RunError;
use crate::state::{Shared, State};

/// Waits until every member has answered the current step, or until its
/// deadline passes with at least a quorum of answers. Returns the members
/// that did not answer (empty when all did).
pub(crate) async fn wait_for_answers(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    what: &str,
) -> Result<Vec<String>, RunError> {
    let members: BTreeSet<String> = shared.task.members.iter().cloned().collect();
    wait_for_members(shared, config, what, &members).await
}

/// [`wait_for_answers`] for a step that only `members` are asked to
/// answer. Every step closes here, so this is also where the exchange log
/// is flushed under the once-per-step policy, before the answers are used.
pub(crate) async fn wait_for_members(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    what: &str,
    members: &BTreeSet<String>,
) -> Result<Vec<String>, RunError> {
    let waited = wait_until(shared, config.step_timeout, what, |s| {
        members.difference(&s.answered()).cloned().collect()
    })
    .await;
    let closed = match waited {
        Ok(()) => Ok(Vec::new()),
        // Only a deadline closes a step with a quorum; a member that
        // declined (its privacy budget) is reported at once.
        Err(error @ RunError::Timeout { .. }) => {
            let state = shared.lock();
            let answered = state.answered();
            if answered.len() >= config.quorum {
                let missing: Vec<String> = members.difference(&answered).cloned().collect();
                tracing::warn!(
                    step = what,
                    answered = answered.len(),
                    quorum = config.quorum,
                    missing = %missing.join(", "),
                    "deadline passed; closing the step with a quorum"
                );
                Ok(missing)
            } else {
                Err(error)
            }
        }
        Err(error) => Err(error),
    }?;
    shared
        .step_closed()
        .map_err(|error| RunError::Log(error.to_string()))?;
    Ok(closed)
}

/// Waits until `missing` returns nobody, or `timeout` passes.
pub(crate) async fn wait_until(
    shared: &Arc<Shared>,
    timeout: Duration,
    what: &str,
    missing: impl Fn(&State) -> Vec<String>,
) -> Result<(), RunError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // Register for the wake-up before looking, so a submission landing
        // between the look and the wait is not missed.
        let notified = shared.progress.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let absent = {
            let state = shared.lock();
            // A member that declined (budget spent, or none set) will not
            // answer again: stop waiting now rather than at the deadline.
            let refused = state
                .budget_refusals
                .iter()
                .find(|(site, _)| !state.departed.contains(*site));
            if let Some((site, refusal)) = refused {
                return Err(RunError::BudgetSpent {
                    site: site.clone(),
                    refusal: *refusal,
                });
            }
            let mut absent = missing(&state);
            absent.retain(|m| !state.departed.contains(m));
            absent
        };
        if absent.is_empty() {
            return Ok(());
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => {
                return Err(RunError::Timeout {
                    what: what.to_owned(),
                    seconds: timeout.as_secs(),
                    missing: absent.join(", "),
                });
            }
        }
    }
}
