//! Aggregation rules that a few faulty or malicious members cannot drag far:
//! the coordinate-wise median and the coordinate-wise trimmed mean (Yin et
//! al., "Byzantine-robust distributed learning", ICML 2018), and norm
//! clipping, which wraps any other rule.
//!
//! Median and trimmed mean must see every update of a round at once, so
//! unlike [`FedAvg`](crate::FedAvg) they hold O(nodes x parameters) memory,
//! and they ignore row-count weights (a weight is a claim the member makes,
//! and a hostile member would claim a large one). Neither works under secure
//! aggregation, where the coordinator only ever sees the sum; norm clipping
//! then has to happen on the node side, before masking.

use ndarray::{Array1, ArrayView1};

use crate::strategy::{AggregateError, Aggregator, Strategy, check_update};

/// All of a round's updates, kept for an order statistic.
struct Collected {
    dimension: usize,
    updates: Vec<Array1<f64>>,
    /// Share of updates dropped at each end of every coordinate.
    trim: f64,
}

impl Collected {
    fn new(dimension: usize, trim: f64) -> Self {
        Collected {
            dimension,
            updates: Vec::new(),
            trim,
        }
    }
}

impl Aggregator for Collected {
    fn add(&mut self, update: ArrayView1<'_, f64>, weight: f64) -> Result<(), AggregateError> {
        check_update(update, weight, self.dimension)?;
        self.updates.push(update.to_owned());
        Ok(())
    }

    fn contributors(&self) -> usize {
        self.updates.len()
    }

    fn finish(self: Box<Self>) -> Option<Array1<f64>> {
        let n = self.updates.len();
        if n == 0 {
            return None;
        }
        let mut column = vec![0.0; n];
        let mut out = Array1::zeros(self.dimension);
        for (j, value) in out.iter_mut().enumerate() {
            for (slot, update) in column.iter_mut().zip(&self.updates) {
                *slot = update[j];
            }
            column.sort_unstable_by(f64::total_cmp);
            *value = if self.trim < 0.0 {
                median_of_sorted(&column)
            } else {
                trimmed_mean_of_sorted(&column, self.trim)
            };
        }
        Some(out)
    }
}

fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Mean after dropping `floor(trim * n)` values at each end, never all of
/// them (at least one value, or two for an even count, remain).
fn trimmed_mean_of_sorted(sorted: &[f64], trim: f64) -> f64 {
    let n = sorted.len();
    let cut = ((trim * n as f64).floor() as usize).min((n - 1) / 2);
    let kept = &sorted[cut..n - cut];
    kept.iter().sum::<f64>() / kept.len() as f64
}

/// The coordinate-wise median of the updates.
#[derive(Clone, Copy, Debug, Default)]
pub struct Median;

impl Strategy for Median {
    fn name(&self) -> &'static str {
        "median"
    }

    fn start_round(&self, dimension: usize) -> Box<dyn Aggregator> {
        Box::new(Collected::new(dimension, -1.0))
    }
}

/// The coordinate-wise mean after dropping the `trim` share of the lowest and
/// of the highest values (e.g. 0.1 drops 10% at each end).
#[derive(Clone, Copy, Debug)]
pub struct TrimmedMean {
    trim: f64,
}

impl TrimmedMean {
    /// A trimmed mean dropping `trim` at each end.
    ///
    /// # Errors
    /// `trim` outside `[0, 0.5)`, returned as the offending value.
    pub fn new(trim: f64) -> Result<Self, f64> {
        if (0.0..0.5).contains(&trim) {
            Ok(TrimmedMean { trim })
        } else {
            Err(trim)
        }
    }
}

impl Strategy for TrimmedMean {
    fn name(&self) -> &'static str {
        "trimmed-mean"
    }

    fn start_round(&self, dimension: usize) -> Box<dyn Aggregator> {
        Box::new(Collected::new(dimension, self.trim))
    }
}

/// Wraps another strategy: every update whose Euclidean norm exceeds
/// `max_norm` is scaled down to that norm before the inner rule sees it.
pub struct NormClip<S> {
    inner: S,
    max_norm: f64,
}

impl<S: Strategy> NormClip<S> {
    /// Clips to `max_norm` around `inner`.
    ///
    /// # Errors
    /// A `max_norm` that is not finite and positive, returned as given.
    pub fn new(inner: S, max_norm: f64) -> Result<Self, f64> {
        if max_norm.is_finite() && max_norm > 0.0 {
            Ok(NormClip { inner, max_norm })
        } else {
            Err(max_norm)
        }
    }
}

struct Clipping {
    inner: Box<dyn Aggregator>,
    max_norm: f64,
}

