//! Logistic and linear regression, cross-site preprocessing and evaluation
//! for medfed.
//!
//! Each hospital trains locally with [`gradient_descent`] on features
//! standardised by a global [`Standardization`], and evaluates on a held-out
//! split ([`holdout_mask`]) by reporting aggregate [`BinaryCounts`] or
//! [`RegressionCounts`]; the coordinator combines what sites send. Nothing
//! here knows about any dataset: features are just columns.
//!
//! Conventions shared by every function:
//! - A model's parameters are one flat vector of length `d + 1`: index 0 is
//!   the intercept, indices `1..=d` the feature weights. The intercept is
//!   never L2-penalised.
//! - Feature matrices have shape `(n_rows, d)`. For training they are
//!   already standardised and finite; raw matrices use NaN for a missing
//!   value.
//! - Errors name positions and counts, never values, since the values are
//!   patient data.
//!
//! # Layout
//! - [`error`]: [`ModelError`], the one error type.
//! - [`kind`]: [`ModelKind`], which regression a task trains and which labels
//!   it accepts.
//! - [`regression`]: loss, gradient, prediction and gradient descent, each a
//!   single allocation-free pass over the rows.
//! - [`preprocess`]: mergeable per-feature statistics, the global
//!   standardisation built from them, and the seeded held-out split.
//! - [`metrics`]: exact metrics on in-memory vectors (tests, pooled fits).
//! - [`counts`]: additive evaluation counts that let held-out rows stay at
//!   their hospital.
//! - `check` (private): input validation shared by the modules, and the
//!   diagnosis of a non-finite result.
//! - `numeric` (private): overflow-free sigmoid and log-loss, and the rule
//!   for when a variance counts as zero.
//! - `rng` (private): the deterministic SplitMix64 generator behind the
//!   split.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod check;
pub mod counts;
pub mod error;
pub mod kind;
pub mod metrics;
mod numeric;
pub mod preprocess;
pub mod regression;
mod rng;

pub use counts::{
    BinaryCounts, DEFAULT_SCORE_BINS, MAX_SCORE_BINS, MIN_SCORE_BINS, RegressionCounts,
};
pub use error::ModelError;
pub use kind::ModelKind;
pub use preprocess::{FeatureNote, FeatureStats, Standardization, column_stats, holdout_mask};
pub use regression::{check_labels, gradient_descent, loss, loss_and_gradient, predict};
