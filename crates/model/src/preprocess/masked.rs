//! The preprocessing passes as sums, for secure aggregation: every value a
//! site contributes is one it can add to the others', so the coordinator
//! learns the pooled aggregates and nothing per site.
//!
//! Counts, sums and histograms add up as they are. A range does not (the
//! pooled minimum is not a sum), so it takes two passes:
//! 1. [`statistics_to_masked`]: row counts, each column's non-missing
//!    count and category counts, and each numeric column's coarse range
//!    ([`coarse_bounds`](super::coarse_bounds)) as two one-hot vectors over
//!    a fixed grid of coarse values ([`range_grid`]). Summed, they say how
//!    many sites' ranges start and end at each grid point, from which the
//!    pooled range is read; which site's range is which is not seen.
//! 2. [`moments_to_masked`], over the pooled ranges ([`PooledCounts::plan`]):
//!    each numeric column's sum and sum of squares of `z = (x - c) / h`
//!    for the range's centre `c` and half-width `h` (so `|z| <= 1` and the
//!    sums fit a fixed-point ring whatever the column's units), and the
//!    median histograms.
//!
//! [`PooledCounts::finish`] turns the two sums into the
//! [`ColumnSummary`]s and histograms the clear passes would have merged.

use std::sync::OnceLock;

use super::histogram::{ColumnHistogram, HistogramPlan, ValueRange};
use super::spec::{ColumnSpec, Impute};
use super::summary::ColumnSummary;
use crate::check;
use crate::error::ModelError;

/// Decades of the range grid: coarse values `±{1, 2, 5}·10^k` for these
/// `k`, and zero.
const GRID_DECADES: std::ops::RangeInclusive<i32> = -12..=15;

/// The coarse values a secure-aggregation range can take, ascending:
/// zero and `±{1, 2, 5}·10^k` for `k` in -12..=15, so from -5e15 to 5e15
/// (169 values). Ranges are widened outward onto it.
pub fn range_grid() -> &'static [f64] {
    static GRID: OnceLock<Vec<f64>> = OnceLock::new();
    GRID.get_or_init(|| {
        let mut positive = Vec::new();
        for k in GRID_DECADES {
            let decade = 10f64.powf(f64::from(k));
            positive.extend([1.0, 2.0, 5.0].map(|m| m * decade));
        }
        let mut grid: Vec<f64> = positive.iter().rev().map(|v| -v).collect();
        grid.push(0.0);
        grid.extend(positive);
        grid
    })
}

/// Row counts of the training data, summed over the sites.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowCounts {
    /// Training rows.
    pub train: u64,
    /// Held-out rows.
    pub holdout: u64,
    /// Rows dropped for a missing target.
    pub missing_target: u64,
}

/// Values per column in the first pass: its non-missing count, then its
/// category counts (categorical) or two one-hot grid vectors (numeric).
fn statistics_column_len(spec: &ColumnSpec) -> usize {
    1 + match &spec.categories {
        Some(categories) => categories.len(),
        None => 2 * range_grid().len(),
    }
}

/// Length of the first pass's vector for `specs`: the three row counts,
/// then each column's values.
pub fn statistics_len(specs: &[ColumnSpec]) -> usize {
    3 + specs.iter().map(statistics_column_len).sum::<usize>()
}

