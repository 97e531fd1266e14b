//! A node's side of secure aggregation: the four stages of a round, with the
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
//! meant for it, and unmask another member's input.

mod clear;
mod input;
mod roster;
mod rounds;

pub use clear::refuse_in_clear;
pub use rounds::SecureRounds;

#[cfg(test)]
mod tests;
