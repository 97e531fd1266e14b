//! The medfed coordinator: admits members by certificate, runs the training
//! rounds, combines updates and publishes the model.
//!
//! # Layout
//! - [`charts`]: training curves, ROC and calibration charts of a
//!   finished run.
//! - [`checkpoint`]: the durable task state a restarted coordinator
//!   resumes from.
//! - [`config`]: the operator's task file (TOML), checked at start-up.
//! - [`state`]: state shared by the service and the orchestrator.
//! - [`service`]: the gRPC service; authorisation and the mapping of domain
//!   errors to `tonic::Status` live here only.
//! - [`exchange`]: the coordinator's exchange log (every message in and
//!   out, hash-chained and signed, see `medfed-audit`).
//! - [`orchestrator`]: the sequence of steps (statistics, training,
//!   baselines, evaluation, finish).
//! - [`training`]: the training phase by algorithm (FedAvg/FedProx rounds,
//!   federated Newton, closed form).
//! - [`secure_round`]: one step under secure aggregation (a FedAvg/FedProx
//!   round, a Newton round or the normal equations, with the round's
//!   held-out counts; four steps; the coordinator learns only the sum).
//! - [`metrics`]: Prometheus metrics and the opt-in endpoint that serves
//!   them.
//! - [`report`]: model file, run summary and the final table.
//! - [`progress`]: progress bar or plain lines.
//! - [`server`]: wires it all together for `coordinator run`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod charts;
pub mod checkpoint;
pub mod config;
pub mod exchange;
pub mod metrics;
pub mod orchestrator;
pub mod progress;
pub mod report;
pub mod secure_round;
pub mod server;
pub mod service;
pub mod state;
pub mod training;

pub use server::{RunOptions, run};
