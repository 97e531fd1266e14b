//! Gaussian noise from a cryptographically secure generator.
//!
//! Production code draws noise from [`os_seeded_rng`]: a ChaCha12 generator
//! ([`rand::rngs::StdRng`]) seeded from the operating system, created afresh
//! for each update. [`add_gaussian_noise`] takes the generator as a
//! parameter so tests can pass a seeded one; its `CryptoRng` bound keeps
//! non-cryptographic generators out.
//!
//! # Limitation: floating-point Gaussian sampling
//! Samples come from [`rand_distr::StandardNormal`] (a Ziggurat sampler) in
//! IEEE-754 doubles. Mironov ("On Significance of the Least Significant Bits
//! for Differential Privacy", CCS 2012) showed that textbook floating-point
//! Laplace noise leaks the noised value through the pattern of representable
//! outputs, and Jin et al. ("Are We There Yet? Timing and Floating-Point
//! Attacks on Differential Privacy Systems", IEEE S&P 2022) showed the same
//! for common Gaussian samplers. The (ε, δ) figures reported by the
//! accountant are those of the ideal real-valued mechanism; an adversary
//! who sees the exact noised doubles could in principle do better. The
//! standard remedy is to sample a discrete Gaussian on a fixed-point grid
//! (Canonne, Kamath & Steinke, NeurIPS 2020), which would also fit the
//! integer ring of secure aggregation; it is not implemented here.

use rand::rngs::{StdRng, SysRng};
use rand::{CryptoRng, RngExt, SeedableRng};
use rand_distr::StandardNormal;

use super::error::DpError;

/// A ChaCha12 generator seeded from the operating system's entropy source.
///
/// # Errors
/// [`DpError::EntropyUnavailable`] if the OS source fails.
pub fn os_seeded_rng() -> Result<StdRng, DpError> {
    StdRng::try_from_rng(&mut SysRng).map_err(|e| DpError::EntropyUnavailable {
        reason: e.to_string(),
    })
}

/// Adds independent `N(0, std_dev²)` noise to every coordinate of `values`.
///
/// # Errors
/// [`DpError::InvalidParameter`] naming `noise_std` unless `std_dev` is
/// finite and positive; `values` is then unchanged.
pub fn add_gaussian_noise<R: CryptoRng + ?Sized>(
    values: &mut [f64],
    std_dev: f64,
    rng: &mut R,
) -> Result<(), DpError> {
    if !(std_dev.is_finite() && std_dev > 0.0) {
        return Err(DpError::InvalidParameter {
            field: "noise_std",
            expected: "a finite number > 0",
            got: std_dev,
        });
    }
    for v in values.iter_mut() {
        let z: f64 = rng.sample(StandardNormal);
        *v += std_dev * z;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_rng_gives_different_streams() {
        let mut a = os_seeded_rng().unwrap();
        let mut b = os_seeded_rng().unwrap();
        let mut va = vec![0.0; 8];
        let mut vb = vec![0.0; 8];
        add_gaussian_noise(&mut va, 1.0, &mut a).unwrap();
        add_gaussian_noise(&mut vb, 1.0, &mut b).unwrap();
        assert_ne!(va, vb);
    }

    #[test]
    fn invalid_std_leaves_values_alone() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut v = vec![1.0, 2.0];
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(add_gaussian_noise(&mut v, s, &mut rng).is_err());
        }
        assert_eq!(v, [1.0, 2.0]);
    }
}
