//! Error sums and target moments of a linear model's predictions.

use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use crate::check;
use crate::counts::evaluation::{EvaluationKind, Metric, MetricName, check_flat, whole};
use crate::error::ModelError;
use crate::numeric::negligible_variance;

/// Relative slack for the Cauchy–Schwarz check `sum_y^2 <= n * sum_y2`,
/// which rounding can break by about `n * f64::EPSILON` for near-constant
/// targets.
const MOMENT_SLACK: f64 = 1e-6;

/// Additive summary of a linear model's predictions on held-out rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RegressionCounts {
    /// Number of rows.
    pub n: u64,
    /// Sum of squared errors.
    pub sse: f64,
    /// Sum of absolute errors.
    pub sae: f64,
    /// Sum of targets.
    pub sum_y: f64,
    /// Sum of squared targets.
    pub sum_y2: f64,
}

impl RegressionCounts {
    /// Adds one row. Non-finite values make the sums non-finite, which
    /// [`RegressionCounts::validate`] reports; use
    /// [`RegressionCounts::from_predictions`] to refuse them up front.
    pub fn add(&mut self, pred: f64, y: f64) {
        let error = pred - y;
        self.n = self.n.saturating_add(1);
        self.sse += error * error;
        self.sae += error.abs();
        self.sum_y += y;
        self.sum_y2 += y * y;
    }

    /// Counts of predictions `pred` against targets `y`. No rows gives empty
    /// counts.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if the lengths differ and
    /// [`ModelError::InvalidValues`] for non-finite predictions or targets.
    pub fn from_predictions(
        pred: ArrayView1<'_, f64>,
        y: ArrayView1<'_, f64>,
    ) -> Result<Self, ModelError> {
        check::length("targets", pred.len(), y.len())?;
        check::finite("predictions", pred)?;
        check::finite("targets", y)?;
        let mut counts = RegressionCounts::default();
        for (&p, &t) in pred.iter().zip(y) {
            counts.add(p, t);
        }
        Ok(counts)
    }

    /// Adds `other`'s rows to these.
    pub fn merge(&mut self, other: &RegressionCounts) {
        // Saturating: a forged count must not panic the coordinator; such
        // counts are refused by `validate` at the wire.
        self.n = self.n.saturating_add(other.n);
        self.sse += other.sse;
        self.sae += other.sae;
        self.sum_y += other.sum_y;
        self.sum_y2 += other.sum_y2;
    }

    /// Checks that the counts could have come from finite rows: all sums
    /// finite, `sse`, `sae` and `sum_y2` non-negative, all zero when `n` is 0,
    /// and `sum_y^2 <= n * sum_y2` (Cauchy–Schwarz, with slack for rounding).
    ///
    /// # Errors
    /// [`ModelError::InvalidAggregate`] naming the first field that breaks a
    /// rule.
    pub fn validate(&self) -> Result<(), ModelError> {
        let invalid = |what, allowed| Err(ModelError::InvalidAggregate { what, allowed });
        let non_negative = "a finite number >= 0";
        for (what, value) in [
            ("sse", self.sse),
            ("sae", self.sae),
            ("sum_y2", self.sum_y2),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                return invalid(what, non_negative);
            }
        }
        if !self.sum_y.is_finite() {
            return invalid("sum_y", "a finite number");
        }
        let sums = [self.sse, self.sae, self.sum_y, self.sum_y2];
        if self.n == 0 && sums.iter().any(|&v| v != 0.0) {
            return invalid("sums of zero rows", "zero");
        }
        let n = self.n as f64;
        if self.sum_y * self.sum_y > n * self.sum_y2 * (1.0 + MOMENT_SLACK) {
            return invalid("sum_y", "at most sqrt(n * sum_y2) in magnitude");
        }
        Ok(())
    }

    /// Mean squared error; `None` with no rows.
    pub fn mse(&self) -> Option<f64> {
        self.mean(self.sse)
    }

    /// Root mean squared error; `None` with no rows.
    pub fn rmse(&self) -> Option<f64> {
        self.mse().map(f64::sqrt)
    }

    /// Mean absolute error; `None` with no rows.
    pub fn mae(&self) -> Option<f64> {
        self.mean(self.sae)
    }

    /// Coefficient of determination `1 - sse / SS_tot`, with
    /// `SS_tot = sum_y2 - sum_y^2 / n`. `None` with no rows or when the
    /// targets have zero (or negligible: below `1e-12` of their mean square)
    /// variance, where R² is undefined.
    pub fn r2(&self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let ss_tot = self.sum_y2 - self.sum_y * self.sum_y / self.n as f64;
        if negligible_variance(ss_tot, self.sum_y2) {
            return None;
        }
        Some(1.0 - self.sse / ss_tot)
    }

    fn mean(&self, sum: f64) -> Option<f64> {
        (self.n > 0).then(|| sum / self.n as f64)
    }
}

