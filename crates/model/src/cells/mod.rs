//! Disclosure control by minimum cell size: every count a node releases
//! that is not zero stands for at least `min_cell` rows.
//!
//! A count of 1 to `min_cell - 1` rows can point at a single patient, so
//! histograms are coarsened before they leave: runs of adjacent bins are
//! merged until, in every run, each count it releases (positives and
//! negatives of a score bin, positives and negatives of a calibration bin,
//! values of a median histogram) is either 0 or at least `min_cell`. A zero
//! is allowed: it only says that no row fell there. Of the ways to choose
//! the runs, the one that leaves the fewest positive-negative pairs sharing
//! a run is taken (those are the pairs whose order the AUC forgets), then
//! the one with the smallest runs; runs of a single class cost the AUC
//! nothing. Counts that are released as they are (class totals, confusion
//! counts) cannot be merged and must already meet the rule.
//!
//! # The merge rule
//! The vectors keep their length, so that sums across sites (also the
//! element-wise sums of secure aggregation) still line up: a run's counts
//! all move into **the bin that holds the run's mean**, and the run's other
//! bins become 0. For calibration counts that is the bin of the run's mean
//! predicted probability, which keeps every bin's prediction sum within the
//! bin's range ([`crate::CalibrationCounts::validate`] still holds, also
//! for sums of coarsened counts). For score and median histograms, which
//! know their rows only by bin, it is the bin holding the count-weighted
//! mean of the run's bin midpoints. Rows therefore move in both directions
//! and by at most the run's extent, with no systematic shift of the median
//! or of the scores (keeping a run's first or last bin would move every run
//! to one side), and what the kept bin's position tells is a mean over at
//! least `min_cell` rows, not the bin of the one row that completed the run.
//!
//! Runs of score and calibration bins never cross the 0.5 threshold: the
//! confusion counts released beside them already split the rows there, and
//! a run across it could be subtracted from them to recover a smaller count.
//!
//! # What it does to the metrics
//! - AUC and ROC curve of one site's coarsened [`crate::BinaryCounts`]:
//!   pairs in different runs stay ordered, pairs sharing a run count 1/2,
//!   so the AUC is still within its [`crate::BinaryCounts::auc_error_bound`]
//!   of the exact AUC, a bound that grows with the merging. The ROC curve
//!   keeps its point at the 0.5 threshold. Summed across sites, rows of
//!   different sites may cross each other by up to a run's extent, which
//!   the summed counts cannot show, so the bound of a sum is no longer
//!   guaranteed.
//! - Calibration: each run is one point of the reliability diagram at its
//!   exact mean prediction and observed rate.
//! - Medians: a median that falls inside a run is read at the kept bin, so
//!   [`crate::preprocess::ColumnHistogram::approximate_median`] is within
//!   one bin width plus the extent of the widest run (at any site) of the
//!   exact median, rather than within one bin width.
//!
//! # Layout
//! - this file: [`CellError`] and the grouping into runs shared by every
//!   kind of counts.
//! - `binary`, `calibration`, `histogram`: `coarsen` and `check_cells` of
//!   [`crate::BinaryCounts`], [`crate::CalibrationCounts`] and
//!   [`crate::preprocess::ColumnHistogram`].

use std::ops::Range;

use crate::error::ModelError;

mod binary;
mod calibration;
mod histogram;

/// Why counts cannot be released under a minimum cell size, or could not
/// be coarsened to meet it.
///
/// Messages name the count and the rule, never a count's value (beyond
/// being below `min_cell`) or which bin broke it: those would describe the
/// few rows the rule protects.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CellError {
    /// A count that is released as it is, and so cannot be merged with
    /// anything (a class total, a cell of the confusion matrix, a total of
    /// values), holds between 1 and `min_cell - 1` rows.
    #[error(
        "fewer than min_cell = {min_cell} {what} (but at least one): that count is released as \
         it is, so merging bins cannot raise it"
    )]
    TooFewRows {
        /// The count, e.g. `"held-out rows of one class"`.
        what: &'static str,
        /// The minimum cell size.
        min_cell: u64,
    },
    /// A histogram about to be released has a non-zero cell of fewer than
    /// `min_cell` rows: it was not coarsened.
    #[error("{what} has a non-zero cell of fewer than min_cell = {min_cell} rows")]
    SmallCell {
        /// The histogram, e.g. `"pos_hist"`.
        what: &'static str,
        /// The minimum cell size.
        min_cell: u64,
    },
    /// With an odd number of score bins the 0.5 threshold lies inside a
    /// bin, so the score histograms cannot be kept from being subtracted
    /// from the confusion counts.
    #[error(
        "with {bins} score bins the 0.5 threshold falls inside a bin, so the histograms cannot \
         be coarsened apart from the confusion counts; use an even number of score bins"
    )]
    ThresholdInsideBin {
        /// The number of score bins.
        bins: usize,
    },
    /// Score histograms that do not split at the 0.5 threshold into the
    /// confusion counts: they were not made by
    /// [`crate::BinaryCounts::add`].
    #[error("the {what} on each side of the 0.5 threshold do not add up to the confusion counts")]
    ThresholdMismatch {
        /// The histogram, e.g. `"pos_hist"`.
        what: &'static str,
    },
    /// A coarsened count does not fit its type: the counts were not made
    /// from rows.
    #[error("a coarsened count of {what} passes u64::MAX")]
    Overflow {
        /// The counts, e.g. `"histogram"`.
        what: &'static str,
    },
    /// The counts are not valid to begin with.
    #[error("the counts are invalid")]
    Invalid(#[source] ModelError),
}

