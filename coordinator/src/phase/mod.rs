//! The phases of a task, one file each, in the order the orchestrator runs
//! them. Each publishes its steps through [`crate::state::Shared`], waits
//! for the answers with [`crate::wait`] and returns what it gathered; none
//! knows which phase comes next.
//!
//! - [`statistics`]: the preprocessing passes (clear or securely summed).
//! - [`training`]: runs the configured [`crate::algorithm`] in the one
//!   round loop.
//! - [`baselines`]: site-alone models for comparison.
//! - [`evaluation`]: the final held-out evaluation (clear or securely
//!   summed).

pub mod baselines;
pub mod evaluation;
pub mod statistics;
pub mod training;
