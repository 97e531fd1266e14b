//! The preprocessing's sums. Under secure aggregation both statistics
//! passes are sums, laid out by `medfed_model::preprocess` (row and column
//! counts with coarse ranges as one-hot grid positions, then range-scaled
//! sums and median histograms over the pooled ranges); in clear the median
//! histograms of every member are summed bin by bin.

use medfed_model::ModelError;
use medfed_model::preprocess::{
    ColumnHistogram, ColumnSpec, ColumnSummary, HistogramPlan, PooledCounts, RowCounts,
    moments_len, moments_to_masked, statistics_from_masked, statistics_len, statistics_to_masked,
};

use super::{LayoutError, Summed, check_finite, check_len, whole};
use crate::submission::{HistogramReport, StatisticsReport};

fn model_error(layout: &'static str) -> impl Fn(ModelError) -> LayoutError {
    move |e| LayoutError::invalid(layout, e)
}

const STATISTICS: &str = "summed statistics";

/// The first pass (see `medfed_model::preprocess::statistics_to_masked`):
/// the shape is the task's columns.
impl Summed for StatisticsReport {
    type Shape = [ColumnSpec];
    type Sum = PooledCounts;

    fn len(columns: &[ColumnSpec]) -> usize {
        statistics_len(columns)
    }

    fn write(&self, columns: &[ColumnSpec], out: &mut Vec<f64>) -> Result<(), LayoutError> {
        let rows = RowCounts {
            train: self.train_rows,
            holdout: self.holdout_rows,
            missing_target: self.rows_missing_target,
        };
        let values = statistics_to_masked(columns, &self.summaries, rows)
            .map_err(model_error(STATISTICS))?;
        out.extend(values);
        Ok(())
    }

    /// # Errors
    /// As `medfed_model::preprocess::statistics_from_masked`.
    fn read(columns: &[ColumnSpec], values: &[f64]) -> Result<PooledCounts, LayoutError> {
        statistics_from_masked(columns, values).map_err(model_error(STATISTICS))
    }
}

/// The second statistics pass at one member: its exact column sums, to be
/// scaled to the pooled ranges, and the histograms of the columns imputed
/// by their median.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnMoments {
    /// The member's own column summaries.
    pub summaries: Vec<ColumnSummary>,
    /// Its histograms over the pooled ranges of the median columns.
    pub histograms: Vec<Option<ColumnHistogram>>,
}

/// The layout of the second pass: the task's columns and the plan of the
/// pooled ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct MomentsShape {
    /// The task's columns.
    pub columns: Vec<ColumnSpec>,
    /// The pooled ranges and median bins.
    pub plan: HistogramPlan,
}

const MOMENTS: &str = "summed moments";

/// The second pass (see `medfed_model::preprocess::moments_to_masked`);
/// the sum is finished with the first pass's `PooledCounts::finish`.
impl Summed for ColumnMoments {
    type Shape = MomentsShape;
    type Sum = Vec<f64>;

    /// 0 for a plan that does not fit the columns (nothing can be summed).
    fn len(shape: &MomentsShape) -> usize {
        moments_len(&shape.columns, &shape.plan).unwrap_or(0)
    }

    fn write(&self, shape: &MomentsShape, out: &mut Vec<f64>) -> Result<(), LayoutError> {
        let values = moments_to_masked(
            &shape.columns,
            &shape.plan,
            &self.summaries,
            &self.histograms,
        )
        .map_err(model_error(MOMENTS))?;
        out.extend(values);
        Ok(())
    }

    /// # Errors
    /// A wrong length or non-finite values.
    fn read(shape: &MomentsShape, values: &[f64]) -> Result<Vec<f64>, LayoutError> {
        let expected = moments_len(&shape.columns, &shape.plan).map_err(model_error(MOMENTS))?;
        check_finite(MOMENTS, values, expected)?;
        Ok(values.to_vec())
    }
}

