//! Calibration of a logistic model: how well predicted probabilities match
//! observed rates, from additive per-bin sums.

use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use crate::check;
use crate::error::ModelError;
use crate::kind::ModelKind;
use crate::regression::check_labels;

/// Number of calibration bins: deciles of predicted probability.
pub const CALIBRATION_BINS: usize = 10;

/// Relative slack for checking that a bin's prediction sum lies within the
/// bin, which summation rounding can break by a few ulps.
const SUM_SLACK: f64 = 1e-9;

/// Additive calibration summary of a logistic model on held-out rows.
///
/// Bin `b` holds predictions `p` with `floor(10 p) == b` (`p == 1` goes to
/// the last bin), i.e. `[b/10, (b+1)/10)`. Per bin: the number of rows, the
/// sum of their predicted probabilities and the number of positive labels
/// (the sum of the 0/1 labels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationCounts {
    /// Rows per bin.
    pub count: Vec<u64>,
    /// Sum of predicted probabilities per bin.
    pub prediction_sum: Vec<f64>,
    /// Sum of labels (positives) per bin.
    pub label_sum: Vec<u64>,
}

/// One non-empty bin of a calibration summary.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationBin {
    /// Lower end of the bin's probability range.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// Rows in the bin.
    pub count: u64,
    /// Mean predicted probability.
    pub mean_predicted: f64,
    /// Fraction of the rows that are positive.
    pub observed_rate: f64,
}

impl Default for CalibrationCounts {
    fn default() -> Self {
        CalibrationCounts {
            count: vec![0; CALIBRATION_BINS],
            prediction_sum: vec![0.0; CALIBRATION_BINS],
            label_sum: vec![0; CALIBRATION_BINS],
        }
    }
}

impl CalibrationCounts {
    /// Counts of predicted `probabilities` against 0/1 `labels`. No rows
    /// gives empty counts.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if the lengths differ,
    /// [`ModelError::InvalidValues`] for probabilities outside `[0, 1]`,
    /// [`ModelError::InvalidLabels`] for labels other than 0 or 1.
    pub fn from_scores(
        probabilities: ArrayView1<'_, f64>,
        labels: ArrayView1<'_, f64>,
    ) -> Result<Self, ModelError> {
        check::length("labels", probabilities.len(), labels.len())?;
        check::probabilities("probabilities", probabilities)?;
        check_labels(ModelKind::Logistic, labels)?;
        let mut counts = CalibrationCounts::default();
        for (&p, &y) in probabilities.iter().zip(labels) {
            let b = bin(p);
            // Row counts below u64::MAX are all an in-memory vector can hold.
            counts.count[b] += 1;
            counts.prediction_sum[b] += p;
            counts.label_sum[b] += u64::from(y == 1.0);
        }
        Ok(counts)
    }

    /// Adds `other`'s rows to these. On error nothing is changed.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if either does not have
    /// [`CALIBRATION_BINS`] bins, [`ModelError::Overflow`] if a count would
    /// pass `u64::MAX`.
    pub fn merge(&mut self, other: &CalibrationCounts) -> Result<(), ModelError> {
        self.check_lengths()?;
        other.check_lengths()?;
        let overflow = || ModelError::Overflow {
            what: "merged calibration counts",
        };
        let add = |a: &[u64], b: &[u64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| x.checked_add(*y).ok_or_else(overflow))
                .collect::<Result<Vec<u64>, _>>()
        };
        let count = add(&self.count, &other.count)?;
        let label_sum = add(&self.label_sum, &other.label_sum)?;
        for (a, b) in self.prediction_sum.iter_mut().zip(&other.prediction_sum) {
            *a += b;
        }
        self.count = count;
        self.label_sum = label_sum;
        Ok(())
    }

    /// Checks counts received from elsewhere: [`CALIBRATION_BINS`] bins;
    /// per bin, at most `count` positives, and a finite prediction sum
    /// between `count` times the bin's lower and upper ends (with slack for
    /// rounding).
    ///
    /// # Errors
    /// [`ModelError::Dimension`] for a wrong number of bins,
    /// [`ModelError::InvalidValues`] naming the first bad bin.
    pub fn validate(&self) -> Result<(), ModelError> {
        self.check_lengths()?;
        check::entries(
            "calibration bins",
            "bins with label_sum <= count and prediction_sum within count times the bin's range",
            (0..CALIBRATION_BINS).map(|b| {
                let (n, sum) = (self.count[b] as f64, self.prediction_sum[b]);
                let (lower, upper) = bounds(b);
                let slack = SUM_SLACK * n;
                self.label_sum[b] <= self.count[b]
                    && sum.is_finite()
                    && sum >= n * lower - slack
                    && sum <= n * upper + slack
            }),
        )
    }

    /// Number of rows.
    pub fn total(&self) -> u64 {
        self.count
            .iter()
            .fold(0u64, |total, &c| total.saturating_add(c))
    }

    /// Mean predicted probability against observed positive rate, for each
    /// non-empty bin in order.
    pub fn summary(&self) -> Vec<CalibrationBin> {
        self.count
            .iter()
            .zip(&self.prediction_sum)
            .zip(&self.label_sum)
            .enumerate()
            .filter(|&(_, ((&n, _), _))| n > 0)
            .map(|(b, ((&n, &sum), &positives))| {
                let (lower, upper) = bounds(b);
                CalibrationBin {
                    lower,
                    upper,
                    count: n,
                    mean_predicted: sum / n as f64,
                    observed_rate: positives as f64 / n as f64,
                }
            })
            .collect()
    }

    /// Expected calibration error: the row-weighted mean over bins of
    /// `|mean predicted - observed rate|`. `None` with no rows.
    pub fn expected_calibration_error(&self) -> Option<f64> {
        let bins = self.summary();
        let total: f64 = bins.iter().map(|b| b.count as f64).sum();
        (total > 0.0).then(|| {
            bins.iter()
                .map(|b| b.count as f64 * (b.mean_predicted - b.observed_rate).abs())
                .sum::<f64>()
                / total
        })
    }

    fn check_lengths(&self) -> Result<(), ModelError> {
        check::length("calibration count bins", CALIBRATION_BINS, self.count.len())?;
        check::length(
            "calibration prediction_sum bins",
            CALIBRATION_BINS,
            self.prediction_sum.len(),
        )?;
        check::length(
            "calibration label_sum bins",
            CALIBRATION_BINS,
            self.label_sum.len(),
        )
    }
}

