//! Rényi differential privacy of the Gaussian mechanism, and its conversion
//! to (ε, δ).
//!
//! # The mechanism accounted
//! Each round releases the sum of the sites' clipped updates plus Gaussian
//! noise of standard deviation `σ·C`, where `C` is the clip norm (the
//! sensitivity) and `σ` the noise multiplier. Every site takes part in every
//! round: there is no subsampling, so no privacy amplification is claimed.
//! Poisson-subsampled accounting is deliberately left out: it is only sound
//! with real random sampling of sites, and it is not tested here against
//! published values.
//!
//! # Rényi DP of one round
//! The Gaussian mechanism with sensitivity 1 and standard deviation `σ` is
//! `(α, α / (2σ²))`-RDP for every order `α > 1` (Mironov, "Rényi
//! Differential Privacy", CSF 2017, Proposition 7). The RDP curve is linear
//! in `α`, so it is summarised by one number, `ρ = 1 / (2σ²)` (the same `ρ`
//! as ρ-zCDP, Bun & Steinke, TCC 2016).
//!
//! # Composition
//! RDP adds up over rounds at each order (Mironov 2017, Proposition 1), so
//! `T` rounds with multipliers `σ₁ … σ_T` are `(α, α·Σ 1/(2σᵢ²))`-RDP: the
//! accountant keeps the running sum `ρ = Σ 1/(2σᵢ²)`.
//!
//! # Conversion to (ε, δ)
//! An `(α, r)`-RDP mechanism is `(ε, δ)`-DP with
//!
//! ```text
//! ε = r + ln((α − 1)/α) − (ln δ + ln α)/(α − 1)
//! ```
//!
//! (Canonne, Kamath & Steinke, "The Discrete Gaussian for Differential
//! Privacy", NeurIPS 2020, Proposition 12; Balle et al., "Hypothesis Testing
//! Interpretations and Rényi Differential Privacy", AISTATS 2020, Theorem
//! 21). It is never worse than Mironov's original `ε = r + ln(1/δ)/(α − 1)`
//! (the extra terms are negative for every `α > 1`), and it is the one used
//! by Google's `dp_accounting` RDP accountant, TensorFlow Privacy and
//! Opacus, so figures here can be compared with theirs directly. As in
//! `dp_accounting`, orders at or below 1.01 are skipped (the bound is
//! numerically unstable there and never the minimum), and a round whose
//! divergence is so small that `δ² + e^(−r) > 1` is reported as ε = 0 (total
//! variation is then below δ by the Bretagnolle–Huber inequality).
//!
//! Any order gives a valid bound; ε is the minimum over the grid of
//! [`orders`], which contains `dp_accounting`'s default grid (1.1 to 10.9 in
//! steps of 0.1, 11 to 63, 128, 256, 512, 1024) plus extra large orders for
//! very small spends. Minimising over a grid rather than over all real
//! orders can only overstate ε, never understate it.

use super::error::DpError;

/// The largest number of rounds the accounting functions accept.
pub const MAX_ROUNDS: u64 = 100_000;

/// Orders added to `dp_accounting`'s default grid; they tighten ε when the
/// total spend is small (large σ, few rounds), where the best order is large.
const EXTRA_ORDERS: [f64; 16] = [
    64.0, 72.0, 80.0, 96.0, 112.0, 160.0, 192.0, 224.0, 320.0, 384.0, 448.0, 640.0, 768.0, 1536.0,
    2048.0, 4096.0,
];

/// `dp_accounting`'s largest default orders, above its integer run 11..=63.
const LARGE_DEFAULT_ORDERS: [f64; 4] = [128.0, 256.0, 512.0, 1024.0];

/// The grid of Rényi orders over which ε is minimised (see the module docs).
pub fn orders() -> impl Iterator<Item = f64> {
    (1..100_u32)
        .map(|x| 1.0 + f64::from(x) / 10.0)
        .chain((11..64_u32).map(f64::from))
        .chain(LARGE_DEFAULT_ORDERS)
        .chain(EXTRA_ORDERS)
}

/// An ε together with the Rényi order that attained it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EpsilonAtOrder {
    /// The ε at the requested δ.
    pub epsilon: f64,
    /// The order `α` at which the minimum was attained.
    pub order: f64,
}

/// `ρ = 1/(2σ²)`: the RDP of one Gaussian round divided by its order.
///
/// # Errors
/// [`DpError::InvalidParameter`] unless `noise_multiplier` is finite and
/// positive.
pub fn gaussian_rho(noise_multiplier: f64) -> Result<f64, DpError> {
    check_noise_multiplier(noise_multiplier)?;
    let rho = 1.0 / (2.0 * noise_multiplier * noise_multiplier);
    if rho.is_finite() {
        Ok(rho)
    } else {
        // σ² underflowed: a multiplier this small offers no privacy at all.
        Err(DpError::InvalidParameter {
            field: "noise_multiplier",
            expected: "a finite number > 0 whose square is a normal float",
            got: noise_multiplier,
        })
    }
}

