//! The global standardisation every site applies.

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::FeatureStats;
use crate::check;
use crate::error::ModelError;
use crate::numeric::negligible_variance;

/// Per-feature mean and population standard deviation, computed once from
/// the merged statistics of all sites.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardization {
    /// Mean of each feature.
    pub mean: Vec<f64>,
    /// Standard deviation of each feature; always finite and positive.
    pub std: Vec<f64>,
}

/// Something about a feature worth telling a person, found while building a
/// [`Standardization`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum FeatureNote {
    /// No site has a value for this feature; it is standardised to all zeros
    /// (mean 0, std 1) and so carries no information.
    AllMissing {
        /// Index of the feature.
        feature: usize,
    },
    /// The feature is constant (or as good as) across all sites; std is set
    /// to 1 so nothing is divided by zero.
    ZeroVariance {
        /// Index of the feature.
        feature: usize,
    },
}

impl Standardization {
    /// Global mean and population standard deviation from merged per-feature
    /// statistics, with a note for each feature that needs one.
    ///
    /// A feature with no values gets mean 0 and std 1. A feature whose
    /// variance is zero, or negligible next to its mean of squares (a
    /// standard deviation below a millionth of its root mean square, which is
    /// within rounding of a constant), gets std 1. So the result never
    /// divides by zero.
    ///
    /// # Errors
    /// [`ModelError::InvalidValues`] naming the first bad feature if any
    /// sum is non-finite, a sum of squares is negative, or a feature with no
    /// values has non-zero sums.
    pub fn from_stats(
        stats: &[FeatureStats],
    ) -> Result<(Standardization, Vec<FeatureNote>), ModelError> {
        check::entries(
            "feature statistics",
            "finite sums with sum_sq >= 0, and zero sums when count is 0",
            stats.iter().map(consistent),
        )?;
        let mut mean = Vec::with_capacity(stats.len());
        let mut std = Vec::with_capacity(stats.len());
        let mut notes = Vec::new();
        for (feature, s) in stats.iter().enumerate() {
            if s.count == 0 {
                notes.push(FeatureNote::AllMissing { feature });
                mean.push(0.0);
                std.push(1.0);
                continue;
            }
            let n = s.count as f64;
            let m = s.sum / n;
            let mean_sq = s.sum_sq / n;
            // Rounding can push the one-pass variance slightly negative;
            // the negligibility test below also catches that.
            let var = mean_sq - m * m;
            mean.push(m);
            if negligible_variance(var, mean_sq) {
                notes.push(FeatureNote::ZeroVariance { feature });
                std.push(1.0);
            } else {
                std.push(var.sqrt());
            }
        }
        Ok((Standardization { mean, std }, notes))
    }

    /// Checks that this standardisation fits `d` features: both vectors
    /// have length `d`, means are finite, standard deviations are finite and
    /// positive.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] for a wrong length,
    /// [`ModelError::InvalidValues`] for a bad mean or standard deviation.
    pub fn validate(&self, d: usize) -> Result<(), ModelError> {
        check::length("standardization means", d, self.mean.len())?;
        check::length("standardization standard deviations", d, self.std.len())?;
        check::finite("standardization means", &self.mean)?;
        check::values(
            "standardization standard deviations",
            "finite numbers > 0",
            &self.std,
            |s| s.is_finite() && s > 0.0,
        )
    }

    /// Standardises a raw matrix: each value becomes `(x - mean) / std`, and
    /// a missing value (NaN) becomes 0.0, i.e. the global mean. The output
    /// has the input's shape `(n, d)`.
    ///
    /// # Errors
    /// As [`Standardization::validate`] with `d = x.ncols()`, and
    /// [`ModelError::NonFiniteFeature`] for an infinite value (only NaN means
    /// missing).
    pub fn apply(&self, x: ArrayView2<'_, f64>) -> Result<Array2<f64>, ModelError> {
        self.validate(x.ncols())?;
        // Multiplying by a precomputed reciprocal is cheaper than dividing
        // per cell, and exact enough for a linear rescaling.
        let scale: Vec<f64> = self.std.iter().map(|s| 1.0 / s).collect();
        let mut out = Array2::zeros(x.raw_dim());
        for (row, (input, mut output)) in x.rows().into_iter().zip(out.rows_mut()).enumerate() {
            for (column, (((&v, o), &m), &k)) in input
                .iter()
                .zip(output.iter_mut())
                .zip(&self.mean)
                .zip(&scale)
                .enumerate()
            {
                if v.is_nan() {
                    continue;
                }
                if v.is_infinite() {
                    return Err(ModelError::NonFiniteFeature { row, column });
                }
                *o = (v - m) * k;
            }
        }
        Ok(out)
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.mean.len()
    }

    /// Whether there are no features.
    pub fn is_empty(&self) -> bool {
        self.mean.is_empty()
    }
}

