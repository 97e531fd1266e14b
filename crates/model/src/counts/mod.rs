//! Evaluation from aggregate counts only.
//!
//! Each site summarises its held-out rows into counts that add across
//! sites, of the kind its model's family reports ([`BinaryCounts`] for
//! logistic models, [`RegressionCounts`] for linear ones, [`CountCounts`]
//! for Poisson ones); the coordinator merges them and computes the metrics.
//! No held-out row ever leaves a hospital. Every kind implements
//! [`EvaluationKind`] (empty, from predictions, merge, validate, a flat
//! layout for secure aggregation, named metrics); [`EvaluationCounts`]
//! holds the counts of a registered [`crate::ModelKind`] and delegates to
//! them. AUC from counts is approximate, with a known error bound, because
//! scores are binned. [`CalibrationCounts`] add, per decile of predicted
//! probability, what calibration needs.

mod binary;
mod calibration;
mod count;
mod evaluation;
mod regression;

pub(crate) use binary::THRESHOLD;
pub use binary::{BinaryCounts, DEFAULT_SCORE_BINS, MAX_SCORE_BINS, MIN_SCORE_BINS};
pub use calibration::{CALIBRATION_BINS, CalibrationBin, CalibrationCounts};
pub use count::CountCounts;
pub use evaluation::{EvaluationCounts, EvaluationKind, Metric, MetricName};
pub use regression::RegressionCounts;
