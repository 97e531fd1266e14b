//! The Rényi-DP accountant against published reference values and against
//! the exact analytic Gaussian mechanism.
//!
//! Reference values were computed with Google's `dp_accounting` Python
//! package, version 0.6.0 (PyPI `dp-accounting`, the library behind
//! TensorFlow Privacy's accountant), by
//!
//! ```python
//! from dp_accounting import GaussianDpEvent
//! from dp_accounting.rdp.rdp_privacy_accountant import RdpAccountant
//! acc = RdpAccountant()               # default orders, add/remove neighbours
//! acc.compose(GaussianDpEvent(sigma), rounds)
//! acc.get_epsilon_and_optimal_order(delta)
//! ```
//!
//! and the exact values with `dp_accounting.gaussian_mechanism.
//! get_epsilon_gaussian(sigma / sqrt(rounds), delta)`, its implementation of
//! Balle & Wang (ICML 2018). The numbers are pasted as printed (repr).

use medfed_secure::dp::{
    Budget, analytic_gaussian_epsilon, gaussian_epsilon, max_rounds, smallest_noise_multiplier,
};

/// (σ, rounds, δ, ε from dp_accounting's RdpAccountant, ε from
/// dp_accounting's get_epsilon_gaussian at σ/√rounds).
const REFERENCE: [(f64, u64, f64, f64, f64); 6] = [
    (1.0, 1, 1e-5, 4.728507067217623, 4.377178095681137),
    (1.0, 10, 1e-5, 19.05359753163139, 17.856586830107616),
    (2.0, 100, 1e-5, 35.08175401905626, 33.103732335922395),
    (5.0, 30, 1e-6, 5.790609852476926, 5.422511402020292),
    (0.8, 7, 1e-5, 20.184186876136117, 18.93408410200841),
    (3.0, 7, 1e-5, 4.095244975687813, 3.7868384394775307),
];

/// σ that `dp_accounting.mechanism_calibration.calibrate_dp_mechanism`
/// (RdpAccountant, tol = 1e-9) found for a target ε at δ = 1e-5: (target ε,
/// rounds, σ). These are the demo's settings: 7 Newton rounds or 30 FedAvg
/// rounds.
const CALIBRATED: [(f64, u64, f64); 4] = [
    (1.0, 7, 10.703083643563232),
    (1.0, 30, 22.157488203269384),
    (8.0, 7, 1.6871167285633644),
    (8.0, 30, 3.4926634479157515),
];

fn relative_error(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

#[test]
fn rdp_epsilon_matches_dp_accounting_within_one_percent() {
    for (sigma, rounds, delta, want, _) in REFERENCE {
        let got = gaussian_epsilon(sigma, rounds, delta).unwrap().epsilon;
        assert!(
            relative_error(got, want) < 0.01,
            "σ={sigma} T={rounds} δ={delta}: ε {got} vs dp_accounting {want}"
        );
        // Our grid contains dp_accounting's, so we can only be tighter.
        assert!(
            got <= want * (1.0 + 1e-12),
            "σ={sigma} T={rounds}: {got} > {want}"
        );
    }
}

#[test]
fn calibrated_sigmas_give_the_target_epsilon() {
    for (target, rounds, sigma) in CALIBRATED {
        let got = gaussian_epsilon(sigma, rounds, 1e-5).unwrap().epsilon;
        assert!(
            relative_error(got, target) < 0.01,
            "σ={sigma} T={rounds}: ε {got}, dp_accounting calibrated it to {target}"
        );
    }
}

#[test]
fn sigma_search_matches_dp_accounting_calibration() {
    for (target, rounds, want) in CALIBRATED {
        let budget = Budget::new(target, 1e-5).unwrap();
        let got = smallest_noise_multiplier(&budget, rounds).unwrap();
        assert!(
            relative_error(got, want) < 0.01,
            "ε={target} T={rounds}: σ {got} vs dp_accounting {want}"
        );
    }
}

#[test]
fn analytic_epsilon_matches_dp_accounting_balle_wang() {
    for (sigma, rounds, delta, _, want) in REFERENCE {
        let s = sigma / (rounds as f64).sqrt();
        let got = analytic_gaussian_epsilon(s, delta).unwrap();
        assert!(
            relative_error(got, want) < 1e-6,
            "σ={sigma} T={rounds} δ={delta}: exact ε {got} vs dp_accounting {want}"
        );
    }
}

/// T rounds at σ are exactly one Gaussian mechanism at σ/√T (Dong, Roth &
/// Su 2022), whose exact ε is Balle & Wang's. RDP must never claim less, and
/// over the range that matters (δ ≤ 1e-5, ε from about 0.3 to 20) it stays
/// within 15% of the exact value (dp_accounting itself shows ratios from 1.06
/// to 1.16 over this range).
#[test]
fn rdp_is_an_upper_bound_within_fifteen_percent_of_exact() {
    for delta in [1e-5, 1e-6, 1e-8] {
        for sigma in [1.0, 2.0, 3.0, 5.0, 10.0, 20.0] {
            for rounds in [1_u64, 7, 30, 100] {
                let s = sigma / (rounds as f64).sqrt();
                let exact = analytic_gaussian_epsilon(s, delta).unwrap();
                if !(0.3..=20.0).contains(&exact) {
                    continue;
                }
                let rdp = gaussian_epsilon(sigma, rounds, delta).unwrap().epsilon;
                assert!(
                    rdp >= exact,
                    "σ={sigma} T={rounds} δ={delta}: RDP {rdp} < exact {exact}"
                );
                assert!(
                    rdp <= 1.15 * exact,
                    "σ={sigma} T={rounds} δ={delta}: RDP {rdp} > 1.15 × exact {exact}"
                );
            }
        }
    }
}

/// Rounds before the budget runs out, from dp_accounting 0.6.0: the largest
/// T with `RdpAccountant` ε ≤ budget at δ = 1e-5 (it printed ε at T and T+1:
/// 0.990/1.077, 1.847/2.166, 7.532/8.396, 3.752/4.095).
#[test]
fn max_rounds_matches_dp_accounting_counts() {
    for (sigma, epsilon, want) in [(10.0, 1.0, 6), (4.0, 2.0, 3), (1.5, 8.0, 5), (3.0, 4.0, 6)] {
        let budget = Budget::new(epsilon, 1e-5).unwrap();
        assert_eq!(
            max_rounds(&budget, sigma).unwrap(),
            want,
            "σ={sigma} ε={epsilon}"
        );
    }
}