/// The bin of a probability in `[0, 1]`.
fn bin(p: f64) -> usize {
    ((p * CALIBRATION_BINS as f64) as usize).min(CALIBRATION_BINS - 1)
}

/// Lower and upper end of bin `b`.
fn bounds(b: usize) -> (f64, f64) {
    let width = 1.0 / CALIBRATION_BINS as f64;
    (b as f64 * width, (b + 1) as f64 * width)
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use ndarray::{Array1, aview1};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn counts_by_hand() {
        // 0.05 and 0.08 in bin 0 (one positive); 0.55 in bin 5 (positive);
        // 0.95 and 1.0 in bin 9 (both positive).
        let p = aview1(&[0.05, 0.08, 0.55, 0.95, 1.0]);
        let y = aview1(&[0.0, 1.0, 1.0, 1.0, 1.0]);
        let c = CalibrationCounts::from_scores(p, y).unwrap();
        assert_eq!(c.count, vec![2, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(c.label_sum, vec![1, 0, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!(c.total(), 5);
        assert_eq!(c.validate(), Ok(()));
        let s = c.summary();
        assert_eq!(s.len(), 3);
        assert_relative_eq!(s[0].mean_predicted, 0.065, epsilon = 1e-15);
        assert_relative_eq!(s[0].observed_rate, 0.5);
        assert_relative_eq!((s[0].lower, s[0].upper).1, 0.1);
        assert_relative_eq!(s[2].mean_predicted, 0.975, epsilon = 1e-15);
        assert_relative_eq!(s[2].observed_rate, 1.0);
        // ECE = (2 * 0.435 + 1 * 0.45 + 2 * 0.025) / 5.
        assert_relative_eq!(
            c.expected_calibration_error().unwrap(),
            (2.0 * 0.435 + 0.45 + 2.0 * 0.025) / 5.0,
            epsilon = 1e-12
        );
        assert_eq!(
            CalibrationCounts::default().expected_calibration_error(),
            None
        );
    }

    #[test]
    fn refuses_bad_inputs_and_counts() {
        assert!(matches!(
            CalibrationCounts::from_scores(aview1(&[1.5]), aview1(&[1.0])),
            Err(ModelError::InvalidValues { .. })
        ));
        assert!(matches!(
            CalibrationCounts::from_scores(aview1(&[0.5]), aview1(&[2.0])),
            Err(ModelError::InvalidLabels { .. })
        ));
        assert!(matches!(
            CalibrationCounts::from_scores(aview1(&[0.5]), aview1(&[])),
            Err(ModelError::Dimension { .. })
        ));
        let good = CalibrationCounts::from_scores(aview1(&[0.25]), aview1(&[1.0])).unwrap();
        let mut bad = good.clone();
        bad.label_sum[2] = 2;
        assert!(matches!(
            bad.validate(),
            Err(ModelError::InvalidValues { first: 2, .. })
        ));
        let mut bad = good.clone();
        bad.prediction_sum[2] = 0.9; // outside [0.2, 0.3] for one row
        assert!(matches!(
            bad.validate(),
            Err(ModelError::InvalidValues { first: 2, .. })
        ));
        let mut bad = good.clone();
        bad.count.push(0);
        assert!(matches!(bad.validate(), Err(ModelError::Dimension { .. })));
        let mut target = good.clone();
        assert!(target.merge(&bad).is_err());
        assert_eq!(target, good);
        let mut huge = CalibrationCounts::default();
        huge.count[2] = u64::MAX;
        assert!(matches!(
            target.merge(&huge),
            Err(ModelError::Overflow { .. })
        ));
        assert_eq!(target, good);
    }

    proptest! {
        #[test]
        fn merged_parts_equal_the_whole(
            rows in proptest::collection::vec((0.0f64..=1.0, any::<bool>()), 0..100),
            cut in 0.0f64..=1.0,
        ) {
            let p: Array1<f64> = rows.iter().map(|r| r.0).collect();
            let y: Array1<f64> = rows.iter().map(|r| f64::from(u8::from(r.1))).collect();
            let split = (rows.len() as f64 * cut) as usize;
            let whole = CalibrationCounts::from_scores(p.view(), y.view()).unwrap();
            let mut merged =
                CalibrationCounts::from_scores(p.slice_axis(ndarray::Axis(0), (..split).into()), y.slice_axis(ndarray::Axis(0), (..split).into())).unwrap();
            merged
                .merge(&CalibrationCounts::from_scores(p.slice_axis(ndarray::Axis(0), (split..).into()), y.slice_axis(ndarray::Axis(0), (split..).into())).unwrap())
                .unwrap();
            prop_assert!(merged.validate().is_ok());
            prop_assert_eq!(&merged.count, &whole.count);
            prop_assert_eq!(&merged.label_sum, &whole.label_sum);
            for (a, b) in merged.prediction_sum.iter().zip(&whole.prediction_sum) {
                prop_assert!((a - b).abs() <= 1e-12 * b.max(1.0));
            }
            prop_assert_eq!(merged.total(), rows.len() as u64);
        }
    }
}
