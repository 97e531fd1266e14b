//! Bounds on everything a peer controls. A message outside them is refused at
//! the boundary with an error that names the field and the bound.

/// Largest encoded gRPC message accepted in either direction.
pub const MAX_MESSAGE_BYTES: usize = 32 * 1024 * 1024;
/// Most features a task may have.
pub const MAX_FEATURES: usize = 100_000;
/// Most members a task may have.
pub const MAX_MEMBERS: usize = 1_000;
/// Longest identifier (task id, feature or member name), in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Most training rounds a task may ask for.
pub const MAX_ROUNDS: u32 = 100_000;
/// Most local gradient steps per round.
pub const MAX_LOCAL_STEPS: u32 = 100_000;
/// Most score-histogram bins in binary evaluation counts.
pub const MAX_SCORE_BINS: u32 = 1_000_000;
/// Most score-histogram bins in the held-out counts sent with each round
/// (the final evaluation uses the task's `score_bins`).
pub const ROUND_SCORE_BINS: u32 = 100;
/// Largest certificate (DER) in a secure-aggregation roster.
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;
/// Longest rule name in a member's refusal, in bytes.
pub const MAX_RULE_BYTES: usize = 64;
/// Longest reason in a member's refusal, in bytes.
pub const MAX_REFUSAL_REASON_BYTES: usize = 2048;