/// The first pass at a site: `rows`, then per column its non-missing
/// count and its category counts or the one-hot positions of its coarse
/// range's ends on [`range_grid`] (zeros when it has no values). The
/// summaries are the site's own, with coarse ranges.
///
/// # Errors
/// [`ModelError::Dimension`] if there is not one summary per spec or a
/// column's category counts do not fit its spec;
/// [`ModelError::InvalidColumnAggregate`] for a range outside the grid
/// (values beyond ±5e15).
pub fn statistics_to_masked(
    specs: &[ColumnSpec],
    summaries: &[ColumnSummary],
    rows: RowCounts,
) -> Result<Vec<f64>, ModelError> {
    check::length("column summaries", specs.len(), summaries.len())?;
    let grid = range_grid();
    let mut out = Vec::with_capacity(statistics_len(specs));
    out.extend([rows.train, rows.holdout, rows.missing_target].map(|v| v as f64));
    for (spec, summary) in specs.iter().zip(summaries) {
        out.push(summary.count as f64);
        match &spec.categories {
            Some(categories) => {
                check::length(
                    "category counts",
                    categories.len(),
                    summary.category_counts.len(),
                )?;
                out.extend(summary.category_counts.iter().map(|&c| c as f64));
            }
            None => {
                let mut low = vec![0.0; grid.len()];
                let mut high = vec![0.0; grid.len()];
                if summary.count > 0 {
                    let outside = || ModelError::InvalidColumnAggregate {
                        column: spec.name.clone(),
                        what: "range",
                        allowed: "within ±5e15 to be summed under secure aggregation",
                    };
                    // The largest grid value at or below the low end, the
                    // smallest at or above the high end: still a range
                    // that holds every value.
                    let below = grid.partition_point(|&g| g <= summary.min);
                    let above = grid.partition_point(|&g| g < summary.max);
                    if below == 0 || above == grid.len() {
                        return Err(outside());
                    }
                    low[below - 1] = 1.0;
                    high[above] = 1.0;
                }
                out.extend(low);
                out.extend(high);
            }
        }
    }
    Ok(out)
}

/// The pooled first pass: row counts, and per column the non-missing
/// count, category counts and range; sums follow from the second pass.
#[derive(Clone, Debug, PartialEq)]
pub struct PooledCounts {
    /// Row counts over all sites.
    pub rows: RowCounts,
    /// Per column: the summary without sums (zero), which
    /// [`PooledCounts::finish`] fills in.
    columns: Vec<ColumnSummary>,
}

/// A summed count: a finite whole number >= 0 (fixed-point rounding leaves
/// sums of whole numbers exact).
fn whole(value: f64, what: &'static str) -> Result<u64, ModelError> {
    if value.is_finite() && value >= 0.0 && value < u64::MAX as f64 && value.fract() == 0.0 {
        Ok(value as u64)
    } else {
        Err(ModelError::InvalidAggregate {
            what,
            allowed: "a whole number >= 0",
        })
    }
}

/// Reads the summed first pass (see [`statistics_to_masked`]).
///
/// # Errors
/// [`ModelError::Dimension`] for a wrong length;
/// [`ModelError::InvalidAggregate`] for a count that is not a whole number
/// at least 0; [`ModelError::InvalidColumnAggregate`] for counts that do not add
/// up (range ends of a different number of sites, a column with values
/// and no range or a range and no values, category counts not summing to
/// the count, more values than rows).
pub fn statistics_from_masked(
    specs: &[ColumnSpec],
    values: &[f64],
) -> Result<PooledCounts, ModelError> {
    check::length("summed statistics", statistics_len(specs), values.len())?;
    let grid = range_grid();
    let rows = RowCounts {
        train: whole(values[0], "training rows")?,
        holdout: whole(values[1], "held-out rows")?,
        missing_target: whole(values[2], "rows without a target")?,
    };
    let mut at = 3;
    let mut columns = Vec::with_capacity(specs.len());
    for spec in specs {
        let invalid = |what, allowed| ModelError::InvalidColumnAggregate {
            column: spec.name.clone(),
            what,
            allowed,
        };
        let mut summary = ColumnSummary::empty(spec);
        summary.rows = rows.train;
        summary.count = whole(values[at], "non-missing count")?;
        if summary.count > summary.rows {
            return Err(invalid("count", "at most rows"));
        }
        at += 1;
        match &spec.categories {
            Some(categories) => {
                summary.category_counts = values[at..at + categories.len()]
                    .iter()
                    .map(|&v| whole(v, "category count"))
                    .collect::<Result<_, _>>()?;
                at += categories.len();
                let total: u128 = summary.category_counts.iter().map(|&c| u128::from(c)).sum();
                if total != u128::from(summary.count) {
                    return Err(invalid("category_counts", "summing to count"));
                }
                // The statistics of the codes follow from their counts
                // (the codes are the task's, not the sites').
                let present = || {
                    categories
                        .iter()
                        .zip(&summary.category_counts)
                        .filter(|(_, n)| **n > 0)
                        .map(|(&code, &n)| (code as f64, n as f64))
                };
                for (code, n) in present() {
                    summary.sum += code * n;
                    summary.sum_sq += code * code * n;
                }
                if summary.count > 0 {
                    summary.min = present().map(|(c, _)| c).fold(f64::INFINITY, f64::min);
                    summary.max = present().map(|(c, _)| c).fold(f64::NEG_INFINITY, f64::max);
                }
            }
            None => {
                let low = &values[at..at + grid.len()];
                let high = &values[at + grid.len()..at + 2 * grid.len()];
                at += 2 * grid.len();
                let (mut lows, mut highs) = (0u64, 0u64);
                for (l, h) in low.iter().zip(high) {
                    lows += whole(*l, "range start count")?;
                    highs += whole(*h, "range end count")?;
                }
                if lows != highs {
                    return Err(invalid("range", "starts and ends from the same sites"));
                }
                match (summary.count > 0, lows > 0) {
                    (true, true) => {
                        let first = low.iter().position(|&v| v > 0.0);
                        let last = high.iter().rposition(|&v| v > 0.0);
                        let (Some(first), Some(last)) = (first, last) else {
                            return Err(invalid("range", "present"));
                        };
                        (summary.min, summary.max) = (grid[first], grid[last]);
                        if summary.min > summary.max {
                            return Err(invalid("min", "at most max"));
                        }
                        if summary.min == summary.max {
                            // Every value is this grid value: the sums are
                            // known without a second pass.
                            let n = summary.count as f64;
                            summary.sum = n * summary.min;
                            summary.sum_sq = n * summary.min * summary.min;
                        }
                    }
                    (false, false) => {}
                    _ => return Err(invalid("range", "given exactly for columns with values")),
                }
            }
        }
        columns.push(summary);
    }
    Ok(PooledCounts { rows, columns })
}

