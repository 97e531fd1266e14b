//! Logistic, linear and Poisson regression, cross-site preprocessing and
//! evaluation for medfed.
//!
//! Each hospital trains locally with [`gradient_descent`] (or its FedProx
//! variant [`gradient_descent_prox`]) on features prepared by a global
//! [`Standardization`] or [`FittedPreprocessor`], and evaluates on a
//! held-out split ([`holdout_mask`]) by reporting aggregate
//! [`BinaryCounts`], [`CalibrationCounts`] or [`RegressionCounts`]; the
//! coordinator combines what sites send. Second-order fits need no local
//! training at all: sites send [`NewtonTerms`] (logistic or Poisson, a few
//! rounds with [`NewtonSolver`]) or [`NormalTerms`] (linear, one round with
//! [`solve_normal`]), whose merge equals the pooled rows' terms. What
//! differs between regressions is a [`Family`]; everything else is written
//! once, generic over it ([`glm`]). Nothing here knows about any dataset:
//! features are just columns.
//!
//! Conventions shared by every function:
//! - A model's parameters are one flat vector of length `d + 1`: index 0 is
//!   the intercept, indices `1..=d` the feature weights. The intercept is
//!   never L2-penalised.
//! - The training objective is the mean over rows of the per-row loss
//!   (log-loss, `0.5 * (prediction - y)^2`, or half the Poisson deviance)
//!   plus `(l2 / 2) * ||w||^2` over
//!   the weights; what sites send are plain sums, and the coordinator
//!   divides by the total row count and adds the penalty once.
//! - Feature matrices have shape `(n_rows, d)`. For training they are
//!   already standardised and finite; raw matrices use NaN for a missing
//!   value.
//! - Errors name positions, counts and configured column names, never
//!   values, since the values are patient data.
//!
//! # Layout
//! - [`error`]: [`ModelError`], the error type of every computation.
//! - [`cells`]: disclosure control by minimum cell size: `coarsen` and
//!   `check_cells` of the binned counts a site releases (score histograms,
//!   calibration bins, median histograms), and [`CellError`].
//! - [`family`]: the [`Family`] trait (link, per-row loss and its
//!   derivatives, labels, inverse link, evaluation kind) and its
//!   implementations [`Logistic`], [`Linear`] and [`Poisson`], one file
//!   each; the one mapping from a [`ModelKind`] to its family.
//! - [`kind`]: [`ModelKind`], the registry of families a task can name.
//! - [`rows`]: [`Rows`], a view of features, labels and an optional offset.
//! - [`glm`]: loss, gradient, prediction, (proximal) gradient descent and
//!   evaluation generic over the family, each a single allocation-free
//!   pass over the rows.
//! - [`regression`]: the same for a task's [`ModelKind`], dispatched once.
//! - [`newton`]: federated Newton for any family: per-site [`NewtonTerms`]
//!   and the coordinator's monotone [`NewtonSolver`].
//! - [`normal`]: closed-form ridge regression from per-site [`NormalTerms`].
//! - [`linalg`]: the hand-written Cholesky solver both of those use.
//! - [`preprocess`]: mergeable per-feature statistics and the global
//!   standardisation built from them; the richer per-column pipeline
//!   (column specs, summaries, median histograms, the fitted preprocessor);
//!   and the seeded held-out split.
//! - [`metrics`]: exact metrics on in-memory vectors (tests, pooled fits).
//! - [`counts`]: additive evaluation counts (confusion and AUC histogram,
//!   calibration, regression errors, count deviance) behind one
//!   [`EvaluationKind`] trait, and [`EvaluationCounts`] of a registered
//!   kind, that let held-out rows stay at their hospital.
//! - `check` (private): input validation shared by the modules, and the
//!   diagnosis of a non-finite result.
//! - `numeric` (private): overflow-free sigmoid, log-loss and curvature, and
//!   the rule for when a variance counts as zero.
//! - `rng` (private): the deterministic SplitMix64 generator behind the
//!   split.
//! - `testing` (private, tests only): synthetic data for the solvers' tests.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod cells;
mod check;
pub mod counts;
pub mod error;
pub mod family;
pub mod glm;
pub mod kind;
pub mod linalg;
pub mod metrics;
pub mod newton;
pub mod normal;
mod numeric;
pub mod preprocess;
pub mod regression;
mod rng;
pub mod rows;
#[cfg(test)]
mod testing;

pub use cells::CellError;
pub use counts::{
    BinaryCounts, CALIBRATION_BINS, CalibrationCounts, CountCounts, DEFAULT_SCORE_BINS,
    EvaluationCounts, EvaluationKind, MAX_SCORE_BINS, MIN_SCORE_BINS, RegressionCounts,
};
pub use error::ModelError;
pub use family::{Family, Linear, Logistic, Poisson};
pub use kind::ModelKind;
pub use linalg::cholesky_solve;
pub use newton::{NewtonSolver, NewtonTerms, Proposal, ProposalReason, StopReason, Tolerances};
pub use normal::{NormalTerms, solve_normal};
pub use preprocess::{
    ColumnNote, ColumnSpec, ColumnSummary, FeatureNote, FeatureStats, FittedPreprocessor,
    HistogramPlan, Standardization, column_stats, holdout_mask, summarize,
};
pub use regression::{
    check_labels, evaluate, gradient_descent, gradient_descent_prox, loss, loss_and_gradient,
    predict,
};
pub use rows::Rows;
