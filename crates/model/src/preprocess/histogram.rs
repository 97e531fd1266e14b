//! The optional second preprocessing pass: fixed-bin histograms over each
//! column's global range, from which the coordinator reads approximate
//! medians without seeing a value.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use super::spec::{Cell, ColumnSpec, Impute, classify, validate_specs};
use super::summary::ColumnSummary;
use crate::check;
use crate::error::ModelError;

/// Bins per histogram unless a task says otherwise: the median is then
/// within 1/1024 of the column's range.
pub const DEFAULT_MEDIAN_BINS: usize = 1024;
/// Fewest bins allowed.
pub const MIN_MEDIAN_BINS: usize = 2;
/// Most bins allowed; bounds the size of what sites send.
pub const MAX_MEDIAN_BINS: usize = 1 << 20;

/// A closed interval of values.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValueRange {
    /// Lower end.
    pub min: f64,
    /// Upper end, greater than `min`.
    pub max: f64,
}

/// Which columns need a histogram, over which global range, with how many
/// bins: what the coordinator publishes for the second pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistogramPlan {
    /// Bins per histogram.
    pub bins: usize,
    /// Per column (in spec order): the global range to bin over, or `None`
    /// if the column needs no histogram.
    pub ranges: Vec<Option<ValueRange>>,
}

/// Counts of one column's non-missing values in `counts.len()` equal bins
/// spanning `[min, max]`. Bin `b` holds values `v` with
/// `floor((v - min) / (max - min) * bins) == b`; `max` itself goes to the
/// last bin. Additive across sites that used the same plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnHistogram {
    /// Lower end of the first bin.
    pub min: f64,
    /// Upper end of the last bin.
    pub max: f64,
    /// Values per bin.
    pub counts: Vec<u64>,
}

impl HistogramPlan {
    /// The plan for merged summaries: a range for each numeric column that
    /// is imputed by its median and has at least two distinct values. (With
    /// no values there is no median; with one distinct value it is known.)
    ///
    /// # Errors
    /// As [`validate_specs`] and [`ColumnSummary::validate`];
    /// [`ModelError::Dimension`] if there is not one summary per spec;
    /// [`ModelError::InvalidBins`] for `bins` outside
    /// [`MIN_MEDIAN_BINS`]`..=`[`MAX_MEDIAN_BINS`].
    pub fn new(
        specs: &[ColumnSpec],
        merged: &[ColumnSummary],
        bins: usize,
    ) -> Result<Self, ModelError> {
        check_bins(bins)?;
        validate_specs(specs)?;
        check::length("column summaries", specs.len(), merged.len())?;
        let mut ranges = Vec::with_capacity(specs.len());
        for (spec, summary) in specs.iter().zip(merged) {
            summary.validate(spec)?;
            let needed = spec.categories.is_none()
                && spec.missing == Impute::Median
                && summary.count > 0
                && summary.min < summary.max;
            ranges.push(needed.then_some(ValueRange {
                min: summary.min,
                max: summary.max,
            }));
        }
        Ok(HistogramPlan { bins, ranges })
    }

    /// Whether no column needs a histogram, so the second pass can be
    /// skipped.
    pub fn is_empty(&self) -> bool {
        self.ranges.iter().all(Option::is_none)
    }

    /// Checks a plan received from elsewhere for `columns` columns: a
    /// supported bin count, one entry per column, and finite ranges with
    /// `min < max`.
    ///
    /// # Errors
    /// [`ModelError::InvalidBins`], [`ModelError::Dimension`], or
    /// [`ModelError::InvalidValues`] naming the first bad range.
    pub fn validate(&self, columns: usize) -> Result<(), ModelError> {
        check_bins(self.bins)?;
        check::length("histogram plan ranges", columns, self.ranges.len())?;
        check::entries(
            "histogram plan ranges",
            "finite ranges with min < max",
            self.ranges
                .iter()
                .map(|r| r.is_none_or(|r| valid_range(r.min, r.max))),
        )
    }

    /// The second pass at a site: a histogram for each planned column of the
    /// raw matrix (NaN for missing; columns in spec order), `None` for the
    /// others. Values outside a planned range (possible only if the site's
    /// rows changed since the first pass) go to the nearest end bin.
    ///
    /// # Errors
    /// As [`HistogramPlan::validate`] and [`validate_specs`];
    /// [`ModelError::Dimension`] if `raw` does not have one column per
    /// spec; as [`summarize`](super::summarize) for bad cells.
    pub fn histograms(
        &self,
        specs: &[ColumnSpec],
        raw: ArrayView2<'_, f64>,
    ) -> Result<Vec<Option<ColumnHistogram>>, ModelError> {
        self.validate(specs.len())?;
        validate_specs(specs)?;
        check::length("raw columns", specs.len(), raw.ncols())?;
        let mut histograms: Vec<Option<ColumnHistogram>> = self
            .ranges
            .iter()
            .map(|r| r.map(|r| ColumnHistogram::empty(r, self.bins)))
            .collect();
        for (row, values) in raw.rows().into_iter().enumerate() {
            for (column, ((spec, histogram), &v)) in
                specs.iter().zip(&mut histograms).zip(&values).enumerate()
            {
                let Some(histogram) = histogram else { continue };
                let cell = classify(
                    v,
                    &spec.name,
                    &spec.unknown_values,
                    spec.categories.as_deref(),
                    row,
                    column,
                )?;
                if let Cell::Value(v) = cell {
                    histogram.add(v);
                }
            }
        }
        Ok(histograms)
    }
}

