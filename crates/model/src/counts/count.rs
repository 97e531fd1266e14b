//! Deviance, totals and squared errors of a count model's predictions.

use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use crate::check;
use crate::counts::evaluation::{EvaluationKind, Metric, MetricName, check_flat, whole};
use crate::error::ModelError;
use crate::family::{Poisson, half_deviance};
use crate::glm::check_labels;

/// Additive summary of a count model's (Poisson) predicted means on
/// held-out rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CountCounts {
    /// Number of rows.
    pub n: u64,
    /// Sum of the Poisson deviance `2 (y ln(y / μ) - (y - μ))` of the rows.
    pub deviance_sum: f64,
    /// Sum of the observed counts.
    pub sum_y: f64,
    /// Sum of the predicted means.
    pub sum_mu: f64,
    /// Sum of squared errors `(μ - y)²`.
    pub sse: f64,
}

impl CountCounts {
    /// Counts of predicted means `mu` against observed counts `y`. No rows
    /// gives empty counts.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if the lengths differ,
    /// [`ModelError::InvalidValues`] for means that are not finite and
    /// positive, and [`ModelError::InvalidLabels`] for counts that are not
    /// whole numbers `>= 0`.
    pub fn from_predictions(
        mu: ArrayView1<'_, f64>,
        y: ArrayView1<'_, f64>,
    ) -> Result<Self, ModelError> {
        check::length("counts", mu.len(), y.len())?;
        check::values("predicted means", "finite numbers > 0", mu, |m| {
            m.is_finite() && m > 0.0
        })?;
        check_labels(Poisson, y)?;
        let mut counts = CountCounts::default();
        for (&m, &t) in mu.iter().zip(y) {
            let error = m - t;
            counts.n = counts.n.saturating_add(1);
            counts.deviance_sum += 2.0 * half_deviance(m.ln(), m, t);
            counts.sum_y += t;
            counts.sum_mu += m;
            counts.sse += error * error;
        }
        Ok(counts)
    }

    /// Adds `other`'s rows to these.
    pub fn merge(&mut self, other: &CountCounts) {
        // Saturating: forged counts must not panic; `validate` refuses them.
        self.n = self.n.saturating_add(other.n);
        self.deviance_sum += other.deviance_sum;
        self.sum_y += other.sum_y;
        self.sum_mu += other.sum_mu;
        self.sse += other.sse;
    }

    /// Checks that the counts could have come from real rows: every sum
    /// finite and `>= 0`, and all zero when `n` is 0.
    ///
    /// # Errors
    /// [`ModelError::InvalidAggregate`] naming the first field that breaks a
    /// rule.
    pub fn validate(&self) -> Result<(), ModelError> {
        let sums = [
            ("deviance_sum", self.deviance_sum),
            ("sum_y", self.sum_y),
            ("sum_mu", self.sum_mu),
            ("sse", self.sse),
        ];
        for (what, value) in sums {
            if !(value.is_finite() && value >= 0.0) {
                return Err(ModelError::InvalidAggregate {
                    what,
                    allowed: "a finite number >= 0",
                });
            }
        }
        if self.n == 0 && sums.iter().any(|&(_, v)| v != 0.0) {
            return Err(ModelError::InvalidAggregate {
                what: "sums of zero rows",
                allowed: "zero",
            });
        }
        Ok(())
    }

    /// Mean Poisson deviance; `None` with no rows.
    pub fn mean_deviance(&self) -> Option<f64> {
        self.mean(self.deviance_sum)
    }

    /// Root mean squared error of the predicted means; `None` with no rows.
    pub fn rmse(&self) -> Option<f64> {
        self.mean(self.sse).map(f64::sqrt)
    }

    /// Total predicted over total observed count: 1 for a model whose
    /// predictions add up to what happened; `None` when nothing was
    /// observed.
    pub fn predicted_over_observed(&self) -> Option<f64> {
        (self.sum_y > 0.0).then(|| self.sum_mu / self.sum_y)
    }

    fn mean(&self, sum: f64) -> Option<f64> {
        (self.n > 0).then(|| sum / self.n as f64)
    }
}

/// Flat layout: `n, deviance_sum, sum_y, sum_mu, sse`.
impl EvaluationKind for CountCounts {
    const KIND: &'static str = "count";

    fn empty(_score_bins: usize) -> Result<Self, ModelError> {
        Ok(CountCounts::default())
    }

    fn from_predictions(
        predictions: ArrayView1<'_, f64>,
        labels: ArrayView1<'_, f64>,
        _score_bins: usize,
    ) -> Result<Self, ModelError> {
        CountCounts::from_predictions(predictions, labels)
    }

    fn merge_counts(&mut self, other: &Self) -> Result<(), ModelError> {
        self.merge(other);
        Ok(())
    }

    fn validate(&self) -> Result<(), ModelError> {
        CountCounts::validate(self)
    }

    fn rows(&self) -> u64 {
        self.n
    }

    fn flat_len(_score_bins: usize) -> usize {
        5
    }