/// A run of adjacent bins and the totals of its counts.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Run<const K: usize> {
    /// The bins.
    pub(crate) bins: Range<usize>,
    /// Per count, its total over the bins.
    pub(crate) totals: [u128; K],
}

impl<const K: usize> Run<K> {
    /// Whether the run holds no rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.totals.iter().all(|&t| t == 0)
    }
}

/// Whether a count may be released: 0, or at least `min_cell`.
pub(crate) fn allowed(count: u128, min_cell: u64) -> bool {
    count == 0 || count >= u128::from(min_cell)
}

/// Longest run the search considers, in rows per `min_cell`: merging more
/// than this is never needed in practice, and the bound keeps the search
/// linear in the number of bins.
const MAX_RUN_ROWS: u128 = 8;
/// Most non-empty bins the search looks back over for one run.
const MAX_RUN_BINS: usize = 512;

/// Splits `bins` into runs of adjacent bins, in order and covering every
/// bin, in which the total of each of the `K` counts of `cell(b)` is 0 or
/// at least `min_cell`.
///
/// Of the ways to do so, it takes the one with the fewest pairs of rows of
/// different counts sharing a run (for score bins, the pairs of a positive
/// and a negative whose order the AUC forgets), then the fewest pairs of
/// rows sharing a run at all (what a median loses): a shortest-path search
/// over runs of up to [`MAX_RUN_ROWS`] times `min_cell` rows. If no split
/// into such runs exists (a few rows of one count far from the others), it
/// falls back to [`greedy`], which always succeeds. Bins without rows join
/// the run after them (the last run for trailing ones).
///
/// # Errors
/// The index of the first count whose total over `bins` is between 1 and
/// `min_cell - 1`; no split can exist then.
pub(crate) fn runs<const K: usize>(
    bins: Range<usize>,
    cell: impl Fn(usize) -> [u64; K],
    min_cell: u64,
) -> Result<Vec<Run<K>>, usize> {
    let held: Vec<(usize, [u128; K])> = bins
        .clone()
        .filter_map(|b| {
            let counts = cell(b).map(u128::from);
            counts.iter().any(|&c| c > 0).then_some((b, counts))
        })
        .collect();
    let mut totals = [0u128; K];
    for (_, counts) in &held {
        add(&mut totals, counts);
    }
    if let Some(k) = totals.iter().position(|&t| !allowed(t, min_cell)) {
        return Err(k);
    }
    let ends = cheapest(&held, min_cell).unwrap_or_else(|| greedy(&held, min_cell));
    let mut runs = Vec::with_capacity(ends.len().max(1));
    let (mut next_bin, mut next_held) = (bins.start, 0);
    for (i, &end) in ends.iter().enumerate() {
        let mut totals = [0u128; K];
        for (_, counts) in &held[next_held..end] {
            add(&mut totals, counts);
        }
        let last = if i + 1 == ends.len() {
            bins.end
        } else {
            held[end - 1].0 + 1
        };
        runs.push(Run {
            bins: next_bin..last,
            totals,
        });
        (next_bin, next_held) = (last, end);
    }
    if runs.is_empty() && !bins.is_empty() {
        runs.push(Run { bins, totals });
    }
    Ok(runs)
}

