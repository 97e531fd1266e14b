//! The minimum cell size for [`BinaryCounts`].

use std::ops::Range;

use super::{CellError, cells, mean_bin, move_into, released, runs};
use crate::counts::{BinaryCounts, THRESHOLD};

/// What [`CellError::TooFewRows`] says about a class total.
pub(crate) const CLASS: &str = "held-out rows of one class";
/// What it says about a cell of the confusion matrix.
const CONFUSION: &str =
    "held-out rows in one cell of the confusion matrix at threshold 0.5 (tp, fp, tn, fn_)";

impl BinaryCounts {
    /// Coarsens the score histograms so that every non-zero cell of
    /// `pos_hist` and of `neg_hist` holds at least `min_cell` rows.
    ///
    /// Runs of adjacent bins, the same runs for both histograms (a bin's
    /// positives and negatives together describe its score range), are
    /// merged until each run's positives and its negatives are each 0 or at
    /// least `min_cell`, choosing the runs that leave the fewest
    /// positive-negative pairs sharing a run; each run's counts move into the bin holding the
    /// mean bin position of its rows and its other bins become 0 (the rule
    /// and its effect on AUC and ROC are in [`crate::cells`]). Runs never
    /// cross the 0.5 threshold, so the histograms still split into the
    /// confusion counts there. `n`, the confusion counts, `log_loss_sum`,
    /// the bin count and both class totals are unchanged. `min_cell <= 1`
    /// changes nothing.
    ///
    /// The confusion counts and the class totals are released as they are
    /// and cannot be merged, so each must already be 0 or at least
    /// `min_cell`; otherwise the counts cannot be released at all.
    ///
    /// # Errors
    /// On error nothing is changed.
    /// [`CellError::Invalid`] if the counts do not pass
    /// [`BinaryCounts::validate`]; [`CellError::TooFewRows`] if a class
    /// total or one of `tp`, `fp`, `tn` and `fn_` is between 1 and
    /// `min_cell - 1`; [`CellError::ThresholdInsideBin`] for an odd number
    /// of bins (with rows); [`CellError::ThresholdMismatch`] if the
    /// histograms do not split at 0.5 into the confusion counts.
    pub fn coarsen(&mut self, min_cell: u64) -> Result<(), CellError> {
        let Some(sides) = self.sides(min_cell)? else {
            return Ok(());
        };
        let cell = |b: usize| [self.pos_hist[b], self.neg_hist[b]];
        let mut found = Vec::new();
        for side in sides {
            // Each side's totals are confusion counts, already checked, so
            // this cannot fail; the error is kept for safety.
            found.extend(
                runs(side, cell, min_cell).map_err(|_| CellError::TooFewRows {
                    what: CLASS,
                    min_cell,
                })?,
            );
        }
        let (mut pos, mut neg) = (self.pos_hist.clone(), self.neg_hist.clone());
        for run in found.iter().filter(|run| !run.is_empty()) {
            let kept = mean_bin(run.bins.clone(), |b| {
                u128::from(self.pos_hist[b]) + u128::from(self.neg_hist[b])
            });
            move_into(&mut pos, &run.bins, kept, run.totals[0], "pos_hist")?;
            move_into(&mut neg, &run.bins, kept, run.totals[1], "neg_hist")?;
        }
        (self.pos_hist, self.neg_hist) = (pos, neg);
        Ok(())
    }

    /// Checks that every count here may be released under a minimum cell
    /// size: `n`, both class totals, `tp`, `fp`, `tn`, `fn_` and every cell
    /// of `pos_hist` and `neg_hist` are each 0 or at least `min_cell`, and
    /// the histograms split at 0.5 into the confusion counts (so that
    /// subtracting one from the other reveals nothing smaller). The last
    /// check on the exact values about to leave; `min_cell <= 1` checks
    /// only [`BinaryCounts::validate`].
    ///
    /// # Errors
    /// As [`BinaryCounts::coarsen`], and [`CellError::SmallCell`] naming
    /// the first histogram with a cell of 1 to `min_cell - 1` rows.
    pub fn check_cells(&self, min_cell: u64) -> Result<(), CellError> {
        if self.sides(min_cell)?.is_some() {
            released(u128::from(self.n), min_cell, "held-out rows")?;
            cells(self.pos_hist.iter().copied(), min_cell, "pos_hist")?;
            cells(self.neg_hist.iter().copied(), min_cell, "neg_hist")?;
        }
        Ok(())
    }

    /// The checks shared by [`BinaryCounts::coarsen`] and
    /// [`BinaryCounts::check_cells`]: the bins below and from the
    /// threshold, or `None` if there is nothing to do (`min_cell <= 1` or
    /// no rows).
    fn sides(&self, min_cell: u64) -> Result<Option<[Range<usize>; 2]>, CellError> {
        self.validate().map_err(CellError::Invalid)?;
        if min_cell <= 1 || self.n == 0 {
            return Ok(None);
        }
        for class in [self.positives(), self.negatives()] {
            released(u128::from(class), min_cell, CLASS)?;
        }
        for confusion in [self.tp, self.fp, self.tn, self.fn_] {
            released(u128::from(confusion), min_cell, CONFUSION)?;
        }
        let bins = self.bins();
        // Bin b holds scores in [b / bins, (b + 1) / bins), so the
        // threshold is a bin edge exactly when bins * THRESHOLD is whole.
        let edge = bins as f64 * THRESHOLD;
        if edge.fract() != 0.0 {
            return Err(CellError::ThresholdInsideBin { bins });
        }
        let split = edge as usize;
        let from = |hist: &[u64]| hist[split..].iter().map(|&c| u128::from(c)).sum::<u128>();
        // With `validate`, these two also give tn and fn_.
        if from(&self.pos_hist) != u128::from(self.tp) {
            return Err(CellError::ThresholdMismatch { what: "pos_hist" });
        }
        if from(&self.neg_hist) != u128::from(self.fp) {
            return Err(CellError::ThresholdMismatch { what: "neg_hist" });
        }
        Ok(Some([0..split, split..bins]))
    }
}

#[cfg(test)]
#[path = "binary_tests.rs"]
mod tests;
