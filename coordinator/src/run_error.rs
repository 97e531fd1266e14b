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
    /// The exchange log could not be flushed to disk.
    #[error("cannot flush the exchange log: {0}")]
    Log(String),
    /// A closed step's answers could not be taken back: its mailbox still
    /// holds them (a step is closed before its answers are used).
    #[error("{0}: the step's answers are still held by its mailbox")]
    StepOpen(String),
}
