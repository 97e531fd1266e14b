//! Federated averaging: the mean of the updates weighted by row count.

use ndarray::{Array1, ArrayView1};

use crate::strategy::{AggregateError, Aggregator, Strategy, check_update};

/// A streaming weighted sum: O(parameters) memory however many updates.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightedSum {
    sum: Array1<f64>,
    total_weight: f64,
    count: usize,
}

impl WeightedSum {
    /// An empty sum of vectors of `dimension` values.
    pub fn new(dimension: usize) -> Self {
        WeightedSum {
            sum: Array1::zeros(dimension),
            total_weight: 0.0,
            count: 0,
        }
    }

    /// Adds `weight * update`.
    ///
    /// # Errors
    /// A wrong dimension, a non-finite value or a non-positive weight; the sum
    /// is unchanged then.
    pub fn add(&mut self, update: ArrayView1<'_, f64>, weight: f64) -> Result<(), AggregateError> {
        check_update(update, weight, self.sum.len())?;
        self.sum.scaled_add(weight, &update);
        self.total_weight += weight;
        self.count += 1;
        Ok(())
    }

    /// Vectors added so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Sum of the weights added so far.
    pub fn total_weight(&self) -> f64 {
        self.total_weight
    }

    /// The weighted mean, or `None` when nothing was added.
    pub fn mean(&self) -> Option<Array1<f64>> {
        (self.count > 0).then(|| &self.sum / self.total_weight)
    }
}

/// FedAvg (McMahan et al., 2017): updates weighted by their row counts.
#[derive(Clone, Copy, Debug, Default)]
pub struct FedAvg;

impl Strategy for FedAvg {
    fn name(&self) -> &'static str {
        "fedavg"
    }

    fn start_round(&self, dimension: usize) -> Box<dyn Aggregator> {
        Box::new(WeightedSum::new(dimension))
    }
}

impl Aggregator for WeightedSum {
    fn add(&mut self, update: ArrayView1<'_, f64>, weight: f64) -> Result<(), AggregateError> {
        WeightedSum::add(self, update, weight)
    }

    fn contributors(&self) -> usize {
        self.count
    }

    fn finish(self: Box<Self>) -> Option<Array1<f64>> {
        self.mean()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Strategy;
    use approx::assert_abs_diff_eq;
    use ndarray::aview1;
    use proptest::prelude::{prop, prop_assert, proptest};

    #[test]
    fn weighted_mean_by_hand() {
        let mut agg = FedAvg.start_round(2);
        agg.add(aview1(&[1.0, 0.0]), 1.0).unwrap();
        agg.add(aview1(&[4.0, 3.0]), 2.0).unwrap();
        assert_eq!(agg.contributors(), 2);
        let mean = agg.finish().unwrap();
        assert_abs_diff_eq!(mean[0], 3.0, epsilon = 1e-12);
        assert_abs_diff_eq!(mean[1], 2.0, epsilon = 1e-12);
    }

    #[test]
    fn empty_round_keeps_the_model() {
        assert_eq!(FedAvg.start_round(3).finish(), None);
    }

    #[test]
    fn bad_updates_are_refused_and_leave_the_sum_alone() {
        let mut sum = WeightedSum::new(2);
        sum.add(aview1(&[1.0, 1.0]), 1.0).unwrap();
        let before = sum.clone();
        assert_eq!(
            sum.add(aview1(&[1.0]), 1.0),
            Err(AggregateError::Dimension {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            sum.add(aview1(&[1.0, f64::INFINITY]), 1.0),
            Err(AggregateError::NonFinite { index: 1 })
        );
        assert_eq!(
            sum.add(aview1(&[1.0, 1.0]), 0.0),
            Err(AggregateError::Weight)
        );
        assert_eq!(sum, before);
    }

    proptest! {
        /// The mean lies inside the coordinate-wise range of the updates, and
        /// equal updates average to themselves.
        #[test]
        fn mean_is_a_convex_combination(
            updates in prop::collection::vec(
                (prop::collection::vec(-1e6f64..1e6, 3), 1u32..10_000), 1..20)
        ) {
            let mut sum = WeightedSum::new(3);
            for (u, w) in &updates {
                sum.add(aview1(u), f64::from(*w)).unwrap();
            }
            let mean = sum.mean().unwrap();
            for j in 0..3 {
                let lo = updates.iter().map(|(u, _)| u[j]).fold(f64::INFINITY, f64::min);
                let hi = updates.iter().map(|(u, _)| u[j]).fold(f64::NEG_INFINITY, f64::max);
                prop_assert!(mean[j] >= lo - 1e-6 && mean[j] <= hi + 1e-6);
            }
        }

        /// Splitting one site's rows into two sites with the same update
        /// leaves the weighted mean unchanged.
        #[test]
        fn splitting_a_site_changes_nothing(
            a in prop::collection::vec(-100f64..100.0, 4),
            b in prop::collection::vec(-100f64..100.0, 4),
            wa in 2u32..1000, wb in 1u32..1000,
        ) {
            let mut whole = WeightedSum::new(4);
            whole.add(aview1(&a), f64::from(wa)).unwrap();
            whole.add(aview1(&b), f64::from(wb)).unwrap();
            let mut split = WeightedSum::new(4);
            split.add(aview1(&a), f64::from(wa / 2)).unwrap();
            split.add(aview1(&a), f64::from(wa - wa / 2)).unwrap();
            split.add(aview1(&b), f64::from(wb)).unwrap();
            let (m1, m2) = (whole.mean().unwrap(), split.mean().unwrap());
            for j in 0..4 {
                prop_assert!((m1[j] - m2[j]).abs() < 1e-9);
            }
        }
    }
}
