//! The error type of the differential-privacy module.

use super::budget::{Budget, Spent};

/// What went wrong while clipping, noising or accounting.
///
/// Every variant carries what a person needs to fix the problem: the field,
/// what was expected and what was found, or the spend and the budget.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpError {
    /// A parameter (budget, clip norm, noise multiplier, ...) is outside its
    /// valid range.
    #[error("{field}: expected {expected}, got {got}")]
    InvalidParameter {
        /// Name of the offending field, e.g. `budget.delta`.
        field: &'static str,
        /// The valid range, in words.
        expected: &'static str,
        /// The value that was given.
        got: f64,
    },

    /// A coordinate of an update is NaN or infinite, so its norm and its
    /// clipped value are meaningless.
    #[error("update coordinate {index} is {value}: expected a finite number")]
    NonFiniteCoordinate {
        /// Zero-based index of the coordinate.
        index: usize,
        /// The non-finite value.
        value: f64,
    },

    /// Charging the requested round would take the site past its budget.
    /// Nothing was charged.
    #[error(
        "privacy budget exceeded: spent {spent}; one more round at noise multiplier \
         {requested_noise_multiplier} would bring ε to {requested_epsilon:.4}, \
         past the budget {budget}"
    )]
    BudgetExceeded {
        /// What the site has spent so far (unchanged by the refusal).
        spent: Spent,
        /// The noise multiplier of the refused round.
        requested_noise_multiplier: f64,
        /// The ε the site would have spent had the round been charged.
        requested_epsilon: f64,
        /// The site's budget.
        budget: Budget,
    },

    /// The caller's durable record of a spend failed, so the round was not
    /// charged and its update must not be released.
    #[error("recording the privacy spend failed; round {round} was not charged")]
    RecordFailed {
        /// The one-based round number that would have been charged.
        round: u64,
        /// Why recording failed.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A persisted accountant state holds an invalid spend record.
    #[error("accountant state: noise_multipliers[{index}] is {got}: expected a finite number > 0")]
    InvalidSpendRecord {
        /// Zero-based index of the record (round number minus one).
        index: usize,
        /// The value found.
        got: f64,
    },

    /// The operating system's random number source failed.
    #[error("operating-system randomness is unavailable: {reason}")]
    EntropyUnavailable {
        /// The error reported by the OS source.
        reason: String,
    },

    /// A number of rounds is above what the accountant accepts.
    #[error("{field}: {got} rounds is more than the limit of {limit}")]
    TooManyRounds {
        /// Name of the offending field.
        field: &'static str,
        /// The number of rounds given.
        got: u64,
        /// The largest number accepted.
        limit: u64,
    },

    /// No noise multiplier up to the search limit fits the budget over the
    /// requested number of rounds.
    #[error(
        "no noise multiplier up to {max_noise_multiplier} fits the budget {budget} \
         over {rounds} rounds"
    )]
    NoFeasibleNoise {
        /// The budget to fit.
        budget: Budget,
        /// The number of rounds.
        rounds: u64,
        /// The largest noise multiplier tried.
        max_noise_multiplier: f64,
    },

    /// A round was charged at one noise multiplier but the update is being
    /// noised under a configuration with another.
    #[error(
        "round {round} was charged at noise multiplier {charged}, but the \
         configuration in force uses {configured}"
    )]
    ChargeMismatch {
        /// The one-based round number of the charge.
        round: u64,
        /// The noise multiplier the accountant charged.
        charged: f64,
        /// The noise multiplier of the configuration.
        configured: f64,
    },

    /// The operation does not apply to the configured noise placement, e.g.
    /// adding central noise when each site noises its own update.
    #[error("{operation} does not apply to noise placement \"{placement}\"")]
    WrongPlacement {
        /// What was attempted.
        operation: &'static str,
        /// The placement in force.
        placement: &'static str,
    },
}