impl ColumnHistogram {
    /// An empty histogram over `range` with `bins` bins.
    pub fn empty(range: ValueRange, bins: usize) -> Self {
        ColumnHistogram {
            min: range.min,
            max: range.max,
            counts: vec![0; bins],
        }
    }

    /// Number of values counted.
    pub fn total(&self) -> u64 {
        self.counts
            .iter()
            .fold(0u64, |total, &c| total.saturating_add(c))
    }

    /// Width of one bin, `(max - min) / bins`.
    pub fn bin_width(&self) -> f64 {
        (self.max - self.min) / self.counts.len().max(1) as f64
    }

    /// Upper bound on the distance between [`approximate_median`] and the
    /// exact median of the counted values: one bin width.
    ///
    /// (The estimate averages the midpoints of the bins holding the two
    /// middle values, so it is within half a bin width of the median, up to
    /// rounding in assigning a value that lies on a bin edge; one full width
    /// covers that with room to spare.)
    ///
    /// [`approximate_median`]: ColumnHistogram::approximate_median
    pub fn median_error_bound(&self) -> f64 {
        self.bin_width()
    }

    /// The median of the counted values, approximately: for `N` values, the
    /// mean of the midpoints of the bins holding the values of rank
    /// `ceil(N / 2)` and `floor(N / 2) + 1`. `None` if nothing was counted.
    /// Within [`ColumnHistogram::median_error_bound`] of the exact median.
    pub fn approximate_median(&self) -> Option<f64> {
        let n = self.total();
        if n == 0 {
            return None;
        }
        let lower = self.bin_of_rank(n.div_ceil(2))?;
        let upper = self.bin_of_rank(n / 2 + 1)?;
        let width = self.bin_width();
        let middle = |b: usize| self.min + (b as f64 + 0.5) * width;
        Some((0.5 * (middle(lower) + middle(upper))).clamp(self.min, self.max))
    }

    /// Adds `other`'s counts. On error nothing is changed.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if the bin counts differ,
    /// [`ModelError::InvalidAggregate`] if the ranges differ (the two were
    /// built from different plans), [`ModelError::Overflow`] if a count
    /// would overflow.
    pub fn merge(&mut self, other: &ColumnHistogram) -> Result<(), ModelError> {
        check::length(
            "merged histogram bins",
            self.counts.len(),
            other.counts.len(),
        )?;
        if self.min != other.min || self.max != other.max {
            return Err(ModelError::InvalidAggregate {
                what: "merged histogram range",
                allowed: "the same as the histogram merged into",
            });
        }
        let counts = self
            .counts
            .iter()
            .zip(&other.counts)
            .map(|(a, b)| {
                a.checked_add(*b).ok_or(ModelError::Overflow {
                    what: "merged histogram",
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.counts = counts;
        Ok(())
    }

    /// Checks a histogram received from elsewhere: a supported bin count
    /// and a finite range with `min < max`.
    ///
    /// # Errors
    /// [`ModelError::InvalidBins`] or [`ModelError::InvalidAggregate`].
    pub fn validate(&self) -> Result<(), ModelError> {
        check_bins(self.counts.len())?;
        if !valid_range(self.min, self.max) {
            return Err(ModelError::InvalidAggregate {
                what: "histogram range",
                allowed: "finite, with min < max",
            });
        }
        Ok(())
    }

    /// Counts one value.
    fn add(&mut self, v: f64) {
        let bins = self.counts.len();
        // Non-negative and finite for v in range; `as` saturates outside it.
        let position = (v - self.min) / (self.max - self.min) * bins as f64;
        let bin = (position as usize).min(bins.saturating_sub(1));
        if let Some(slot) = self.counts.get_mut(bin) {
            *slot = slot.saturating_add(1);
        }
    }

    /// The bin holding the value of 1-based rank `rank`.
    fn bin_of_rank(&self, rank: u64) -> Option<usize> {
        let mut seen = 0u64;
        self.counts.iter().position(|&c| {
            seen = seen.saturating_add(c);
            seen >= rank
        })
    }
}

/// Adds one site's histograms to `total`, column by column; a column must
/// have a histogram in both or in neither. On error nothing is changed.
///
/// # Errors
/// [`ModelError::Dimension`] if the lists differ in length or a column has
/// a histogram in only one; as [`ColumnHistogram::merge`].
pub fn merge_histograms(
    total: &mut [Option<ColumnHistogram>],
    site: &[Option<ColumnHistogram>],
) -> Result<(), ModelError> {
    check::length("merged histograms", total.len(), site.len())?;
    let mut merged = total.to_vec();
    for (t, s) in merged.iter_mut().zip(site) {
        match (t, s) {
            (Some(t), Some(s)) => t.merge(s)?,
            (None, None) => {}
            (t, _) => {
                return Err(ModelError::Dimension {
                    what: "merged histogram presence",
                    expected: usize::from(t.is_some()),
                    got: usize::from(s.is_some()),
                });
            }
        }
    }
    total.clone_from_slice(&merged);
    Ok(())
}

fn valid_range(min: f64, max: f64) -> bool {
    min.is_finite() && max.is_finite() && min < max && (max - min).is_finite()
}

fn check_bins(bins: usize) -> Result<(), ModelError> {
    if (MIN_MEDIAN_BINS..=MAX_MEDIAN_BINS).contains(&bins) {
        Ok(())
    } else {
        Err(ModelError::InvalidBins {
            got: bins,
            min: MIN_MEDIAN_BINS,
            max: MAX_MEDIAN_BINS,
        })
    }
}

#[cfg(test)]
#[path = "histogram_tests.rs"]
mod tests;
