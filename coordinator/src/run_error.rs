//! Why a run stops before its end: the one error every phase returns.

/// Why a run stopped before its end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Too few members answered in time.
    #[error(
        "{what}: no answer within {seconds} s from {missing}, and fewer than the quorum answered"
    )]
    Timeout {
        /// What was awaited.
        what: String,
        /// The timeout.
        seconds: u64,
        /// Members that did not answer, comma-separated.
        missing: String,
    },
    /// The members' statistics could not be combined.
    #[error("cannot standardise the features: {0}")]
    Statistics(String),
    /// A round produced no update.
    #[error("round {0} received no update")]
    EmptyRound(u32),
    /// The exact-fit solver could not use the members' terms.
    #[error("the solver refused the round's terms: {0}")]
    Solver(String),
    /// A securely aggregated round could not produce a correct sum.
    #[error("{step}: secure aggregation failed: {reason}")]
    SecureAggregation {
        /// The step: a round, or a pass outside training.
        step: String,
        /// Why.
        reason: String,
    },
    /// The task state could not be saved.
    #[error("cannot save the task state: {0}")]
    Checkpoint(String),
    /// Differential-privacy noise could not be added.
    #[error("round {round}: cannot add the differential-privacy noise: {reason}")]
    Privacy {
        /// The round.
        round: u32,
        /// Why.
        reason: String,
    },
    /// A member of a DP task declined and left: its own privacy budget
    /// cannot pay for the next round, or it has no budget set at all (the
    /// refusal's reason says which). Before training this ends the run; a
    /// member that leaves during training ends training with the last
    /// model.
    #[error("{site} left: {refusal}")]
    BudgetSpent {
        /// The member.
        site: String,
        /// What it reported.
        refusal: medfed_wire::BudgetRefusal,
    },
    /// A member refused the task or a step under its own policy (or for a
    /// data reason) and left, and the members that remain are fewer than
    /// the step needs: the quorum, or under secure aggregation the
    /// threshold.
    #[error("{0}")]
    Refused(Box<Shortfall>),
    /// The exchange log could not be flushed to disk.
    #[error("cannot flush the exchange log: {0}")]
    Log(String),
    /// A closed step's answers could not be taken back: its mailbox still
    /// holds them (a step is closed before its answers are used).
    #[error("{0}: the step's answers are still held by its mailbox")]
    StepOpen(String),
}

/// Who refused, and how far short of what a step needs the members that
/// remain are (the detail of [`RunError::Refused`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{site} refused {refused} by its rule `{rule}`: {reason}; {remaining} of {members} members \
     remain, fewer than {bound} of {needed}"
)]
pub struct Shortfall {
    /// The member that refused (the latest, when several did).
    pub site: String,
    /// What it refused: `the task`, or the step (`step 3 (statistics)`).
    pub refused: String,
    /// The rule that refused it (`min_rows`, `columns`, ...).
    pub rule: String,
    /// Why, in the member's words.
    pub reason: String,
    /// Members that can still answer.
    pub remaining: usize,
    /// Members of the task.
    pub members: usize,
    /// How many the step needs.
    pub needed: usize,
    /// What sets that need: `the quorum` or `the secure-aggregation
    /// threshold`.
    pub bound: &'static str,
}
