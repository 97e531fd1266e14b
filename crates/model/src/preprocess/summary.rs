//! The first preprocessing pass: mergeable per-column summaries that each
//! site computes over its raw rows.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::note::ColumnNote;
use super::spec::{Cell, ColumnSpec, classify, validate_specs};
use crate::check;
use crate::error::ModelError;
use crate::numeric::negligible_variance;

/// Relative slack for `count * min <= sum <= count * max`, which rounding
/// can break by a few ulps per value.
const SUM_SLACK: f64 = 1e-9;

/// Additive summary of one raw column over a set of rows, after unknown
/// values are mapped to missing. Numeric statistics cover the non-missing
/// values (for a categorical column, its codes); `category_counts` has one
/// count per listed category, in the spec's order, and is empty for a
/// numeric column.
///
/// `min` and `max` are 0 when `count` is 0, so the summary stays finite
/// and serialisable; [`ColumnSummary::merge`] knows to ignore them then.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnSummary {
    /// Number of rows seen, missing or not.
    pub rows: u64,
    /// Number of non-missing values.
    pub count: u64,
    /// Sum of the non-missing values.
    pub sum: f64,
    /// Sum of their squares.
    pub sum_sq: f64,
    /// Smallest non-missing value (0 if none).
    pub min: f64,
    /// Largest non-missing value (0 if none).
    pub max: f64,
    /// Rows per listed category (categorical columns only).
    pub category_counts: Vec<u64>,
}

impl ColumnSummary {
    /// The summary of no rows for a column with this spec.
    pub fn empty(spec: &ColumnSpec) -> Self {
        ColumnSummary {
            category_counts: vec![0; spec.categories.as_ref().map_or(0, Vec::len)],
            ..ColumnSummary::default()
        }
    }

    /// Number of missing values.
    pub fn missing(&self) -> u64 {
        self.rows.saturating_sub(self.count)
    }

    /// Mean of the non-missing values; `None` if there are none.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// Whether the non-missing values are (within rounding) all equal, by
    /// the same rule as [`Standardization`](super::Standardization). `false`
    /// when there are none.
    pub fn is_constant(&self) -> bool {
        if self.count == 0 {
            return false;
        }
        if self.min == self.max {
            return true;
        }
        let n = self.count as f64;
        let mean = self.sum / n;
        let mean_sq = self.sum_sq / n;
        negligible_variance(mean_sq - mean * mean, mean_sq)
    }

    /// Adds `other`'s rows to these. On error nothing is changed.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if the category counts differ in length,
    /// [`ModelError::Overflow`] if a count would pass `u64::MAX`.
    pub fn merge(&mut self, other: &ColumnSummary) -> Result<(), ModelError> {
        check::length(
            "merged category counts",
            self.category_counts.len(),
            other.category_counts.len(),
        )?;
        let overflow = || ModelError::Overflow {
            what: "merged column summary",
        };
        let rows = self.rows.checked_add(other.rows).ok_or_else(overflow)?;
        let count = self.count.checked_add(other.count).ok_or_else(overflow)?;
        let categories = self
            .category_counts
            .iter()
            .zip(&other.category_counts)
            .map(|(a, b)| a.checked_add(*b).ok_or_else(overflow))
            .collect::<Result<Vec<_>, _>>()?;
        let (min, max) = match (self.count, other.count) {
            (_, 0) => (self.min, self.max),
            (0, _) => (other.min, other.max),
            _ => (self.min.min(other.min), self.max.max(other.max)),
        };
        *self = ColumnSummary {
            rows,
            count,
            sum: self.sum + other.sum,
            sum_sq: self.sum_sq + other.sum_sq,
            min,
            max,
            category_counts: categories,
        };
        Ok(())
    }

    /// Checks that a summary received from elsewhere could have come from
    /// [`summarize`] for a column with this spec: as many category counts as
    /// categories, summing to `count`; `count <= rows`; finite sums with
    /// `sum_sq >= 0`; `min <= max` and `count * min <= sum <= count * max`
    /// (with slack for rounding); and zero statistics when `count` is 0.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] for the wrong number of category counts and
    /// [`ModelError::InvalidColumnAggregate`] naming the column and field
    /// for the first other rule broken.
    pub fn validate(&self, spec: &ColumnSpec) -> Result<(), ModelError> {
        let categories = spec.categories.as_ref().map_or(0, Vec::len);
        check::length("category counts", categories, self.category_counts.len())?;
        let invalid = |what, allowed| {
            Err(ModelError::InvalidColumnAggregate {
                column: spec.name.clone(),
                what,
                allowed,
            })
        };
        if self.count > self.rows {
            return invalid("count", "at most rows");
        }
        let stats = [self.sum, self.sum_sq, self.min, self.max];
        if !stats.iter().all(|v| v.is_finite()) || self.sum_sq < 0.0 {
            return invalid("sums", "finite, with sum_sq >= 0");
        }
        if self.count == 0 {
            if stats.iter().any(|&v| v != 0.0) {
                return invalid("statistics of no values", "zero");
            }
        } else {
            let n = self.count as f64;
            let slack = SUM_SLACK * n * self.min.abs().max(self.max.abs());
            // Both are finite here, so this is the whole rule.
            if self.min > self.max {
                return invalid("min", "at most max");
            }
            if self.sum < n * self.min - slack || self.sum > n * self.max + slack {
                return invalid("sum", "between count * min and count * max");
            }
        }
        if categories > 0 {
            let total: u128 = self.category_counts.iter().map(|&c| u128::from(c)).sum();
            if total != u128::from(self.count) {
                return invalid("category_counts", "summing to count");
            }
        }
        Ok(())
    }