    fn write_flat(&self, out: &mut Vec<f64>) {
        out.extend([
            self.n as f64,
            self.deviance_sum,
            self.sum_y,
            self.sum_mu,
            self.sse,
        ]);
    }

    fn read_flat(values: &[f64], score_bins: usize) -> Result<Self, ModelError> {
        check_flat(values, Self::flat_len(score_bins))?;
        let counts = CountCounts {
            n: whole(values[0], "n")?,
            deviance_sum: values[1],
            sum_y: values[2],
            sum_mu: values[3],
            sse: values[4],
        };
        CountCounts::validate(&counts)?;
        Ok(counts)
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![
            ("mean_deviance", self.mean_deviance()),
            ("rmse", self.rmse()),
            ("observed_total", (self.n > 0).then_some(self.sum_y)),
            ("predicted_total", (self.n > 0).then_some(self.sum_mu)),
            ("predicted_over_observed", self.predicted_over_observed()),
        ]
    }

    fn summary_metrics() -> [MetricName; 3] {
        [
            MetricName {
                key: "mean_deviance",
                label: "deviance",
            },
            MetricName {
                key: "rmse",
                label: "RMSE",
            },
            MetricName {
                key: "predicted_over_observed",
                label: "pred/obs",
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use ndarray::{Axis, aview1};

    use super::*;

    #[test]
    fn metrics_by_hand() {
        // y = 0, 2, 3 against mu = 1, 1, 3:
        // deviance 2 * (1 + (2 ln 2 - 1) + 0) = 4 ln 2; errors 1, -1, 0.
        let c = CountCounts::from_predictions(aview1(&[1.0, 1.0, 3.0]), aview1(&[0.0, 2.0, 3.0]))
            .unwrap();
        assert_eq!(c.n, 3);
        assert_relative_eq!(c.deviance_sum, 4.0 * 2f64.ln(), epsilon = 1e-14);
        assert_eq!((c.sum_y, c.sum_mu, c.sse), (5.0, 5.0, 2.0));
        assert_relative_eq!(c.mean_deviance().unwrap(), 4.0 * 2f64.ln() / 3.0);
        assert_relative_eq!(c.rmse().unwrap(), (2.0f64 / 3.0).sqrt());
        assert_eq!(c.predicted_over_observed(), Some(1.0));
        assert_eq!(c.headline().0.key, "mean_deviance");
        assert_eq!(c.headline().1, c.mean_deviance());
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn empty_counts_have_no_metrics() {
        let c = CountCounts::default();
        assert!(c.metrics().iter().all(|(_, v)| v.is_none()));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn merged_halves_equal_the_whole_and_the_flat_sum() {
        let mu = aview1(&[0.5, 1.5, 2.0, 4.0, 0.1]);
        let y = aview1(&[0.0, 1.0, 3.0, 4.0, 1.0]);
        let whole = CountCounts::from_predictions(mu, y).unwrap();
        let (mu_a, mu_b) = mu.split_at(Axis(0), 2);
        let (y_a, y_b) = y.split_at(Axis(0), 2);
        let a = CountCounts::from_predictions(mu_a, y_a).unwrap();
        let b = CountCounts::from_predictions(mu_b, y_b).unwrap();
        let mut merged = a;
        merged.merge(&b);
        assert_eq!(merged.n, whole.n);
        assert_relative_eq!(merged.deviance_sum, whole.deviance_sum, epsilon = 1e-14);
        assert_relative_eq!(merged.sse, whole.sse, epsilon = 1e-14);
        let (mut fa, mut fb) = (Vec::new(), Vec::new());
        a.write_flat(&mut fa);
        b.write_flat(&mut fb);
        let sum: Vec<f64> = fa.iter().zip(&fb).map(|(x, y)| x + y).collect();
        assert_eq!(CountCounts::read_flat(&sum, 0), Ok(merged));
    }

    #[test]
    fn bad_inputs_and_impossible_sums_are_refused() {
        assert!(matches!(
            CountCounts::from_predictions(aview1(&[1.0, 0.0]), aview1(&[1.0, 1.0])),
            Err(ModelError::InvalidValues { first: 1, .. })
        ));
        assert!(matches!(
            CountCounts::from_predictions(aview1(&[1.0, 1.0]), aview1(&[1.0, 0.5])),
            Err(ModelError::InvalidLabels { invalid: 1, .. })
        ));
        let good = CountCounts::from_predictions(aview1(&[1.0]), aview1(&[2.0])).unwrap();
        for (bad, field) in [
            (
                CountCounts {
                    deviance_sum: -1.0,
                    ..good
                },
                "deviance_sum",
            ),
            (
                CountCounts {
                    sum_mu: f64::NAN,
                    ..good
                },
                "sum_mu",
            ),
            (CountCounts { n: 0, ..good }, "sums of zero rows"),
        ] {
            assert!(
                matches!(bad.validate(), Err(ModelError::InvalidAggregate { what, .. }) if what == field),
                "{field}"
            );
        }
        assert!(matches!(
            CountCounts::read_flat(&[1.5, 0.0, 0.0, 0.0, 0.0], 0),
            Err(ModelError::InvalidAggregate { what: "n", .. })
        ));
    }
}
