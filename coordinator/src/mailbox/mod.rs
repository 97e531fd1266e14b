//! The one mailbox for the current step's answers. Every kind a member
//! sends lands here through [`Mailbox::accept`], which checks what every
//! kind shares (the step, the round, one answer per member) and hands the
//! answer to the step's [`Inbox`]: a clear inbox that forms the sum as
//! answers arrive ([`clear`]), or the secure-aggregation server stage that
//! adds masked inputs ([`secure`]).
//!
//! The phase that opened a step keeps a typed handle on its inbox; the
//! mailbox holds the same inbox as a trait object, so the phase takes its
//! answers back without recovering their type.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use medfed_model::preprocess::HistogramPlan;
use medfed_wire::{PrivacySpend, Submission};

use crate::metrics::Metrics;
use crate::run_error::RunError;

pub mod answers;
pub mod clear;
pub mod secure;

/// Why a submission was refused. Turned into a gRPC status in one place
/// (`service`).
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The submission answers a step other than the current one.
    #[error("{kind} answers step {got}, but the current step is {current} ({expected})")]
    WrongStep {
        /// What was submitted.
        kind: &'static str,
        /// Step it named.
        got: u64,
        /// Current step.
        current: u64,
        /// What the current step expects.
        expected: &'static str,
    },
    /// The member already answered this step.
    #[error("{member} already sent its {kind} for step {step}")]
    Duplicate {
        /// Who.
        member: String,
        /// What.
        kind: &'static str,
        /// Which step.
        step: u64,
    },
    /// The submission's content does not fit (round, dimension...).
    #[error("{0}")]
    Invalid(String),
}

/// What an inbox may read and update in the coordinator's state while it
/// takes an answer.
pub struct Context<'a> {
    /// Training rows each member declared with its statistics.
    pub declared_rows: &'a mut BTreeMap<String, u64>,
    /// DP tasks: the last spend each member reported.
    pub privacy_spent: &'a mut BTreeMap<String, PrivacySpend>,
    /// What the metrics endpoint shows.
    pub metrics: &'a Metrics,
    /// Updates longer than this (Euclidean norm) are refused.
    pub max_update_norm: Option<f64>,
    /// Who the step waits for.
    pub expected: &'a BTreeSet<String>,
}

/// Where one step's answers go: what the step collects and how it folds
/// each answer in.
pub trait Inbox: Send {
    /// What the step collects, as refusals name it ("model updates").
    fn collects(&self) -> &'static str;

    /// Whether `submission` is of the kind this step collects.
    fn takes(&self, submission: &Submission) -> bool;

    /// Folds `member`'s answer in (the mailbox has checked its step, round
    /// and that it is the member's first).
    ///
    /// # Errors
    /// An answer the step's sum or checks refuse; nothing is changed then.
    fn accept(
        &mut self,
        member: &str,
        submission: Submission,
        context: Context<'_>,
    ) -> Result<(), SubmitError>;

    /// The plan histograms must follow, when this step collects them.
    fn histogram_plan(&self) -> Option<HistogramPlan> {
        None
    }

    /// Models each evaluation report must cover (0 when this step does not
    /// collect evaluations).
    fn evaluation_models(&self) -> usize {
        0
    }
}

/// A typed handle on an inbox, shared with the mailbox while its step is
/// open.
pub type Handle<I> = Arc<Mutex<I>>;

/// Locks an inbox. A poisoned lock means a handler panicked mid-update;
/// every inbox changes only after its checks pass, so carry on.
pub fn lock<I: ?Sized>(inbox: &Mutex<I>) -> MutexGuard<'_, I> {
    inbox.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes an inbox back from its handle once its step is closed.
///
/// # Errors
/// The step is still open (the mailbox holds the inbox too).
pub fn take<I>(handle: Handle<I>, what: &str) -> Result<I, RunError> {
    Arc::try_unwrap(handle)
        .map(|inbox| inbox.into_inner().unwrap_or_else(|p| p.into_inner()))
        .map_err(|_| RunError::StepOpen(what.to_owned()))
}

