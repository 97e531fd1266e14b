//! The medfed coordinator: admits members by certificate, runs the training
//! rounds, combines updates and publishes the model.
//!
//! # Layout
//! - [`config`]: the operator's task file (TOML), checked at start-up.
//! - [`state`]: state shared by the service and the orchestrator.
//! - [`service`]: the gRPC service; authorisation and the mapping of domain
//!   errors to `tonic::Status` live here only.
//! - [`orchestrator`]: the sequence of steps (statistics, rounds, baselines,
//!   evaluation, finish).
//! - [`report`]: model file, run summary and the final table.
//! - [`progress`]: progress bar or plain lines.
//! - [`server`]: wires it all together for `coordinator run`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod config;
pub mod orchestrator;
pub mod progress;
pub mod report;
pub mod server;
pub mod service;
pub mod state;
pub mod training;

pub use server::{RunOptions, run};
