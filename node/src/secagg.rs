//! A node's side of secure aggregation: the five stages of a round, with the
//! medfed-secure client state carried from one instruction to the next.
//!
//! What stage 0 asks for (a FedAvg/FedProx update, Newton terms or the
//! normal equations) is computed exactly as for a clear step, then kept in
//! memory only; what leaves is the masked vector of
//! [`medfed_wire::secagg::MaskedKind`], in which every value, the row count
//! included, is hidden until it is summed with the others.
//!
//! The roster's signing keys are taken from the members' certificates, each
//! checked here against the consortium CA, never from the coordinator's
//! word: a coordinator that could substitute a key of its own for a member's
//! could impersonate that member in the key exchange, receive the shares
//! meant for it, and unmask another member's input. The roster is held to
//! the hospital's own rules too: only the members of `[policy] members`,
//! one certificate per name for the whole task (pinned or not), and a
//! threshold of at least `[policy] min_threshold` of the roster.
//!
//! No vector is masked for two sums: every one masked is recorded beside
//! the vault (`contributions`), and a stage 0 asking for one of them again
//! is refused before any key leaves.
//!
//! # Layout
//! - `rounds`: [`SecureRounds`], the state across the five stages.
//! - `roster`: the roster checked (certificates, members, threshold).
//! - `contributions`: [`Contributions`], the record of masked vectors.
//! - `input`: the vector stage 0 computes.
//! - `clear`: refusing aggregates asked for in clear in a secure task.

mod clear;
mod contributions;
mod input;
mod roster;
mod rounds;

pub use clear::refuse_in_clear;
pub use contributions::{
    CONTRIBUTIONS_FORMAT, Contribution, Contributions, Part, contributions_path,
};
pub use rounds::SecureRounds;

#[cfg(test)]
mod tests;
