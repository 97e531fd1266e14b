//! Waiting for members: every step closes here, with the answers of every
//! member still in the task or, by the deadline, a quorum of them.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::config::TaskConfig;
use crate::refusals::{self, Awaited, Need};
use crate::run_error::RunError;
use crate::state::{Shared, State};

/// Waits until every member still in the task has answered the current
/// step, or until its deadline passes with at least a quorum of answers.
/// Returns the members that did not answer (empty when all did; a member
/// that refused is among them, one whose budget is spent is not).
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
    let awaited = Awaited {
        what,
        expected: members,
        need: Need::quorum(config.quorum),
    };
    let waited = wait_until(shared, config.step_timeout, &awaited, State::answered).await;
    let closed = match waited {
        Ok(()) => {
            let state = shared.lock();
            let answered = state.answered();
            Ok(members
                .iter()
                .filter(|m| !answered.contains(*m) && !state.departed.contains(*m))
                .cloned()
                .collect())
        }
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

/// Waits until every member `awaited` is for that is still in the task is
/// in `done`, or `timeout` passes. A member that declined a DP round ends
/// the wait at once; one that refused under its own policy is no longer
/// waited for, and ends the wait at once when those that remain are fewer
/// than `awaited` needs. Each refusal is announced once, when first
/// noticed.
pub(crate) async fn wait_until(
    shared: &Arc<Shared>,
    timeout: Duration,
    awaited: &Awaited<'_>,
    done: impl Fn(&State) -> BTreeSet<String>,
) -> Result<(), RunError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let members = shared.task.members.len();
    loop {
        // Register for the wake-up before looking, so a submission landing
        // between the look and the wait is not missed.
        let notified = shared.progress.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Read before the state is locked: the step channel has a lock of
        // its own, never taken while holding the state's.
        let current = shared.current_step();
        let (absent, notices, too_few) = {
            let mut state = shared.lock();
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
            let done = done(&state);
            let too_few = refusals::too_few(&state, awaited, &done, members, current);
            let notices = refusals::notice(&mut state, current, awaited.what, too_few.is_none());
            let absent: Vec<String> = awaited
                .expected
                .iter()
                .filter(|m| !done.contains(*m) && !state.has_left(m))
                .cloned()
                .collect();
            (absent, notices, too_few)
        };
        for line in &notices {
            shared.say(line);
        }
        if let Some(error) = too_few {
            return Err(error);
        }
        if absent.is_empty() {
            return Ok(());
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep_until(deadline) => {
                return Err(RunError::Timeout {
                    what: awaited.what.to_owned(),
                    seconds: timeout.as_secs(),
                    missing: absent.join(", "),
                });
            }
        }
    }
}