/// The current step's mailbox.
pub struct Mailbox {
    /// Step number.
    pub step: u64,
    /// The round answers must name, for the kinds that name one (training
    /// updates, Newton terms, secure-aggregation messages).
    pub round: Option<u32>,
    /// Who the step waits for.
    pub expected: BTreeSet<String>,
    /// Who has answered.
    pub received: BTreeSet<String>,
    inbox: Arc<Mutex<dyn Inbox>>,
}

impl Mailbox {
    /// A mailbox for `step` waiting for `expected`, folding answers into
    /// `inbox`; answers must name `round` when their kind names one.
    pub fn new(
        step: u64,
        round: Option<u32>,
        expected: BTreeSet<String>,
        inbox: Arc<Mutex<dyn Inbox>>,
    ) -> Mailbox {
        Mailbox {
            step,
            round,
            expected,
            received: BTreeSet::new(),
            inbox,
        }
    }

    /// What the step collects.
    pub fn collects(&self) -> &'static str {
        lock(&self.inbox).collects()
    }

    /// The plan histograms must follow, when this step collects them.
    pub fn histogram_plan(&self) -> Option<HistogramPlan> {
        lock(&self.inbox).histogram_plan()
    }

    /// Models each evaluation report must cover (0 when not evaluating).
    pub fn evaluation_models(&self) -> usize {
        lock(&self.inbox).evaluation_models()
    }

    /// Checks what every kind shares and hands `submission` to the inbox.
    ///
    /// # Errors
    /// Another step or kind, another round, a second answer from `member`,
    /// or what the inbox refuses.
    pub fn accept(
        &mut self,
        member: &str,
        submission: Submission,
        context: Context<'_>,
    ) -> Result<(), SubmitError> {
        let kind = label(&submission);
        let mut inbox = lock(&self.inbox);
        if submission.step() != self.step || !inbox.takes(&submission) {
            return Err(wrong_step(
                kind,
                submission.step(),
                self.step,
                inbox.collects(),
            ));
        }
        if let (Some(round), Some(got)) = (self.round, named_round(&submission))
            && got != round
        {
            let verb = if kind == "Newton terms" { "are" } else { "is" };
            return Err(SubmitError::Invalid(format!(
                "{kind} {verb} for round {got}, the current round is {round}"
            )));
        }
        if self.received.contains(member) {
            return Err(duplicate(member, kind, self.step));
        }
        inbox.accept(member, submission, context)?;
        self.received.insert(member.to_owned());
        Ok(())
    }
}

/// How refusals name a submission.
pub fn label(submission: &Submission) -> &'static str {
    match submission {
        Submission::Statistics(_) => "statistics",
        Submission::Histograms(_) => "histograms",
        Submission::Update(_) => "update",
        Submission::Newton(_) => "Newton terms",
        Submission::Normal(_) => "normal-equation terms",
        Submission::Baseline(_) => "baseline",
        Submission::Evaluation(_) => "evaluation",
        Submission::SecAgg(s) => s.message.kind(),
        Submission::BudgetRefusal(_) => "budget refusal",
        Submission::Refusal(_) => "refusal",
    }
}

/// The round a submission names, for the kinds that are checked against
/// the step's round.
fn named_round(submission: &Submission) -> Option<u32> {
    match submission {
        Submission::Update(u) => Some(u.round),
        Submission::Newton(r) => Some(r.round),
        Submission::SecAgg(s) => Some(s.round),
        _ => None,
    }
}

/// A refusal of a second answer from `member`.
pub fn duplicate(member: &str, kind: &'static str, step: u64) -> SubmitError {
    SubmitError::Duplicate {
        member: member.to_owned(),
        kind,
        step,
    }
}

/// A refusal of an answer to another step (or of another kind).
pub fn wrong_step(
    kind: &'static str,
    got: u64,
    current: u64,
    expected: &'static str,
) -> SubmitError {
    SubmitError::WrongStep {
        kind,
        got,
        current,
        expected,
    }
}