    /// Adds one classified cell.
    fn add(&mut self, cell: Cell, value: f64) {
        self.rows += 1;
        let category = match cell {
            Cell::Missing => return,
            Cell::Value(_) => None,
            Cell::Category(k) => Some(k),
        };
        if self.count == 0 {
            (self.min, self.max) = (value, value);
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
        self.sum_sq += value * value;
        if let Some(slot) = category.and_then(|k| self.category_counts.get_mut(k)) {
            *slot += 1;
        }
    }
}

/// Summaries of the columns of a raw matrix (NaN for missing; columns in
/// the order of `specs`): the first pass of preprocessing, run at each site.
///
/// # Errors
/// As [`validate_specs`]; [`ModelError::Dimension`] if `raw` does not have
/// one column per spec; [`ModelError::NonFiniteFeature`] for an infinite
/// value; [`ModelError::UnknownCategory`] naming the column and row of the
/// first value of a categorical column that is not one of its codes.
pub fn summarize(
    specs: &[ColumnSpec],
    raw: ArrayView2<'_, f64>,
) -> Result<Vec<ColumnSummary>, ModelError> {
    validate_specs(specs)?;
    check::length("raw columns", specs.len(), raw.ncols())?;
    let mut summaries: Vec<ColumnSummary> = specs.iter().map(ColumnSummary::empty).collect();
    for (row, values) in raw.rows().into_iter().enumerate() {
        for (column, ((spec, summary), &v)) in
            specs.iter().zip(&mut summaries).zip(&values).enumerate()
        {
            let cell = classify(
                v,
                &spec.name,
                &spec.unknown_values,
                spec.categories.as_deref(),
                row,
                column,
            )?;
            summary.add(cell, v);
        }
    }
    Ok(summaries)
}

/// Adds one site's summaries to `total`, column by column. On error nothing
/// is changed.
///
/// # Errors
/// [`ModelError::Dimension`] if the lists or a column's category counts
/// differ in length, [`ModelError::Overflow`] if a count would overflow.
pub fn merge_summaries(
    total: &mut [ColumnSummary],
    site: &[ColumnSummary],
) -> Result<(), ModelError> {
    check::length("merged column summaries", total.len(), site.len())?;
    let mut merged = total.to_vec();
    for (t, s) in merged.iter_mut().zip(site) {
        t.merge(s)?;
    }
    total.clone_from_slice(&merged);
    Ok(())
}

/// Notes about summaries: which columns have no values and which output
/// columns are constant. On merged summaries these describe the pooled
/// data (and [`FittedPreprocessor::fit`](super::FittedPreprocessor::fit)
/// reports the same); on one site's summaries they describe that site, for
/// the coordinator to pass on to a person.
///
/// # Errors
/// As [`ColumnSummary::validate`] for any column, and
/// [`ModelError::Dimension`] if there is not one summary per spec.
pub fn summary_notes(
    specs: &[ColumnSpec],
    summaries: &[ColumnSummary],
) -> Result<Vec<ColumnNote>, ModelError> {
    check::length("column summaries", specs.len(), summaries.len())?;
    let mut notes = Vec::new();
    for (spec, summary) in specs.iter().zip(summaries) {
        summary.validate(spec)?;
        column_notes(spec, summary, &mut notes);
    }
    Ok(notes)
}

/// Appends the notes for one validated column.
pub(super) fn column_notes(
    spec: &ColumnSpec,
    summary: &ColumnSummary,
    notes: &mut Vec<ColumnNote>,
) {
    if summary.count == 0 {
        notes.push(ColumnNote::AllMissing {
            column: spec.name.clone(),
        });
        return;
    }
    match &spec.categories {
        None if summary.is_constant() => notes.push(ColumnNote::ZeroVariance {
            column: spec.name.clone(),
        }),
        None => {}
        Some(codes) => {
            for (code, &c) in codes.iter().zip(&summary.category_counts) {
                if c == 0 || c == summary.count {
                    notes.push(ColumnNote::ZeroVariance {
                        column: format!("{}={code}", spec.name),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "summary_tests.rs"]
mod tests;