impl Aggregator for Clipping {
    fn add(&mut self, update: ArrayView1<'_, f64>, weight: f64) -> Result<(), AggregateError> {
        let norm = update.dot(&update).sqrt();
        if norm.is_finite() && norm > self.max_norm {
            let clipped = &update * (self.max_norm / norm);
            self.inner.add(clipped.view(), weight)
        } else {
            self.inner.add(update, weight)
        }
    }

    fn contributors(&self) -> usize {
        self.inner.contributors()
    }

    fn finish(self: Box<Self>) -> Option<Array1<f64>> {
        self.inner.finish()
    }
}

impl<S: Strategy> Strategy for NormClip<S> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn start_round(&self, dimension: usize) -> Box<dyn Aggregator> {
        Box::new(Clipping {
            inner: self.inner.start_round(dimension),
            max_norm: self.max_norm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FedAvg;
    use approx::assert_abs_diff_eq;
    use ndarray::aview1;
    use proptest::prelude::{prop, prop_assert, proptest};

    fn run(strategy: &dyn Strategy, updates: &[&[f64]]) -> Array1<f64> {
        let mut agg = strategy.start_round(updates[0].len());
        for u in updates {
            agg.add(aview1(u), 1.0).unwrap();
        }
        agg.finish().unwrap()
    }

    #[test]
    fn median_by_hand() {
        let out = run(&Median, &[&[1.0, 10.0], &[3.0, -5.0], &[2.0, 1000.0]]);
        assert_eq!(out.to_vec(), vec![2.0, 10.0]);
        let even = run(&Median, &[&[1.0], &[3.0], &[2.0], &[100.0]]);
        assert_eq!(even.to_vec(), vec![2.5]);
    }

    #[test]
    fn trimmed_mean_by_hand() {
        // 10 values, trim 0.1: drop the lowest and the highest.
        let values: Vec<[f64; 1]> = (1..=9).map(|v| [f64::from(v)]).chain([[1e9]]).collect();
        let refs: Vec<&[f64]> = values.iter().map(|v| &v[..]).collect();
        let out = run(&TrimmedMean::new(0.1).unwrap(), &refs);
        assert_abs_diff_eq!(out[0], (2..=9).sum::<i32>() as f64 / 8.0);
        // trim 0 is the plain mean.
        let plain = run(&TrimmedMean::new(0.0).unwrap(), &[&[1.0], &[2.0], &[6.0]]);
        assert_abs_diff_eq!(plain[0], 3.0);
        assert!(TrimmedMean::new(0.5).is_err());
        assert!(TrimmedMean::new(-0.1).is_err());
    }

    #[test]
    fn clipping_scales_long_updates_only() {
        let clip = NormClip::new(FedAvg, 1.0).unwrap();
        let out = run(&clip, &[&[3.0, 4.0]]);
        assert_abs_diff_eq!(out[0], 0.6, epsilon = 1e-12);
        assert_abs_diff_eq!(out[1], 0.8, epsilon = 1e-12);
        let short = run(&clip, &[&[0.3, 0.4]]);
        assert_eq!(short.to_vec(), vec![0.3, 0.4]);
        assert!(NormClip::new(FedAvg, 0.0).is_err());
        assert!(NormClip::new(FedAvg, f64::NAN).is_err());
    }

    #[test]
    fn bad_updates_are_refused_by_every_rule() {
        for strategy in [
            &Median as &dyn Strategy,
            &TrimmedMean::new(0.2).unwrap(),
            &NormClip::new(Median, 1.0).unwrap(),
        ] {
            let mut agg = strategy.start_round(2);
            assert!(agg.add(aview1(&[1.0]), 1.0).is_err());
            assert!(agg.add(aview1(&[f64::NAN, 0.0]), 1.0).is_err());
            assert_eq!(agg.contributors(), 0);
            assert!(agg.finish().is_none());
        }
    }

    proptest! {
        /// With fewer than half the members hostile, the median of each
        /// coordinate stays within the range of the honest values, however
        /// large the hostile ones are.
        #[test]
        fn median_stays_within_the_honest_range(
            honest in prop::collection::vec(-10.0f64..10.0, 3..12),
            scale in 1e3f64..1e12,
        ) {
            let hostile = (honest.len() - 1) / 2;
            let mut updates: Vec<[f64; 1]> = honest.iter().map(|&v| [v]).collect();
            updates.extend((0..hostile).map(|i| [if i % 2 == 0 { scale } else { -scale }]));
            let refs: Vec<&[f64]> = updates.iter().map(|v| &v[..]).collect();
            let lo = honest.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = honest.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            for strategy in [&Median as &dyn Strategy, &TrimmedMean::new(0.45).unwrap()] {
                let out = run(strategy, &refs)[0];
                prop_assert!(lo <= out && out <= hi, "{} gave {out} outside [{lo}, {hi}]", strategy.name());
            }
        }
    }
}
