//! Per-feature sufficient statistics that sites can share and merge.

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// Count, sum and sum of squares of one feature's non-missing values.
///
/// These are additive, so statistics of disjoint row sets merge exactly
/// (up to floating-point rounding) into those of their union, and the
/// coordinator learns global means and spreads without seeing any row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    /// Number of non-missing (non-NaN) values.
    pub count: u64,
    /// Sum of the non-missing values.
    pub sum: f64,
    /// Sum of the squares of the non-missing values.
    pub sum_sq: f64,
}

impl FeatureStats {
    /// Adds `other`'s values to these, as if both row sets were one.
    pub fn merge(&mut self, other: &FeatureStats) {
        // Saturating: u64 rows cannot realistically overflow, and a merge of
        // forged counts should not panic; the sums then fail validation.
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
    }

    /// Adds one value; NaN marks a missing value and is skipped.
    #[inline]
    fn add(&mut self, value: f64) {
        if !value.is_nan() {
            self.count += 1;
            self.sum += value;
            self.sum_sq += value * value;
        }
    }
}

/// Statistics of each column of a raw feature matrix, where NaN marks a
/// missing value. An infinite value is counted and makes the sums infinite,
/// which [`Standardization::from_stats`](super::Standardization::from_stats)
/// then refuses.
pub fn column_stats(x: ArrayView2<'_, f64>) -> Vec<FeatureStats> {
    let mut stats = vec![FeatureStats::default(); x.ncols()];
    // Row by row, because feature matrices are stored row-major.
    for row in x.rows() {
        for (s, &v) in stats.iter_mut().zip(row) {
            s.add(v);
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use ndarray::{Array2, Axis, array};
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn stats_by_hand_skip_missing_values() {
        let x = array![[1.0, f64::NAN], [2.0, 4.0], [f64::NAN, f64::NAN]];
        let stats = column_stats(x.view());
        assert_eq!(
            stats,
            vec![
                FeatureStats {
                    count: 2,
                    sum: 3.0,
                    sum_sq: 5.0
                },
                FeatureStats {
                    count: 1,
                    sum: 4.0,
                    sum_sq: 16.0
                },
            ]
        );
    }

    #[test]
    fn no_rows_gives_zero_counts() {
        let x = Array2::<f64>::zeros((0, 3));
        assert_eq!(column_stats(x.view()), vec![FeatureStats::default(); 3]);
    }

    fn matrix() -> impl Strategy<Value = Array2<f64>> {
        (1usize..40, 1usize..5).prop_flat_map(|(n, d)| {
            proptest::collection::vec(prop_oneof![1 => Just(f64::NAN), 4 => -1e3f64..1e3], n * d)
                .prop_map(move |v| Array2::from_shape_vec((n, d), v).unwrap_or_default())
        })
    }

    proptest! {
        #[test]
        fn merged_halves_equal_the_whole(x in matrix(), cut in 0.0f64..=1.0) {
            let split = ((x.nrows() as f64) * cut) as usize;
            let whole = column_stats(x.view());
            let (first, second) = x.view().split_at(Axis(0), split);
            let mut merged = column_stats(first);
            let second = column_stats(second);
            for (m, o) in merged.iter_mut().zip(&second) {
                m.merge(o);
            }
            prop_assert_eq!(merged.len(), whole.len());
            for (m, w) in merged.iter().zip(&whole) {
                prop_assert_eq!(m.count, w.count);
                // Only the summation order differs.
                assert_relative_eq!(m.sum, w.sum, epsilon = 1e-9, max_relative = 1e-12);
                assert_relative_eq!(m.sum_sq, w.sum_sq, epsilon = 1e-9, max_relative = 1e-12);
            }
        }
    }
}
