//! The medfed coordinator: admits members by certificate, runs the training
//! rounds, combines updates and publishes the model.
//!
//! # Layout
//! - [`config`]: the operator's task file (TOML), checked at start-up:
//!   the TOML tables, the training and algorithm rules, the privacy
//!   rules, the errors and where they are, and the summary
//!   `config check` prints, one file each under `config/`.
//! - [`state`]: state shared by the service and the orchestrator.
//! - [`mailbox`]: the one mailbox for the current step's answers: the
//!   checks every kind shares, then the step's inbox (a clear running sum,
//!   or the secure-aggregation server stage).
//! - [`service`]: the gRPC service; authorisation and the mapping of domain
//!   errors to `tonic::Status` live here only.
//! - [`exchange`]: the coordinator's exchange log (every message in and
//!   out, hash-chained and signed, see `medfed-audit`).
//!
//! The vocabulary every phase speaks:
//! - [`run_error`]: why a run stops before its end.
//! - [`step`]: step numbers and the record of one training round.
//! - [`wait`]: waiting for the members' answers, with deadline and quorum.
//! - [`refusals`]: members that refused the task or a step and left:
//!   noticed once, no longer waited for, and the error when too few remain.
//! - [`outcome`]: everything a finished run produced.
//!
//! The round code, each layer using only the ones below it:
//! - [`orchestrator`]: the sequence of phases, and the checkpoints between
//!   them; only [`server`] calls it.
//! - [`phase`]: one file per phase (statistics, training, baselines,
//!   evaluation).
//! - [`algorithm`]: the training algorithms as one trait (what members
//!   compute next, what to do with the sum or a failed step), one file
//!   each (FedAvg/FedProx, Newton, closed form), differential privacy as
//!   a wrapper around FedAvg, and the one round loop that drives them.
//! - [`collect`]: one generic collect for every step, in clear or under
//!   secure aggregation, returning the sum read by the kind's layout.
//! - [`secure_round`]: the check of a training sum formed under secure
//!   aggregation against the members' declared rows.
//! - [`secure_sum`]: one securely aggregated sum (five steps; the
//!   coordinator learns only the sum).
//!
//! Around a run:
//! - [`checkpoint`]: the durable task state a restarted coordinator
//!   resumes from.
//! - [`metrics`]: Prometheus metrics and the opt-in endpoint that serves
//!   them.
//! - [`report`]: model file, run summary and the final table: the
//!   held-out metrics, the summary and model file, the summary's privacy
//!   section and the table, one file each under `report/`.
//! - [`charts`]: training curves, ROC and calibration charts of a
//!   finished run.
//! - [`progress`]: progress bar or plain lines.
//! - [`server`]: wires it all together for `coordinator run`.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod algorithm;
pub mod charts;
pub mod checkpoint;
pub mod collect;
pub mod config;
pub mod exchange;
pub mod mailbox;
pub mod metrics;
pub mod orchestrator;
pub mod outcome;
pub mod phase;
pub mod progress;
pub mod refusals;
pub mod report;
pub mod run_error;
pub mod secure_round;
pub mod secure_sum;
pub mod server;
pub mod service;
pub mod state;
pub mod step;
pub mod wait;

pub use server::{RunOptions, run};
