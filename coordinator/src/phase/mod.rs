//! The phases of a task, one file each, in the order the orchestrator runs
//! them. Each publishes its steps through [`crate::state::Shared`], waits
//! for the answers with [`crate::wait`] and returns what it gathered; none
//! knows which phase comes next.
//!
//! - [`statistics`]: the preprocessing passes (clear or securely summed).
//! - [`training`]: runs the configured algorithm, one of
//!   - [`fedavg`]: FedAvg/FedProx rounds of local steps (with central DP
//!     noise when asked);
//!   - [`newton`]: federated Newton rounds;
//!   - [`closed_form`]: the one-round exact ridge solution;
//!
//!   sharing [`rounds`]: where training starts, what it produces, the
//!   round's held-out scores.
//! - [`baselines`]: site-alone models for comparison.
//! - [`evaluation`]: the final held-out evaluation (clear or securely
//!   summed).

pub mod baselines;
pub mod closed_form;
pub mod evaluation;
pub mod fedavg;
pub mod newton;
pub mod rounds;
pub mod statistics;
pub mod training;