/// Flat layout: `n, sse, sae, sum_y, sum_y2`.
impl EvaluationKind for RegressionCounts {
    const KIND: &'static str = "regression";

    fn empty(_score_bins: usize) -> Result<Self, ModelError> {
        Ok(RegressionCounts::default())
    }

    fn from_predictions(
        predictions: ArrayView1<'_, f64>,
        labels: ArrayView1<'_, f64>,
        _score_bins: usize,
    ) -> Result<Self, ModelError> {
        RegressionCounts::from_predictions(predictions, labels)
    }

    fn merge_counts(&mut self, other: &Self) -> Result<(), ModelError> {
        self.merge(other);
        Ok(())
    }

    fn validate(&self) -> Result<(), ModelError> {
        RegressionCounts::validate(self)
    }

    fn rows(&self) -> u64 {
        self.n
    }

    fn flat_len(_score_bins: usize) -> usize {
        5
    }

    fn write_flat(&self, out: &mut Vec<f64>) {
        out.extend([self.n as f64, self.sse, self.sae, self.sum_y, self.sum_y2]);
    }

    fn read_flat(values: &[f64], score_bins: usize) -> Result<Self, ModelError> {
        check_flat(values, Self::flat_len(score_bins))?;
        let counts = RegressionCounts {
            n: whole(values[0], "n")?,
            sse: values[1],
            sae: values[2],
            sum_y: values[3],
            sum_y2: values[4],
        };
        RegressionCounts::validate(&counts)?;
        Ok(counts)
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![
            ("mse", self.mse()),
            ("rmse", self.rmse()),
            ("mae", self.mae()),
            ("r2", self.r2()),
        ]
    }

