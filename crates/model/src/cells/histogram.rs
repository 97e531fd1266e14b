//! The minimum cell size for [`ColumnHistogram`].

use super::{CellError, Run, cells, mean_bin, move_into, released, runs};
use crate::preprocess::ColumnHistogram;

/// What [`CellError`] calls a histogram's counts.
const COUNTS: &str = "histogram counts";

impl ColumnHistogram {
    /// Coarsens the counts so that every non-zero bin holds at least
    /// `min_cell` values.
    ///
    /// Runs of adjacent bins are merged until each run holds 0 or at least
    /// `min_cell` values; a run's values move into the bin holding the
    /// mean of its values' bin midpoints, and its other bins become 0. The
    /// total, the range and the bin count are unchanged, so the
    /// coordinator's checks against the column summary still hold; a median
    /// inside a run is read at the kept bin, which can move the
    /// [`ColumnHistogram::approximate_median`] by up to the run's extent
    /// beyond [`ColumnHistogram::median_error_bound`] (see
    /// [`crate::cells`]). `min_cell <= 1` changes nothing.
    ///
    /// # Errors
    /// On error nothing is changed.
    /// [`CellError::Invalid`] if the histogram does not pass
    /// [`ColumnHistogram::validate`]; [`CellError::TooFewRows`] if it
    /// counts between 1 and `min_cell - 1` values in all;
    /// [`CellError::Overflow`] if a run's total passes `u64::MAX` (the
    /// counts were not made from rows).
    pub fn coarsen(&mut self, min_cell: u64) -> Result<(), CellError> {
        let Some(found) = self.runs(min_cell)? else {
            return Ok(());
        };
        let mut counts = self.counts.clone();
        for run in found.iter().filter(|run| !run.is_empty()) {
            let kept = mean_bin(run.bins.clone(), |b| u128::from(self.counts[b]));
            move_into(&mut counts, &run.bins, kept, run.totals[0], COUNTS)?;
        }
        self.counts = counts;
        Ok(())
    }

    /// Checks that every bin holds 0 or at least `min_cell` values: the
    /// last check on a histogram about to leave. `min_cell <= 1` checks
    /// only [`ColumnHistogram::validate`].
    ///
    /// # Errors
    /// As [`ColumnHistogram::coarsen`], and [`CellError::SmallCell`] if a
    /// bin holds 1 to `min_cell - 1` values.
    pub fn check_cells(&self, min_cell: u64) -> Result<(), CellError> {
        self.validate().map_err(CellError::Invalid)?;
        cells(self.counts.iter().copied(), min_cell, COUNTS)
    }

    /// The checks of [`ColumnHistogram::coarsen`] and the runs to merge, or
    /// `None` if there is nothing to do (`min_cell <= 1` or no values).
    fn runs(&self, min_cell: u64) -> Result<Option<Vec<Run<1>>>, CellError> {
        self.validate().map_err(CellError::Invalid)?;
        let total: u128 = self.counts.iter().map(|&c| u128::from(c)).sum();
        if min_cell <= 1 || total == 0 {
            return Ok(None);
        }
        released(total, min_cell, "values counted in the histogram")?;
        let found = runs(0..self.counts.len(), |b| [self.counts[b]], min_cell).map_err(|_| {
            CellError::TooFewRows {
                what: "values counted in the histogram",
                min_cell,
            }
        })?;
        Ok(Some(found))
    }
}

#[cfg(test)]
#[path = "histogram_tests.rs"]
mod tests;