/// The cheapest split of the non-empty bins `held` into allowed runs (see
/// [`runs`]), as the end (exclusive index into `held`) of each run; `None`
/// if none within the search's bounds exists.
fn cheapest<const K: usize>(held: &[(usize, [u128; K])], min_cell: u64) -> Option<Vec<usize>> {
    let m = held.len();
    let cap = MAX_RUN_ROWS.saturating_mul(u128::from(min_cell));
    // best[e]: the cheapest cost of splitting held[..e], lexicographic
    // (pairs of different counts, pairs of rows), and where its last run
    // starts.
    let mut best: Vec<Option<((u128, u128), usize)>> = vec![None; m + 1];
    best[0] = Some(((0, 0), 0));
    for end in 1..=m {
        let mut totals = [0u128; K];
        for start in (end.saturating_sub(MAX_RUN_BINS)..end).rev() {
            add(&mut totals, &held[start].1);
            let rows = totals.iter().fold(0u128, |a, &t| a.saturating_add(t));
            if start + 1 < end && rows > cap {
                break;
            }
            let Some(((mixed, pairs), _)) = best[start] else {
                continue;
            };
            if !totals.iter().all(|&t| allowed(t, min_cell)) {
                continue;
            }
            let mut mixed_here = 0u128;
            for (i, &a) in totals.iter().enumerate() {
                for &b in &totals[i + 1..] {
                    mixed_here = mixed_here.saturating_add(a.saturating_mul(b));
                }
            }
            let cost = (
                mixed.saturating_add(mixed_here),
                pairs.saturating_add(rows.saturating_mul(rows)),
            );
            if best[end].is_none_or(|(b, _)| cost < b) {
                best[end] = Some((cost, start));
            }
        }
    }
    best[m]?;
    let mut ends = Vec::new();
    let mut end = m;
    while end > 0 {
        ends.push(end);
        end = best[end]?.1;
    }
    ends.reverse();
    Some(ends)
}

/// A split of the non-empty bins `held` into allowed runs, as in
/// [`cheapest`], found greedily: a run ends at the first bin where its
/// totals are allowed; a last run that cannot get there merges into the
/// run before it, and so on. Succeeds whenever the totals over all of
/// `held` are allowed.
fn greedy<const K: usize>(held: &[(usize, [u128; K])], min_cell: u64) -> Vec<usize> {
    let ok = |totals: &[u128; K]| totals.iter().all(|&t| allowed(t, min_cell));
    let mut found: Vec<(usize, [u128; K])> = Vec::new();
    let mut totals = [0u128; K];
    for (i, (_, counts)) in held.iter().enumerate() {
        add(&mut totals, counts);
        if ok(&totals) {
            found.push((i + 1, totals));
            totals = [0; K];
        }
    }
    if totals.iter().any(|&t| t > 0) {
        while let Some((_, before)) = found.pop() {
            add(&mut totals, &before);
            if ok(&totals) {
                break;
            }
        }
        found.push((held.len(), totals));
    }
    found.into_iter().map(|(end, _)| end).collect()
}

fn add<const K: usize>(totals: &mut [u128; K], counts: &[u128; K]) {
    for (t, &c) in totals.iter_mut().zip(counts) {
        *t = t.saturating_add(c);
    }
}

/// The bin holding the `weight`-weighted mean of the midpoints of `bins`:
/// `floor(sum_b w_b (b + 1/2) / sum_b w_b)`, exactly, in integers. Always
/// one of the bins between the first and last of non-zero weight; the
/// first bin if every weight is 0.
pub(crate) fn mean_bin(bins: Range<usize>, weight: impl Fn(usize) -> u128) -> usize {
    let (mut moment, mut total) = (0u128, 0u128);
    for b in bins.clone() {
        let w = weight(b);
        // w < 2^66 and 2b + 1 < 2^22 for the supported bin counts; the
        // sums stay far below 2^128.
        moment += w * (2 * b as u128 + 1);
        total += w;
    }
    if total == 0 {
        return bins.start;
    }
    let mean = moment / (2 * total);
    usize::try_from(mean).map_or(bins.start, |m| m.clamp(bins.start, bins.end - 1))
}

/// Moves each non-empty run's totals into one bin of `counts` and zeroes
/// the run's other bins.
///
/// # Errors
/// [`CellError::Overflow`] if a total passes `u64::MAX`.
pub(crate) fn move_into(
    counts: &mut [u64],
    run: &Range<usize>,
    kept: usize,
    total: u128,
    what: &'static str,
) -> Result<(), CellError> {
    let total = u64::try_from(total).map_err(|_| CellError::Overflow { what })?;
    counts[run.clone()].fill(0);
    counts[kept] = total;
    Ok(())
}

