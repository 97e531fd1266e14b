//! The vocabulary of medfed's protocol, shared by the coordinator, the
//! nodes and the auditor: what a task is, what the coordinator asks, what a
//! member answers, the exchange-log kind of each message, and the bounds on
//! everything a peer controls. No protobuf type appears here: `medfed-wire`
//! converts these to and from the wire, validating once at the boundary.
//!
//! # Layout
//! - [`task`]: [`Task`], its secure-aggregation settings and roster members.
//! - [`instruction`]: [`Step`] and [`Instruction`], what a node is asked.
//! - [`submission`]: [`Submission`], the one thing a node sends back, and
//!   the reports it carries.
//! - [`summed`]: the [`Summed`] trait, and the flat layout of everything a
//!   step sums (updates, exact-fit terms, statistics, histograms and
//!   evaluation counts), beside each type; the same layout serves the
//!   clear sum and the secure-aggregation sum.
//! - [`privacy`]: differential-privacy settings, spends and refusals.
//! - [`refusal`]: [`Refusal`], a member declining under its own policy.
//! - [`kinds`]: the exchange-log kind names, defined once.
//! - [`limits`]: bounds on everything a peer controls.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod instruction;
pub mod kinds;
pub mod limits;
pub mod privacy;
pub mod refusal;
pub mod submission;
pub mod summed;
pub mod task;
#[cfg(test)]
mod testing;

pub use instruction::{Instruction, Step};
pub use privacy::{BudgetRefusal, DifferentialPrivacy, PrivacySpend, RefusalReason};
pub use refusal::Refusal;
pub use submission::{
    BaselineModel, EvaluationCounts, EvaluationReport, HistogramReport, ModelUpdate, NewtonReport,
    NormalReport, SecAggMessage, SecAggSubmission, StatisticsReport, Submission,
};
pub use summed::{LayoutError, Summed};
pub use task::{RosterMember, SecureAggregation, Task, TrainingAlgorithm};
