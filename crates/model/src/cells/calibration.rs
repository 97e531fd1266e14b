//! The minimum cell size for [`CalibrationCounts`].

use std::ops::Range;

use super::binary::CLASS;
use super::{CellError, Run, cells, move_into, released, runs};
use crate::counts::{CALIBRATION_BINS, CalibrationCounts, THRESHOLD};

impl CalibrationCounts {
    /// Coarsens the bins so that in every non-empty bin the rows, the
    /// positives (`label_sum`) and the negatives (`count - label_sum`) are
    /// each 0 or at least `min_cell`.
    ///
    /// Runs of adjacent bins are merged until each run's positives and
    /// negatives are each 0 or at least `min_cell`; a run's rows, positives
    /// and prediction sum move into the bin of its mean predicted
    /// probability (so every bin's prediction sum stays within its range)
    /// and its other bins become 0. Runs never cross 0.5, where the
    /// confusion counts released beside these split the rows. The totals of
    /// all three vectors are unchanged (the prediction sums up to rounding).
    /// `min_cell <= 1` changes nothing.
    ///
    /// # Errors
    /// On error nothing is changed.
    /// [`CellError::Invalid`] if the counts do not pass
    /// [`CalibrationCounts::validate`]; [`CellError::TooFewRows`] if the
    /// positives or the negatives, overall or on one side of 0.5, are
    /// between 1 and `min_cell - 1`.
    pub fn coarsen(&mut self, min_cell: u64) -> Result<(), CellError> {
        let Some(found) = self.runs(min_cell)? else {
            return Ok(());
        };
        let mut coarse = self.clone();
        for run in found.iter().filter(|run| !run.is_empty()) {
            let kept = self.mean_prediction_bin(&run.bins);
            let rows = run.totals[0] + run.totals[1];
            let prediction_sum: f64 = self.prediction_sum[run.bins.clone()].iter().sum();
            move_into(
                &mut coarse.count,
                &run.bins,
                kept,
                rows,
                "calibration count",
            )?;
            move_into(
                &mut coarse.label_sum,
                &run.bins,
                kept,
                run.totals[0],
                "calibration label_sum",
            )?;
            coarse.prediction_sum[run.bins.clone()].fill(0.0);
            coarse.prediction_sum[kept] = prediction_sum;
        }
        *self = coarse;
        Ok(())
    }

    /// Checks that every count here may be released under a minimum cell
    /// size: the rows, positives and negatives, in total and in each bin,
    /// are each 0 or at least `min_cell`. `min_cell <= 1` checks only
    /// [`CalibrationCounts::validate`].
    ///
    /// # Errors
    /// As [`CalibrationCounts::coarsen`], and [`CellError::SmallCell`]
    /// naming the first vector with a cell of 1 to `min_cell - 1` rows.
    pub fn check_cells(&self, min_cell: u64) -> Result<(), CellError> {
        if self.runs(min_cell)?.is_some() {
            released(u128::from(self.total()), min_cell, "held-out rows")?;
            cells(self.count.iter().copied(), min_cell, "calibration count")?;
            cells(
                self.label_sum.iter().copied(),
                min_cell,
                "calibration label_sum",
            )?;
            cells(
                self.count.iter().zip(&self.label_sum).map(|(n, p)| n - p),
                min_cell,
                "calibration negatives (count - label_sum)",
            )?;
        }
        Ok(())
    }

    /// The checks shared by [`CalibrationCounts::coarsen`] and
    /// [`CalibrationCounts::check_cells`] and the runs to merge, or `None`
    /// if there is nothing to do (`min_cell <= 1` or no rows).
    fn runs(&self, min_cell: u64) -> Result<Option<Vec<Run<2>>>, CellError> {
        self.validate().map_err(CellError::Invalid)?;
        if min_cell <= 1 || self.total() == 0 {
            return Ok(None);
        }
        // `validate` has checked label_sum <= count.
        let cell = |b: usize| [self.label_sum[b], self.count[b] - self.label_sum[b]];
        let totals = |bins: Range<usize>| {
            bins.map(cell).fold([0u128; 2], |[p, n], [dp, dn]| {
                [p + u128::from(dp), n + u128::from(dn)]
            })
        };
        for class in totals(0..CALIBRATION_BINS) {
            released(class, min_cell, CLASS)?;
        }
        // 0.5 is the edge between bins 4 and 5.
        let split = (CALIBRATION_BINS as f64 * THRESHOLD) as usize;
        let mut found = Vec::new();
        for side in [0..split, split..CALIBRATION_BINS] {
            found.extend(
                runs(side, cell, min_cell).map_err(|_| CellError::TooFewRows {
                    what: "held-out rows of one class on one side of the 0.5 threshold",
                    min_cell,
                })?,
            );
        }
        Ok(Some(found))
    }

    /// The bin of the mean predicted probability of the rows in `bins`,
    /// kept among the bins that hold them (rounding could otherwise put a
    /// mean on an upper edge into the next bin).
    fn mean_prediction_bin(&self, bins: &Range<usize>) -> usize {
        let held = || bins.clone().filter(|&b| self.count[b] > 0);
        let (Some(first), Some(last)) = (held().next(), held().next_back()) else {
            return bins.start;
        };
        let rows: f64 = held().map(|b| self.count[b] as f64).sum();
        let sum: f64 = held().map(|b| self.prediction_sum[b]).sum();
        // `as` saturates, and the clamp keeps the result among the rows.
        ((sum / rows * CALIBRATION_BINS as f64) as usize).clamp(first, last)
    }
}

#[cfg(test)]
#[path = "calibration_tests.rs"]
mod tests;
