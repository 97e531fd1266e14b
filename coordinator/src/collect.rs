//! One generic collect for every step that gathers answers: publish the
//! step with its mailbox, wait for the members (deadline and quorum), close
//! the step and take the sum back. In clear the inbox forms the sum as
//! answers arrive; under secure aggregation the five stages of
//! [`secure_sum`] form it under masks. Either way the kind's own
//! layout reads it ([`Summed`]), so the two paths differ only in how the
//! sum is formed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use medfed_wire::{Instruction, SecureAggregation, Step, Summed};

use crate::config::TaskConfig;
use crate::mailbox::clear::{Answer, ClearInbox};
use crate::mailbox::{self, Mailbox};
use crate::run_error::RunError;
use crate::secure_sum::{secure_sum, step_label};
use crate::state::Shared;
use crate::step::StepCounter;
use crate::wait::wait_for_answers;

/// What a closed step produced.
pub struct Collected<S, K> {
    /// The sum (or, for kinds kept by member only, nothing).
    pub sum: S,
    /// What was kept of each member's answer, by member (always empty
    /// under secure aggregation: no member's own values are seen).
    pub kept: BTreeMap<String, K>,
    /// Members whose answer is in the sum.
    pub contributors: BTreeSet<String>,
    /// Members of the task that are not.
    pub missing: Vec<String>,
}

/// Runs one clear step of kind `K`: publishes `instruction` with an inbox
/// starting from `acc`, waits for the members and returns the sum.
///
/// # Errors
/// A step that closes below the quorum, or a sum `K` cannot finish.
pub async fn collect_clear<K: Answer>(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    what: &str,
    instruction: Instruction,
    acc: K::Acc,
) -> Result<Collected<K::Sum, K::Kept>, RunError> {
    let round = instruction.round();
    let checked_round = matches!(
        instruction,
        Instruction::Train { .. } | Instruction::Newton { .. }
    )
    .then_some(round);
    let inbox: mailbox::Handle<ClearInbox<K>> = Arc::new(Mutex::new(ClearInbox::new(acc)));
    let s = steps.next_step();
    let expected: BTreeSet<String> = shared.members_in_task().into_iter().collect();
    shared.publish(
        Step {
            step: s,
            instruction,
        },
        Some(Mailbox::new(s, checked_round, expected, inbox.clone())),
    );
    let waited = wait_for_answers(shared, config, what).await;
    // Closed on failure too: a step that ends below its quorum takes no
    // late answers (nor their declared rows or spends).
    let contributors = shared.close();
    let missing = waited?;
    let (acc, kept) = mailbox::take(inbox, what)?.into_parts();
    Ok(Collected {
        sum: K::finish(acc, round)?,
        kept,
        contributors,
        missing,
    })
}

/// Runs one securely aggregated step for stage-0 `work` and reads the
/// survivors' sum with `K`'s layout for `shape`.
///
/// # Errors
/// As [`secure_sum`], and a sum the layout refuses (a wrong sum is an
/// error, never a model).
pub async fn collect_secure<K: Summed, P>(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    work: Instruction,
    shape: &K::Shape,
) -> Result<Collected<K::Sum, P>, RunError> {
    let label = step_label(&work);
    let sum = secure_sum(shared, config, settings, steps, work).await?;
    let read = K::read(shape, &sum.sum).map_err(|e| RunError::SecureAggregation {
        step: label,
        reason: format!("the unmasked sum is refused: {e}: the sum is wrong"),
    })?;
    Ok(Collected {
        sum: read,
        kept: BTreeMap::new(),
        contributors: sum.survivors,
        missing: sum.missing,
    })
}

/// Runs one step of kind `K`, securely aggregated when the task says so
/// (read with `shape`), else in clear from `acc`.
///
/// # Errors
/// As [`collect_clear`] and [`collect_secure`].
pub async fn collect<K>(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    what: &str,
    work: Instruction,
    acc: K::Acc,
    shape: &<K as Summed>::Shape,
) -> Result<Collected<<K as Answer>::Sum, K::Kept>, RunError>
where
    K: Answer + Summed<Sum = <K as Answer>::Sum>,
{
    match shared.task.secure_aggregation {
        Some(settings) => {
            collect_secure::<K, K::Kept>(shared, config, settings, steps, work, shape).await
        }
        None => collect_clear::<K>(shared, config, steps, what, work, acc).await,
    }
}
