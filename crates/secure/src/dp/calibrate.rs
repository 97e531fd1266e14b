//! Choosing a noise multiplier for a budget, and counting the rounds a
//! budget allows: tools for the operator who sets up a task.

use super::budget::Budget;
use super::error::DpError;
use super::rdp::{MAX_ROUNDS, check_rounds, epsilon_from_rho, gaussian_rho, rho_times_rounds};

/// The largest noise multiplier [`smallest_noise_multiplier`] will return.
pub const MAX_NOISE_MULTIPLIER: f64 = 1e6;

/// The smallest noise multiplier it searches below; budgets so loose that
/// even this fits get this value.
const MIN_NOISE_MULTIPLIER: f64 = 1e-6;

/// Relative width at which the search stops: the result is within one part
/// in 10¹⁰ of the true smallest multiplier (on the accountant's grid).
const RELATIVE_TOLERANCE: f64 = 1e-10;

/// Whether `rounds` rounds at noise multiplier `sigma` fit in `budget`.
fn fits(sigma: f64, rounds: u64, budget: &Budget) -> bool {
    let rho = rho_times_rounds(1.0 / (2.0 * sigma * sigma), rounds);
    epsilon_from_rho(rho, budget.delta()).epsilon <= budget.epsilon()
}

/// The smallest noise multiplier σ such that `rounds` rounds of the Gaussian
/// mechanism at σ (every site in every round) stay within `budget`, by the
/// same Rényi-DP accounting the [`super::Accountant`] enforces.
///
/// ε decreases as σ grows, so a bisection (in log σ) finds the boundary; the
/// result fits the budget and any σ more than one part in 10¹⁰ smaller does
/// not.
///
/// # Errors
/// [`DpError::InvalidParameter`] for zero rounds; [`DpError::TooManyRounds`]
/// above [`MAX_ROUNDS`]; [`DpError::NoFeasibleNoise`] if even
/// [`MAX_NOISE_MULTIPLIER`] does not fit.
pub fn smallest_noise_multiplier(budget: &Budget, rounds: u64) -> Result<f64, DpError> {
    check_rounds(rounds)?;
    let mut hi = 1.0_f64;
    while !fits(hi, rounds, budget) {
        hi *= 2.0;
        if hi > MAX_NOISE_MULTIPLIER {
            if fits(MAX_NOISE_MULTIPLIER, rounds, budget) {
                hi = MAX_NOISE_MULTIPLIER;
                break;
            }
            return Err(DpError::NoFeasibleNoise {
                budget: *budget,
                rounds,
                max_noise_multiplier: MAX_NOISE_MULTIPLIER,
            });
        }
    }
    let mut lo = hi / 2.0;
    while fits(lo, rounds, budget) {
        hi = lo;
        lo /= 2.0;
        if lo < MIN_NOISE_MULTIPLIER {
            return Ok(hi);
        }
    }
    // Invariant: lo does not fit, hi fits.
    while hi / lo > 1.0 + RELATIVE_TOLERANCE {
        let mid = (lo * hi).sqrt();
        if fits(mid, rounds, budget) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

/// How many rounds at `noise_multiplier` a fresh site can take part in
/// before the next one would exceed `budget` (at most [`MAX_ROUNDS`]).
///
/// # Errors
/// [`DpError::InvalidParameter`] unless `noise_multiplier` is finite and
/// positive.
pub fn max_rounds(budget: &Budget, noise_multiplier: f64) -> Result<u64, DpError> {
    Ok(rounds_that_fit(
        0.0,
        gaussian_rho(noise_multiplier)?,
        budget,
    ))
}

/// The largest `k <= MAX_ROUNDS` such that a spend of `rho_spent` plus `k`
/// rounds of `rho_per_round` stays within `budget`. The spend is monotone in
/// `k`, so a bisection over `k` is exact for the accountant's ε function.
pub(crate) fn rounds_that_fit(rho_spent: f64, rho_per_round: f64, budget: &Budget) -> u64 {
    let fits_k = |k: u64| {
        let rho = rho_spent + rho_times_rounds(rho_per_round, k);
        rho <= 0.0 || epsilon_from_rho(rho, budget.delta()).epsilon <= budget.epsilon()
    };
    if !fits_k(0) {
        return 0;
    }
    if fits_k(MAX_ROUNDS) {
        return MAX_ROUNDS;
    }
    // Invariant: lo fits, hi does not.
    let (mut lo, mut hi) = (0_u64, MAX_ROUNDS);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits_k(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    lo
}