/// Whether merged statistics could have come from real values.
fn consistent(s: &FeatureStats) -> bool {
    let finite = s.sum.is_finite() && s.sum_sq.is_finite() && s.sum_sq >= 0.0;
    finite && (s.count > 0 || (s.sum == 0.0 && s.sum_sq == 0.0))
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use ndarray::{Array2, array};

    use super::*;
    use crate::preprocess::column_stats;

    #[test]
    fn standardises_a_small_matrix_by_hand() {
        // Column 0: 1, 3, NaN -> mean 2, population std 1.
        // Column 1: all missing. Column 2: constant 5.
        let x = array![
            [1.0, f64::NAN, 5.0],
            [3.0, f64::NAN, 5.0],
            [f64::NAN, f64::NAN, 5.0]
        ];
        let (s, notes) = Standardization::from_stats(&column_stats(x.view())).unwrap();
        assert_eq!(
            notes,
            vec![
                FeatureNote::AllMissing { feature: 1 },
                FeatureNote::ZeroVariance { feature: 2 }
            ]
        );
        assert_relative_eq!(s.mean[0], 2.0);
        assert_relative_eq!(s.std[0], 1.0);
        assert_eq!((s.mean[1], s.std[1]), (0.0, 1.0));
        assert_relative_eq!(s.mean[2], 5.0);
        assert_eq!(s.std[2], 1.0);
        assert_eq!(s.len(), 3);
        assert!(!s.is_empty());

        let z = s.apply(x.view()).unwrap();
        let expected = array![[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]];
        assert_eq!(z.dim(), (3, 3));
        for (a, e) in z.iter().zip(&expected) {
            assert_relative_eq!(*a, *e, epsilon = 1e-12);
        }
    }

    #[test]
    fn unequal_spread_by_hand() {
        // Values 2, 4, 4, 4, 5, 5, 7, 9: mean 5, population std 2.
        let x =
            Array2::from_shape_vec((8, 1), vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        let (s, notes) = Standardization::from_stats(&column_stats(x.view())).unwrap();
        assert!(notes.is_empty());
        assert_relative_eq!(s.mean[0], 5.0, epsilon = 1e-12);
        assert_relative_eq!(s.std[0], 2.0, epsilon = 1e-12);
        let z = s.apply(array![[9.0], [3.0]].view()).unwrap();
        assert_relative_eq!(z[[0, 0]], 2.0, epsilon = 1e-12);
        assert_relative_eq!(z[[1, 0]], -1.0, epsilon = 1e-12);
    }

    #[test]
    fn a_near_constant_large_column_counts_as_constant() {
        // A spread of 1e-7 around 1e8 is below the rounding of the one-pass
        // variance, so the column is treated as constant.
        let x = array![[1e8], [1e8 + 1e-7], [1e8]];
        let (s, notes) = Standardization::from_stats(&column_stats(x.view())).unwrap();
        assert_eq!(notes, vec![FeatureNote::ZeroVariance { feature: 0 }]);
        assert_eq!(s.std[0], 1.0);
    }

    #[test]
    fn refuses_impossible_statistics() {
        let good = FeatureStats {
            count: 2,
            sum: 1.0,
            sum_sq: 1.0,
        };
        for bad in [
            FeatureStats {
                sum: f64::NAN,
                ..good
            },
            FeatureStats {
                sum_sq: f64::INFINITY,
                ..good
            },
            FeatureStats {
                sum_sq: -1.0,
                ..good
            },
            FeatureStats { count: 0, ..good },
        ] {
            let err = Standardization::from_stats(&[good, bad]).unwrap_err();
            assert!(
                matches!(
                    err,
                    ModelError::InvalidValues {
                        invalid: 1,
                        total: 2,
                        first: 1,
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn validate_checks_lengths_and_values() {
        let s = Standardization {
            mean: vec![0.0, 1.0],
            std: vec![1.0, 2.0],
        };
        assert_eq!(s.validate(2), Ok(()));
        assert_eq!(
            s.validate(3),
            Err(ModelError::Dimension {
                what: "standardization means",
                expected: 3,
                got: 2
            })
        );
        let short = Standardization {
            std: vec![1.0],
            ..s.clone()
        };
        assert!(matches!(
            short.validate(2),
            Err(ModelError::Dimension { .. })
        ));
        for bad_std in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let bad = Standardization {
                std: vec![1.0, bad_std],
                ..s.clone()
            };
            assert!(matches!(
                bad.validate(2),
                Err(ModelError::InvalidValues { first: 1, .. })
            ));
        }
        let bad_mean = Standardization {
            mean: vec![f64::NAN, 0.0],
            ..s
        };
        assert!(bad_mean.validate(2).is_err());
    }

    #[test]
    fn apply_refuses_a_wrong_width_and_infinite_values() {
        let s = Standardization {
            mean: vec![0.0, 0.0],
            std: vec![1.0, 1.0],
        };
        assert!(matches!(
            s.apply(array![[1.0, 2.0, 3.0]].view()),
            Err(ModelError::Dimension {
                expected: 3,
                got: 2,
                ..
            })
        ));
        assert_eq!(
            s.apply(array![[1.0, 2.0], [f64::INFINITY, 0.0]].view()),
            Err(ModelError::NonFiniteFeature { row: 1, column: 0 })
        );
        assert_eq!(s.apply(Array2::zeros((0, 2)).view()).unwrap().dim(), (0, 2));
    }
}
