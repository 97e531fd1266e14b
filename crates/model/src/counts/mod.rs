//! Evaluation from aggregate counts only.
//!
//! Each site summarises its held-out rows into counts that add across
//! sites ([`BinaryCounts`] for logistic models, [`RegressionCounts`] for
//! linear ones); the coordinator merges them and computes the metrics. No
//! held-out row ever leaves a hospital. AUC from counts is approximate, with
//! a known error bound, because scores are binned. [`CalibrationCounts`]
//! add, per decile of predicted probability, what calibration needs.

mod binary;
mod calibration;
mod regression;

pub use binary::{BinaryCounts, DEFAULT_SCORE_BINS, MAX_SCORE_BINS, MIN_SCORE_BINS};
pub use calibration::{CALIBRATION_BINS, CalibrationBin, CalibrationCounts};
pub use regression::RegressionCounts;