const HISTOGRAMS: &str = "summed histograms";

/// The clear histogram pass: for each column the plan gives a range, its
/// bin counts; the shape is the plan.
impl Summed for HistogramReport {
    type Shape = HistogramPlan;
    type Sum = Vec<Option<ColumnHistogram>>;

    fn len(plan: &HistogramPlan) -> usize {
        plan.ranges.iter().flatten().count() * plan.bins
    }

    fn write(&self, plan: &HistogramPlan, out: &mut Vec<f64>) -> Result<(), LayoutError> {
        check_len("histograms", plan.ranges.len(), self.histograms.len())?;
        for (histogram, range) in self.histograms.iter().zip(&plan.ranges) {
            match (histogram, range) {
                (None, None) => {}
                (Some(h), Some(r)) if h.min == r.min && h.max == r.max => {
                    check_len("histogram bins", plan.bins, h.counts.len())?;
                    out.extend(h.counts.iter().map(|&c| c as f64));
                }
                (Some(_), Some(_)) => {
                    return Err(LayoutError::Invalid {
                        layout: HISTOGRAMS,
                        reason: "a histogram does not use the plan's range".into(),
                    });
                }
                (h, _) => {
                    return Err(LayoutError::Length {
                        layout: "histogram presence",
                        expected: usize::from(range.is_some()),
                        got: usize::from(h.is_some()),
                    });
                }
            }
        }
        Ok(())
    }

    /// # Errors
    /// A wrong length, or a count that is not a whole number >= 0.
    fn read(plan: &HistogramPlan, values: &[f64]) -> Result<Self::Sum, LayoutError> {
        check_len(HISTOGRAMS, Self::len(plan), values.len())?;
        let mut bins = values.chunks(plan.bins.max(1));
        plan.ranges
            .iter()
            .map(|range| {
                range
                    .map(|range| {
                        let mut histogram = ColumnHistogram::empty(range, plan.bins);
                        let counts = bins.next().unwrap_or_default();
                        for (slot, &v) in histogram.counts.iter_mut().zip(counts) {
                            *slot = whole(v, HISTOGRAMS)?;
                        }
                        Ok(histogram)
                    })
                    .transpose()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summed::add_into;
    use medfed_model::preprocess::{ValueRange, merge_histograms};

    #[test]
    fn summed_histograms_are_the_merged_histograms() {
        let range = ValueRange { min: 0.0, max: 4.0 };
        let plan = HistogramPlan {
            bins: 4,
            ranges: vec![Some(range), None],
        };
        let site = |counts: Vec<u64>| HistogramReport {
            step: 2,
            histograms: vec![
                Some(ColumnHistogram {
                    min: 0.0,
                    max: 4.0,
                    counts,
                }),
                None,
            ],
        };
        let (a, b) = (site(vec![1, 0, 2, 3]), site(vec![0, 4, 1, 1]));
        let mut sum = vec![0.0; HistogramReport::len(&plan)];
        add_into(&mut sum, &a.to_vector(&plan).unwrap()).unwrap();
        add_into(&mut sum, &b.to_vector(&plan).unwrap()).unwrap();
        let mut merged = a.histograms.clone();
        merge_histograms(&mut merged, &b.histograms).unwrap();
        assert_eq!(HistogramReport::read(&plan, &sum).unwrap(), merged);
        // Another range, other bins or a missing column do not fit.
        let mut other = a.clone();
        other.histograms[0].as_mut().unwrap().max = 5.0;
        assert!(other.to_vector(&plan).is_err());
        let mut other = a.clone();
        other.histograms[0].as_mut().unwrap().counts.pop();
        assert!(other.to_vector(&plan).is_err());
        let mut other = a;
        other.histograms[0] = None;
        assert!(other.to_vector(&plan).is_err());
        assert!(HistogramReport::read(&plan, &sum[1..]).is_err());
    }
}