/// Checks that a noise multiplier is finite and positive.
pub(crate) fn check_noise_multiplier(noise_multiplier: f64) -> Result<(), DpError> {
    if noise_multiplier.is_finite() && noise_multiplier > 0.0 {
        Ok(())
    } else {
        Err(DpError::InvalidParameter {
            field: "noise_multiplier",
            expected: "a finite number > 0",
            got: noise_multiplier,
        })
    }
}

/// Checks that `0 < δ < 1`.
pub(crate) fn check_delta(delta: f64) -> Result<(), DpError> {
    if delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err(DpError::InvalidParameter {
            field: "delta",
            expected: "a number with 0 < δ < 1",
            got: delta,
        })
    }
}

/// Checks `1 <= rounds <= MAX_ROUNDS`.
pub(crate) fn check_rounds(rounds: u64) -> Result<(), DpError> {
    if rounds == 0 {
        return Err(DpError::InvalidParameter {
            field: "rounds",
            expected: "at least 1",
            got: 0.0,
        });
    }
    if rounds > MAX_ROUNDS {
        return Err(DpError::TooManyRounds {
            field: "rounds",
            got: rounds,
            limit: MAX_ROUNDS,
        });
    }
    Ok(())
}

/// The (ε, δ) bound implied by `(order, rdp)`-RDP at one order, by the
/// conversion in the module docs. Infinite for orders `<= 1.01`.
pub fn epsilon_at_order(order: f64, rdp: f64, delta: f64) -> f64 {
    if rdp <= 0.0 || delta * delta + (-rdp).exp_m1() > 0.0 {
        0.0
    } else if order > 1.01 {
        rdp + (-1.0 / order).ln_1p() - (delta * order).ln() / (order - 1.0)
    } else {
        f64::INFINITY
    }
}

/// The smallest ε over [`orders`] for a composition whose RDP at order `α`
/// is `α·rho`, at the given δ. Inputs are trusted (see
/// [`gaussian_epsilon`] for the checked entry point).
pub(crate) fn epsilon_from_rho(rho: f64, delta: f64) -> EpsilonAtOrder {
    let mut best = EpsilonAtOrder {
        epsilon: f64::INFINITY,
        order: f64::NAN,
    };
    for order in orders() {
        let epsilon = epsilon_at_order(order, order * rho, delta);
        if epsilon < best.epsilon {
            best = EpsilonAtOrder { epsilon, order };
        }
    }
    best.epsilon = best.epsilon.max(0.0);
    best
}

/// ε at `delta` of `rounds` rounds of the Gaussian mechanism with noise
/// multiplier `noise_multiplier` (every site in every round).
///
/// # Errors
/// [`DpError::InvalidParameter`] for a non-positive or non-finite noise
/// multiplier, δ outside (0, 1) or zero rounds;
/// [`DpError::TooManyRounds`] above [`MAX_ROUNDS`].
pub fn gaussian_epsilon(
    noise_multiplier: f64,
    rounds: u64,
    delta: f64,
) -> Result<EpsilonAtOrder, DpError> {
    let rho = gaussian_rho(noise_multiplier)?;
    check_delta(delta)?;
    check_rounds(rounds)?;
    Ok(epsilon_from_rho(rho_times_rounds(rho, rounds), delta))
}

/// `rho·rounds`, with `rounds <= MAX_ROUNDS` so the conversion is exact.
pub(crate) fn rho_times_rounds(rho: f64, rounds: u64) -> f64 {
    // MAX_ROUNDS is far below 2^53, so the cast is exact.
    rho * rounds as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_contains_reference_grid_and_is_above_one() {
        let grid: Vec<f64> = orders().collect();
        assert_eq!(grid.len(), 99 + 53 + 4 + EXTRA_ORDERS.len());
        assert!(grid.iter().all(|&a| a > 1.0));
        for a in [1.1, 2.5, 10.9, 11.0, 63.0, 128.0, 256.0, 512.0, 1024.0] {
            assert!(grid.iter().any(|&g| (g - a).abs() < 1e-12), "{a} missing");
        }
    }

    #[test]
    fn improved_conversion_beats_mironov_original() {
        let (order, rdp, delta): (f64, f64, f64) = (8.0, 0.5, 1e-5);
        let original = rdp + (1.0 / delta).ln() / (order - 1.0);
        assert!(epsilon_at_order(order, rdp, delta) < original);
    }

    #[test]
    fn epsilon_grows_with_rounds_and_shrinks_with_noise() {
        let e1 = gaussian_epsilon(2.0, 10, 1e-5).unwrap().epsilon;
        let e2 = gaussian_epsilon(2.0, 20, 1e-5).unwrap().epsilon;
        let e3 = gaussian_epsilon(4.0, 10, 1e-5).unwrap().epsilon;
        assert!(e2 > e1 && e3 < e1);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(gaussian_epsilon(0.0, 1, 1e-5).is_err());
        assert!(gaussian_epsilon(1e-200, 1, 1e-5).is_err());
        assert!(gaussian_epsilon(1.0, 0, 1e-5).is_err());
        assert!(gaussian_epsilon(1.0, MAX_ROUNDS + 1, 1e-5).is_err());
        assert!(gaussian_epsilon(1.0, 1, 0.0).is_err());
        assert!(gaussian_epsilon(1.0, 1, 1.0).is_err());
    }
}
