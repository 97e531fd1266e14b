//! The seeded held-out split.

use crate::error::ModelError;
use crate::rng::SplitMix64;

/// Chooses which of `n` rows are held out for evaluation (`true`) and which
/// train (`false`).
///
/// Exactly `round(n * fraction)` rows are held out (halves round away from
/// zero), chosen by a partial Fisher–Yates shuffle driven by SplitMix64
/// seeded with `seed`. The result depends only on `(n, fraction, seed)`: it
/// is the same on every platform and in every run.
///
/// # Errors
/// [`ModelError::InvalidHyperparameter`] unless `fraction` is in `[0, 1)`.
pub fn holdout_mask(n: usize, fraction: f64, seed: u64) -> Result<Vec<bool>, ModelError> {
    // The range check also refuses NaN.
    if !(0.0..1.0).contains(&fraction) {
        return Err(ModelError::InvalidHyperparameter {
            name: "holdout fraction",
            value: fraction,
            allowed: "a number in [0, 1)",
        });
    }
    // fraction < 1 keeps this at most n; `min` documents it and guards the
    // float-to-int conversion, which saturates rather than panics.
    let held = ((n as f64 * fraction).round() as usize).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    let mut mask = vec![false; n];
    let mut rng = SplitMix64::new(seed);
    for i in 0..held {
        // Only the first `held` positions of the shuffle are needed.
        let j = i + rng.below((n - i) as u64) as usize;
        order.swap(i, j);
        mask[order[i]] = true;
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(mask: &[bool]) -> usize {
        mask.iter().filter(|&&h| h).count()
    }

    #[test]
    fn holds_out_exactly_the_rounded_count() {
        for (n, fraction, expected) in [
            (0, 0.5, 0),
            (1, 0.2, 0),
            (10, 0.0, 0),
            (10, 0.2, 2),
            (10, 0.25, 3), // 2.5 rounds away from zero
            (7, 0.5, 4),   // 3.5 likewise
            (1000, 0.2, 200),
            (3, 0.99, 3),
        ] {
            let mask = holdout_mask(n, fraction, 42).unwrap();
            assert_eq!(mask.len(), n);
            assert_eq!(held(&mask), expected, "n={n} fraction={fraction}");
        }
    }

    #[test]
    fn is_deterministic_and_depends_on_the_seed() {
        let a = holdout_mask(500, 0.2, 7).unwrap();
        assert_eq!(a, holdout_mask(500, 0.2, 7).unwrap());
        let b = holdout_mask(500, 0.2, 8).unwrap();
        assert_ne!(a, b);
        assert_eq!(held(&a), held(&b));
    }

    #[test]
    fn pinned_output() {
        // Sites and coordinator must agree on the split across versions; a
        // change to the generator or the shuffle must show up here.
        let mask = holdout_mask(10, 0.3, 42).unwrap();
        let rows: Vec<usize> = (0..10).filter(|&i| mask[i]).collect();
        assert_eq!(rows, PINNED);
    }
    const PINNED: [usize; 3] = [2, 4, 7];

    #[test]
    fn every_row_is_equally_likely_to_be_held_out() {
        let n = 20;
        let mut times = vec![0u32; n];
        for seed in 0..2000 {
            for (t, h) in times.iter_mut().zip(holdout_mask(n, 0.25, seed).unwrap()) {
                *t += u32::from(h);
            }
        }
        // Expected 500 per row, standard deviation about 19.
        assert!(times.iter().all(|&t| (420..580).contains(&t)), "{times:?}");
    }

    #[test]
    fn refuses_fractions_outside_zero_to_one() {
        for fraction in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                holdout_mask(10, fraction, 0),
                Err(ModelError::InvalidHyperparameter {
                    name: "holdout fraction",
                    ..
                })
            ));
        }
    }
}
