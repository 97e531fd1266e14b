//! Members that refused the task or a step under their own policy and
//! left: who is still in the task, the line and warning each refusal gets
//! once (when a wait first notices it), and the error when the members
//! that remain are fewer than a step needs.
//!
//! A refusing member never answers again, so no wait expects it from then
//! on; it still counts as one of the task's members, so a step that must
//! reach the quorum (or, under secure aggregation, the threshold) without
//! it ends the run at once rather than at the deadline.

use std::collections::BTreeSet;

use medfed_wire::Refusal;

use crate::run_error::{RunError, Shortfall};
use crate::state::State;

#[cfg(test)]
mod tests;

/// How many members a wait needs, and what sets that need.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Need {
    /// The least number of members that must be able to answer.
    pub(crate) count: usize,
    /// What sets it, as the error names it.
    pub(crate) bound: &'static str,
}

impl Need {
    /// The task's quorum of `count` members.
    pub(crate) fn quorum(count: usize) -> Need {
        Need {
            count,
            bound: "the quorum",
        }
    }

    /// The secure-aggregation threshold of `count` members.
    pub(crate) fn threshold(count: usize) -> Need {
        Need {
            count,
            bound: "the secure-aggregation threshold",
        }
    }

    /// No need at all: a wait that only gives members a chance (the
    /// `Finished` notice).
    pub(crate) fn none() -> Need {
        Need {
            count: 0,
            bound: "nothing",
        }
    }
}

/// A wait in progress: what it is called, whom it waits for, and how
/// many of them it needs.
pub(crate) struct Awaited<'a> {
    /// What is awaited, as messages name it (`statistics`, `round 3`).
    pub(crate) what: &'a str,
    /// The members the wait is for.
    pub(crate) expected: &'a BTreeSet<String>,
    /// How many of them must be able to answer.
    pub(crate) need: Need,
}

impl State {
    /// Whether `member` has left the task: it refused the task or a step,
    /// or training stopped for it because its privacy budget is spent. No
    /// step waits for it.
    pub fn has_left(&self, member: &str) -> bool {
        self.refusals.contains_key(member) || self.departed.contains(member)
    }

    /// The latest refusal: of the highest step, the first member by name
    /// among equals.
    pub fn latest_refusal(&self) -> Option<(&String, &Refusal)> {
        self.refusals
            .iter()
            .max_by(|(a, x), (b, y)| x.step.cmp(&y.step).then_with(|| b.cmp(a)))
    }
}

/// What `refusal` refused, in words: `the task` for step 0, `step 3
/// (statistics)` for the step in progress (`current`, awaited as `what`),
/// else `step 3`.
pub(crate) fn refused_what(refusal: &Refusal, current: u64, what: &str) -> String {
    match refusal.step {
        0 => "the task".to_owned(),
        step if step == current => format!("step {step} ({what})"),
        step => format!("step {step}"),
    }
}

/// The error that ends the run when the members of `awaited` that can
/// still answer (those `done`, and those pending that have not refused)
/// are fewer than it needs, because members refused; `None` when enough
/// remain, or when nobody refused (a member whose budget is spent ends
/// training itself, and a deadline judges the others). `members` is the
/// task's member count; step `current` is in progress.
pub(crate) fn too_few(
    state: &State,
    awaited: &Awaited<'_>,
    done: &BTreeSet<String>,
    members: usize,
    current: u64,
) -> Option<RunError> {
    let (site, refusal) = state.latest_refusal()?;
    let refused = awaited
        .expected
        .iter()
        .filter(|m| !done.contains(*m) && state.refusals.contains_key(*m))
        .count();
    let remaining = awaited.expected.len().saturating_sub(refused);
    if remaining >= awaited.need.count {
        return None;
    }
    Some(RunError::Refused(Box::new(Shortfall {
        site: site.clone(),
        refused: state
            .noticed_refusals
            .get(site)
            .cloned()
            .unwrap_or_else(|| refused_what(refusal, current, awaited.what)),
        rule: refusal.rule.clone(),
        reason: refusal.reason.clone(),
        remaining,
        members,
        needed: awaited.need.count,
        bound: awaited.need.bound,
    })))
}

/// Notices every refusal not noticed yet, while `what` (step `current`)
/// is awaited: each is warned about in the logs and remembered, and the
/// lines to show the operator are returned, one per refusal. `going_on`
/// says whether the run goes on without them.
pub(crate) fn notice(state: &mut State, current: u64, what: &str, going_on: bool) -> Vec<String> {
    let State {
        refusals,
        noticed_refusals,
        ..
    } = state;
    let mut lines = Vec::new();
    for (site, refusal) in refusals.iter() {
        if noticed_refusals.contains_key(site) {
            continue;
        }
        let refused = refused_what(refusal, current, what);
        tracing::warn!(
            site = %site,
            step = refusal.step,
            refused = %refused,
            rule = %refusal.rule,
            reason = %refusal.reason,
            going_on,
            "a member refused under its own policy and left the task"
        );
        lines.push(notice_line(site, &refused, refusal, going_on));
        noticed_refusals.insert(site.clone(), refused);
    }
    lines
}

/// The operator's line about `site`'s refusal of `refused`.
fn notice_line(site: &str, refused: &str, refusal: &Refusal, going_on: bool) -> String {
    let then = if going_on {
        "going on without it"
    } else {
        "too few members remain to go on without it"
    };
    format!(
        "coordinator: {site} refused {refused} by its rule `{}`: {}; {then}",
        refusal.rule, refusal.reason
    )
}
