//! The exact (ε, δ) of the Gaussian mechanism, for comparison with the
//! Rényi-DP accountant.
//!
//! The Gaussian mechanism with sensitivity 1 and noise standard deviation
//! `s` is (ε, δ)-DP exactly when
//!
//! ```text
//! Φ(1/(2s) − ε·s) − e^ε · Φ(−1/(2s) − ε·s) ≤ δ
//! ```
//!
//! (Balle & Wang, "Improving the Gaussian Mechanism for Differential
//! Privacy: Analytical Calibration and Optimal Denoising", ICML 2018,
//! Theorem 8). `T` rounds with multipliers `σ₁ … σ_T` compose to exactly one
//! Gaussian mechanism with `1/s² = Σ 1/σᵢ²` (Dong, Roth & Su, "Gaussian
//! Differential Privacy", JRSS-B 2022, Corollary 3.3), i.e. `s = σ/√T` for a
//! constant `σ`. So for this product's mechanism (every site in every round)
//! this ε is the true privacy loss, and the RDP figure is an upper bound on
//! it; summaries can show both. Budgets are still enforced with the RDP
//! figure, the conservative and widely reproduced one.

use std::f64::consts::SQRT_2;

use super::error::DpError;
use super::rdp::{check_delta, check_noise_multiplier};

/// `ln Φ(x)` for the standard normal CDF `Φ`, accurate in the lower tail.
fn ln_std_normal_cdf(x: f64) -> f64 {
    let p = 0.5 * libm::erfc(-x / SQRT_2);
    if p > 1e-300 {
        return p.ln();
    }
    // Deep lower tail (x below about -37): Mills-ratio asymptotic series,
    // ln Φ(x) ≈ −x²/2 − ln(−x) − ln√(2π) + ln(1 − 1/x² + 3/x⁴).
    let x2 = x * x;
    -0.5 * x2 - (-x).ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
        + (1.0 - 1.0 / x2 + 3.0 / (x2 * x2)).ln()
}

/// `ln δ(ε)` for the Gaussian mechanism with sensitivity 1 and standard
/// deviation `s` (Balle & Wang 2018, Theorem 8), computed in log space.
fn ln_delta(s: f64, epsilon: f64) -> f64 {
    let t = epsilon * s + 1.0 / (2.0 * s);
    let x = ln_std_normal_cdf(1.0 / s - t);
    let y = epsilon + ln_std_normal_cdf(-t);
    if y < x {
        x + (-(y - x).exp()).ln_1p()
    } else {
        f64::NEG_INFINITY
    }
}

/// The exact ε at `delta` of a single Gaussian mechanism with sensitivity 1
/// and noise multiplier (standard deviation) `noise_multiplier`.
///
/// For `T` rounds at a constant σ, pass `σ/√T`.
///
/// # Errors
/// [`DpError::InvalidParameter`] unless the noise multiplier is finite and
/// positive and `0 < δ < 1`.
pub fn analytic_gaussian_epsilon(noise_multiplier: f64, delta: f64) -> Result<f64, DpError> {
    check_noise_multiplier(noise_multiplier)?;
    check_delta(delta)?;
    let target = delta.ln();
    let s = noise_multiplier;
    if ln_delta(s, 0.0) <= target {
        return Ok(0.0);
    }
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    // δ(ε) decreases in ε; double until the target is bracketed. ε never
    // needs to exceed ~1/(2s²) + a few/s, so 60 doublings is ample.
    let mut doublings = 0;
    while ln_delta(s, hi) > target {
        lo = hi;
        hi *= 2.0;
        doublings += 1;
        if doublings > 60 {
            return Ok(f64::INFINITY);
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if ln_delta(s, mid) > target {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-13 * hi {
            break;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_tail_matches_asymptotic_at_the_switch() {
        // Around x = -37 both branches are valid; they must agree.
        let x = -37.0_f64;
        let direct = (0.5 * libm::erfc(-x / SQRT_2)).ln();
        let x2 = x * x;
        let asym = -0.5 * x2 - (-x).ln() - 0.5 * (2.0 * std::f64::consts::PI).ln()
            + (1.0 - 1.0 / x2 + 3.0 / (x2 * x2)).ln();
        assert!((direct - asym).abs() < 1e-6, "{direct} vs {asym}");
    }

    #[test]
    fn more_noise_means_smaller_epsilon() {
        let a = analytic_gaussian_epsilon(1.0, 1e-5).unwrap();
        let b = analytic_gaussian_epsilon(2.0, 1e-5).unwrap();
        assert!(b < a);
    }
}
