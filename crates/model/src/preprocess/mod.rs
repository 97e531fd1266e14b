//! Cross-site preprocessing.
//!
//! Sites never standardise with their own statistics: each reports
//! per-feature [`FeatureStats`], the coordinator merges them into one global
//! [`Standardization`], and every site applies that same transform, so a
//! weight means the same thing at every hospital. Which rows are held out
//! for evaluation is decided by [`holdout_mask`], a seeded split that any
//! party can reproduce.

mod split;
mod standardize;
mod stats;

pub use split::holdout_mask;
pub use standardize::{FeatureNote, Standardization};
pub use stats::{FeatureStats, column_stats};
