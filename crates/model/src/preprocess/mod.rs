//! Cross-site preprocessing.
//!
//! Sites never standardise with their own statistics: each reports
//! per-feature [`FeatureStats`], the coordinator merges them into one global
//! [`Standardization`], and every site applies that same transform, so a
//! weight means the same thing at every hospital. Which rows are held out
//! for evaluation is decided by [`holdout_mask`], a seeded split that any
//! party can reproduce.
//!
//! The richer pipeline works the same way, driven by a [`ColumnSpec`] per
//! raw column (unknown-value codes, one-hot categories, imputation, a
//! missing-value indicator, standardisation or min-max scaling):
//! 1. Each site sends [`summarize`]'s [`ColumnSummary`]s; the coordinator
//!    merges them ([`merge_summaries`]).
//! 2. Only if a column is imputed by its median: the coordinator publishes a
//!    [`HistogramPlan`] over the global ranges, each site sends
//!    [`HistogramPlan::histograms`], the coordinator merges them
//!    ([`merge_histograms`]). The median read from them is within one bin
//!    width of the exact pooled median.
//! 3. [`FittedPreprocessor::fit`] turns the merged aggregates into the
//!    transform every site applies, with [`ColumnNote`]s on degenerate
//!    columns.
//!
//! # Layout
//! - `stats`, `standardize`: the plain per-feature standardisation.
//! - `split`: the seeded held-out split.
//! - `spec`: [`ColumnSpec`] and the per-cell rules shared by every pass.
//! - `summary`: pass 1, [`ColumnSummary`].
//! - `histogram`: pass 2, [`HistogramPlan`] and [`ColumnHistogram`].
//! - `fitted`: [`FittedPreprocessor`], what sites apply.
//! - `bounds`: [`coarse_bounds`], the outward-rounded ranges a site sends
//!   instead of its exact minimum and maximum (single records' values).
//! - `masked`: both passes as sums a secure aggregation can add up
//!   ([`statistics_to_masked`], [`moments_to_masked`]).
//! - `note`: [`ColumnNote`].

mod bounds;
mod fitted;
mod histogram;
mod masked;
mod note;
mod spec;
mod split;
mod standardize;
mod stats;
mod summary;

pub use bounds::coarse_bounds;
pub use fitted::{Encoding, FittedColumn, FittedPreprocessor, Scaling};
pub use histogram::{
    ColumnHistogram, DEFAULT_MEDIAN_BINS, HistogramPlan, MAX_MEDIAN_BINS, MIN_MEDIAN_BINS,
    ValueRange, merge_histograms,
};
pub use masked::{
    PooledCounts, RowCounts, median_plan, moments_len, moments_to_masked, range_grid,
    statistics_from_masked, statistics_len, statistics_to_masked,
};
pub use note::ColumnNote;
pub use spec::{ColumnSpec, Impute, MAX_CATEGORIES, MAX_NAME_LEN, Transform, validate_specs};
pub use split::holdout_mask;
pub use standardize::{FeatureNote, Standardization};
pub use stats::{FeatureStats, column_stats};
pub use summary::{ColumnSummary, merge_summaries, summarize, summary_notes};