/// Fails with [`CellError::TooFewRows`] if `count` is between 1 and
/// `min_cell - 1`.
pub(crate) fn released(count: u128, min_cell: u64, what: &'static str) -> Result<(), CellError> {
    if allowed(count, min_cell) {
        Ok(())
    } else {
        Err(CellError::TooFewRows { what, min_cell })
    }
}

/// Fails with [`CellError::SmallCell`] if a cell of `counts` is between 1
/// and `min_cell - 1`.
pub(crate) fn cells(
    counts: impl IntoIterator<Item = u64>,
    min_cell: u64,
    what: &'static str,
) -> Result<(), CellError> {
    if counts.into_iter().all(|c| allowed(u128::from(c), min_cell)) {
        Ok(())
    } else {
        Err(CellError::SmallCell { what, min_cell })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The runs of single counts, as (start, end) of their bins.
    fn single(counts: &[u64], min_cell: u64) -> Result<Vec<(usize, usize)>, usize> {
        runs(0..counts.len(), |b| [counts[b]], min_cell).map(|runs| {
            runs.into_iter()
                .map(|r| (r.bins.start, r.bins.end))
                .collect()
        })
    }

    #[test]
    fn runs_by_hand() {
        assert_eq!(
            single(&[5, 0, 3, 2, 1, 0, 4], 5),
            Ok(vec![(0, 1), (1, 4), (4, 7)])
        );
        // The last run (1 + 3 = 4) is too small and joins the one before.
        assert_eq!(single(&[2, 3, 1, 3], 5), Ok(vec![(0, 4)]));
        assert_eq!(single(&[6, 1, 3], 5), Ok(vec![(0, 3)]));
        assert_eq!(single(&[0, 0, 0], 5), Ok(vec![(0, 3)]));
        assert_eq!(single(&[1, 1, 1], 5), Err(0));
        // Two counts: a run ends only when both are 0 or >= min_cell.
        let pos = [5, 1, 0, 4, 0];
        let neg = [0, 2, 3, 0, 5];
        let found = runs(0..5, |b| [pos[b], neg[b]], 5).unwrap();
        assert_eq!(
            found,
            vec![
                Run {
                    bins: 0..1,
                    totals: [5, 0]
                },
                Run {
                    bins: 1..4,
                    totals: [5, 5]
                },
                Run {
                    bins: 4..5,
                    totals: [0, 5]
                },
            ]
        );
        let few = [0, 2, 0, 0, 0];
        assert_eq!(runs(0..5, |b| [pos[b], few[b]], 5), Err(1));
    }

    #[test]
    fn the_mean_bin_lies_between_the_rows() {
        assert_eq!(mean_bin(0..10, |b| u128::from(b == 3)), 3);
        // Midpoints 0.5 and 9.5, equal weights: mean 5.0, bin 5.
        assert_eq!(mean_bin(0..10, |b| u128::from(b == 0 || b == 9)), 5);
        // Weight 3 at bin 2, 1 at bin 9: (3 * 2.5 + 9.5) / 4 = 4.25.
        assert_eq!(mean_bin(0..10, |b| [0, 0, 3, 0, 0, 0, 0, 0, 0, 1][b]), 4);
        assert_eq!(mean_bin(4..8, |_| 0), 4);
    }

    proptest! {
        #[test]
        fn runs_cover_the_bins_with_allowed_totals(
            cells in proptest::collection::vec((0u64..4, 0u64..3), 1..200),
            min_cell in 1u64..8,
        ) {
            let total = |k: usize| cells.iter().map(|c| u128::from([c.0, c.1][k])).sum::<u128>();
            match runs(0..cells.len(), |b| [cells[b].0, cells[b].1], min_cell) {
                Ok(found) => {
                    let mut next = 0;
                    for run in &found {
                        prop_assert_eq!(run.bins.start, next);
                        prop_assert!(run.bins.start < run.bins.end);
                        next = run.bins.end;
                        for k in 0..2 {
                            let sum: u128 = run.bins.clone().map(|b| u128::from([cells[b].0, cells[b].1][k])).sum();
                            prop_assert_eq!(sum, run.totals[k]);
                            prop_assert!(allowed(sum, min_cell));
                        }
                        let kept = mean_bin(run.bins.clone(), |b| u128::from(cells[b].0 + cells[b].1));
                        prop_assert!(run.bins.contains(&kept));
                    }
                    prop_assert_eq!(next, cells.len());
                }
                Err(k) => prop_assert!(!allowed(total(k), min_cell)),
            }
            if allowed(total(0), min_cell) && allowed(total(1), min_cell) {
                prop_assert!(runs(0..cells.len(), |b| [cells[b].0, cells[b].1], min_cell).is_ok());
            }
        }
    }
}
