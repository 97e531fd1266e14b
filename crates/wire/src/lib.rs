//! The wire protocol of medfed: the gRPC code generated from
//! `proto/medfed/v2/federation.proto`, and its conversion to domain types.
//!
//! Generated protobuf types stop here. Every message a peer sends is converted
//! and validated exactly once, in [`convert`], against the task it belongs to
//! (task id, step, dimensions, finite values, histogram sizes); the rest of the
//! code only sees the domain types of [`message`].
//!
//! # Layout
//! - [`client`]: a member's calls (join, poll, submit) in the protocol's
//!   terms, with each message's exact bytes for the exchange log.
//! - [`pb`]: the generated prost messages and tonic client and server.
//! - [`message`]: the domain types of `medfed-protocol` ([`Task`],
//!   [`Instruction`], [`Submission`], ...), re-exported.
//! - [`convert`]: checked conversions between the two, and [`WireError`]
//!   with the checks they share (`convert/mod.rs`); the task and its
//!   consistency (`convert/task.rs`), the instructions
//!   (`convert/instruction.rs`), and the reports a node sends in clear:
//!   statistics, updates, baselines, evaluations (`convert/report.rs`).
//! - [`preprocessing`]: checked conversions of column specs, summaries,
//!   histograms and the fitted preprocessor (JSON inside their messages).
//! - [`terms`]: checked conversions of the exact-fit terms (Newton sums,
//!   normal equations), whose matrices travel as upper triangles.
//! - [`secagg`]: checked conversions of the secure-aggregation
//!   instructions (`secagg/instruction.rs`) and submissions
//!   (`secagg/submission.rs`), medfed-secure message bytes inside; the
//!   validation of a task's settings (`secagg/settings.rs`); and which kind
//!   of vector a step masks (`secagg/masked.rs`; each kind's layout is its
//!   `medfed_protocol::Summed` implementation).
//! - [`submission`]: the one message a member sends, its log kind and round.
//! - [`describe`]: any logged payload decoded and summarised as JSON for
//!   the auditor (vectors as dimension, norm and first values): the table
//!   of kinds and the entry point (`describe/mod.rs`), and the summaries of
//!   the task (`describe/task.rs`), of the instructions
//!   (`describe/instruction.rs`) and of the members' submissions
//!   (`describe/report.rs`).
//! - [`privacy`]: checked conversions of the differential-privacy settings,
//!   spends and budget refusals.
//! - [`limits`]: bounds on everything a peer controls (`medfed-protocol`'s).
//! - [`summed`]: the flat layout of everything a step sums
//!   (`medfed-protocol`'s [`Summed`] trait and its implementations).

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod convert;
pub mod describe;
pub use medfed_protocol::{LayoutError, Summed, kinds, limits, summed};
/// The domain types, defined in `medfed-protocol`.
pub mod message {
    pub use medfed_protocol::instruction::*;
    pub use medfed_protocol::privacy::*;
    pub use medfed_protocol::refusal::*;
    pub use medfed_protocol::submission::*;
    pub use medfed_protocol::task::*;
}
pub mod preprocessing;
pub mod privacy;
pub mod secagg;
pub mod submission;
pub mod terms;

/// Generated protobuf and gRPC code (`medfed.v2`).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("medfed.v2");
}

pub use convert::WireError;
pub use message::{
    BaselineModel, BudgetRefusal, DifferentialPrivacy, EvaluationCounts, EvaluationReport,
    HistogramReport, Instruction, ModelUpdate, NewtonReport, NormalReport, PrivacySpend, Refusal,
    RosterMember, SecAggMessage, SecAggSubmission, SecureAggregation, StatisticsReport, Step,
    Submission, Task, TrainingAlgorithm,
};

/// Wire protocol version spoken by this build.
pub const PROTOCOL_VERSION: u32 = 2;