    fn summary_metrics() -> [MetricName; 3] {
        [
            MetricName {
                key: "r2",
                label: "R²",
            },
            MetricName {
                key: "rmse",
                label: "RMSE",
            },
            MetricName {
                key: "mae",
                label: "MAE",
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use ndarray::{Array1, Axis, aview1};

    use super::*;
    use crate::metrics;
    use crate::rng::SplitMix64;

    #[test]
    fn metrics_by_hand() {
        let y = aview1(&[1.0, 2.0, 3.0, 4.0]);
        let pred = aview1(&[1.5, 2.0, 2.0, 4.0]);
        let c = RegressionCounts::from_predictions(pred, y).unwrap();
        assert_eq!(c.n, 4);
        assert_relative_eq!(c.sse, 1.25);
        assert_relative_eq!(c.sae, 1.5);
        assert_relative_eq!(c.sum_y, 10.0);
        assert_relative_eq!(c.sum_y2, 30.0);
        assert_relative_eq!(c.mse().unwrap(), 0.3125);
        assert_relative_eq!(c.rmse().unwrap(), 0.3125f64.sqrt());
        assert_relative_eq!(c.mae().unwrap(), 0.375);
        // SS_tot = 30 - 100 / 4 = 5.
        assert_relative_eq!(c.r2().unwrap(), 0.75, epsilon = 1e-12);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn empty_and_constant_targets_have_no_r2() {
        let empty = RegressionCounts::default();
        assert_eq!((empty.mse(), empty.mae(), empty.r2()), (None, None, None));
        assert_eq!(empty.validate(), Ok(()));
        let constant =
            RegressionCounts::from_predictions(aview1(&[1.0, 2.0, 3.0]), aview1(&[7.1; 3]))
                .unwrap();
        assert_eq!(constant.r2(), None);
        assert!(constant.mse().is_some());
    }

    #[test]
    fn r2_equals_the_exact_metric() {
        let mut rng = SplitMix64::new(11);
        let y: Array1<f64> = (0..300).map(|_| 50.0 + 10.0 * rng.unit()).collect();
        let pred: Array1<f64> = y.iter().map(|&t| t + 3.0 * (rng.unit() - 0.5)).collect();
        let c = RegressionCounts::from_predictions(pred.view(), y.view()).unwrap();
        let exact = metrics::r2(pred.view(), y.view()).unwrap().unwrap();
        assert_relative_eq!(c.r2().unwrap(), exact, epsilon = 1e-9);
        assert_relative_eq!(
            c.mse().unwrap(),
            metrics::mse(pred.view(), y.view()).unwrap(),
            max_relative = 1e-12
        );
    }

    #[test]
    fn merged_halves_equal_the_whole() {
        let mut rng = SplitMix64::new(12);
        let y: Array1<f64> = (0..101).map(|_| rng.unit() * 4.0 - 2.0).collect();
        let pred: Array1<f64> = (0..101).map(|_| rng.unit()).collect();
        let whole = RegressionCounts::from_predictions(pred.view(), y.view()).unwrap();
        let (pred_a, pred_b) = pred.view().split_at(Axis(0), 40);
        let (y_a, y_b) = y.view().split_at(Axis(0), 40);
        let mut merged = RegressionCounts::from_predictions(pred_a, y_a).unwrap();
        merged.merge(&RegressionCounts::from_predictions(pred_b, y_b).unwrap());
        assert_eq!(merged.n, whole.n);
        for (a, b) in [
            (merged.sse, whole.sse),
            (merged.sae, whole.sae),
            (merged.sum_y, whole.sum_y),
            (merged.sum_y2, whole.sum_y2),
        ] {
            assert_relative_eq!(a, b, epsilon = 1e-12, max_relative = 1e-12);
        }
    }

    #[test]
    fn validate_refuses_impossible_sums() {
        let good =
            RegressionCounts::from_predictions(aview1(&[1.0, 2.0]), aview1(&[0.0, 4.0])).unwrap();
        for (bad, field) in [
            (RegressionCounts { sse: -1.0, ..good }, "sse"),
            (
                RegressionCounts {
                    sae: f64::NAN,
                    ..good
                },
                "sae",
            ),
            (
                RegressionCounts {
                    sum_y: f64::INFINITY,
                    ..good
                },
                "sum_y",
            ),
            (
                RegressionCounts {
                    sum_y2: 1.0,
                    ..good
                },
                "sum_y",
            ),
            (RegressionCounts { n: 0, ..good }, "sums of zero rows"),
        ] {
            assert!(
                matches!(bad.validate(), Err(ModelError::InvalidAggregate { what, .. }) if what == field),
                "{field}: {:?}",
                bad.validate()
            );
        }
    }

    #[test]
    fn from_predictions_refuses_bad_input() {
        assert!(matches!(
            RegressionCounts::from_predictions(aview1(&[1.0]), aview1(&[1.0, 2.0])),
            Err(ModelError::Dimension { .. })
        ));
        assert!(matches!(
            RegressionCounts::from_predictions(aview1(&[1.0, f64::NAN]), aview1(&[1.0, 2.0])),
            Err(ModelError::InvalidValues {
                what: "predictions",
                first: 1,
                ..
            })
        ));
    }
}