impl PooledCounts {
    /// The second pass's plan: the pooled range of each numeric column
    /// with at least two distinct coarse ends, over `bins` bins (the
    /// median histograms' resolution). Other columns need no second pass.
    pub fn plan(&self, specs: &[ColumnSpec], bins: usize) -> HistogramPlan {
        HistogramPlan {
            bins,
            ranges: specs
                .iter()
                .zip(&self.columns)
                .map(|(spec, s)| {
                    (spec.categories.is_none() && s.count > 0 && s.min < s.max).then_some(
                        ValueRange {
                            min: s.min,
                            max: s.max,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Completes the summaries from the summed second pass (see
    /// [`moments_to_masked`]) over `plan`, and returns them with the
    /// median histograms (one per column, `Some` for numeric columns
    /// imputed by their median that are in the plan).
    ///
    /// The sums carry the fixed-point rounding of the second pass: each
    /// summed `z` value is within the secure sum's error bound, so a sum
    /// is within `h` times it, a sum of squares within `h² + 2|c|h` times
    /// it. They are clamped to what real values allow (the sum within
    /// `count·[min, max]`, the sum of squares at least `sum²/count`).
    ///
    /// # Errors
    /// [`ModelError::Dimension`] for a plan or vector that does not fit
    /// `specs`; [`ModelError::InvalidValues`] for non-finite sums;
    /// [`ModelError::InvalidAggregate`] for histogram counts that are not
    /// whole; [`ModelError::InvalidColumnAggregate`] for a histogram whose
    /// total is not the column's count, or a result that does not validate.
    pub fn finish(
        self,
        specs: &[ColumnSpec],
        plan: &HistogramPlan,
        values: &[f64],
    ) -> Result<(Vec<ColumnSummary>, Vec<Option<ColumnHistogram>>), ModelError> {
        check::length("summed moments", moments_len(specs, plan)?, values.len())?;
        check::values("summed moments", "finite", values, f64::is_finite)?;
        let mut columns = self.columns;
        let mut histograms = Vec::with_capacity(specs.len());
        let mut at = 0;
        for ((spec, summary), range) in specs.iter().zip(&mut columns).zip(&plan.ranges) {
            let Some(range) = range else {
                histograms.push(None);
                continue;
            };
            let (c, h) = centre_and_half_width(*range);
            let (sz, szz) = (values[at], values[at + 1]);
            at += 2;
            let n = summary.count as f64;
            let sum = (h * sz + c * n).clamp(n * summary.min, n * summary.max);
            let sum_sq = h * h * szz + 2.0 * c * h * sz + c * c * n;
            summary.sum = sum;
            summary.sum_sq = if n > 0.0 {
                sum_sq.max(sum * sum / n)
            } else {
                0.0
            };
            if spec.missing == Impute::Median {
                let mut histogram = ColumnHistogram::empty(*range, plan.bins);
                for (slot, &v) in histogram.counts.iter_mut().zip(&values[at..]) {
                    *slot = whole(v, "histogram count")?;
                }
                at += plan.bins;
                if histogram.total() != summary.count {
                    return Err(ModelError::InvalidColumnAggregate {
                        column: spec.name.clone(),
                        what: "histogram",
                        allowed: "counting every non-missing value once",
                    });
                }
                histograms.push(Some(histogram));
            } else {
                histograms.push(None);
            }
            summary.validate(spec)?;
        }
        Ok((columns, histograms))
    }
}

fn centre_and_half_width(range: ValueRange) -> (f64, f64) {
    (0.5 * (range.min + range.max), 0.5 * (range.max - range.min))
}

/// Length of the second pass's vector: for each column in the plan, two
/// sums, and the histogram's bins if the column is imputed by its median.
///
/// # Errors
/// [`ModelError::Dimension`] for a plan that does not have one entry per
/// spec.
pub fn moments_len(specs: &[ColumnSpec], plan: &HistogramPlan) -> Result<usize, ModelError> {
    check::length("plan ranges", specs.len(), plan.ranges.len())?;
    Ok(specs
        .iter()
        .zip(&plan.ranges)
        .filter(|(_, r)| r.is_some())
        .map(|(spec, _)| {
            2 + if spec.missing == Impute::Median {
                plan.bins
            } else {
                0
            }
        })
        .sum())
}

/// The part of a second-pass plan a site bins: the columns imputed by
/// their median.
pub fn median_plan(specs: &[ColumnSpec], plan: &HistogramPlan) -> HistogramPlan {
    HistogramPlan {
        bins: plan.bins,
        ranges: specs
            .iter()
            .zip(&plan.ranges)
            .map(|(spec, r)| r.filter(|_| spec.missing == Impute::Median))
            .collect(),
    }
}

/// The second pass at a site: for each column in `plan`, the sum and sum
/// of squares of `(x - c) / h` over its non-missing values (from the
/// site's exact sums in `summaries`), then, for a column imputed by its
/// median, its histogram from `histograms` (made over
/// [`median_plan`]).
///
/// # Errors
/// [`ModelError::Dimension`] for inputs that do not fit `specs` or the
/// plan; [`ModelError::MissingHistogram`] for a median column without a
/// histogram over the plan's range.
pub fn moments_to_masked(
    specs: &[ColumnSpec],
    plan: &HistogramPlan,
    summaries: &[ColumnSummary],
    histograms: &[Option<ColumnHistogram>],
) -> Result<Vec<f64>, ModelError> {
    let mut out = Vec::with_capacity(moments_len(specs, plan)?);
    check::length("column summaries", specs.len(), summaries.len())?;
    check::length("histograms", specs.len(), histograms.len())?;
    for (((spec, summary), range), histogram) in specs
        .iter()
        .zip(summaries)
        .zip(&plan.ranges)
        .zip(histograms)
    {
        let Some(range) = range else { continue };
        let (c, h) = centre_and_half_width(*range);
        let n = summary.count as f64;
        if summary.count == 0 {
            out.extend([0.0, 0.0]);
        } else {
            out.push((summary.sum - c * n) / h);
            let centred_sq = summary.sum_sq - 2.0 * c * summary.sum + c * c * n;
            out.push((centred_sq / (h * h)).max(0.0));
        }
        if spec.missing == Impute::Median {
            let Some(histogram) = histogram
                .as_ref()
                .filter(|hist| hist.min == range.min && hist.max == range.max)
                .filter(|hist| hist.counts.len() == plan.bins)
            else {
                return Err(ModelError::MissingHistogram {
                    column: spec.name.clone(),
                });
            };
            out.extend(histogram.counts.iter().map(|&v| v as f64));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "masked_tests.rs"]
mod tests;
