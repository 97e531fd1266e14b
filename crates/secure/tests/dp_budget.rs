//! A site's budget: refusal at the limit, persistence across restarts, and
//! the choice of σ for a budget.

use medfed_secure::dp::rdp::orders;
use medfed_secure::dp::{
    Accountant, AccountantState, Budget, DpError, max_rounds, smallest_noise_multiplier,
};

fn no_record(_: &AccountantState) -> Result<(), std::io::Error> {
    Ok(())
}

/// Spends rounds at `sigma` until refused; returns the number accepted and
/// checks that the refusal changed nothing.
fn spend_until_refused(accountant: &mut Accountant, sigma: f64) -> u64 {
    let start = accountant.rounds();
    let mut accepted = 0;
    loop {
        let would_exceed = accountant.would_exceed(sigma).unwrap();
        let before = accountant.spent();
        match accountant.try_spend(sigma, no_record) {
            Ok(charge) => {
                assert!(!would_exceed);
                accepted += 1;
                assert_eq!(charge.round(), start + accepted);
                assert_eq!(charge.spent(), accountant.spent());
                assert!(accountant.spent().epsilon <= accountant.budget().epsilon());
            }
            Err(DpError::BudgetExceeded {
                spent,
                requested_noise_multiplier,
                requested_epsilon,
                budget,
            }) => {
                assert!(would_exceed);
                assert_eq!(accountant.spent(), before, "refusal changed the spend");
                assert_eq!(spent, before);
                assert_eq!(requested_noise_multiplier, sigma);
                assert!(requested_epsilon > budget.epsilon());
                assert_eq!(budget, accountant.budget());
                return accepted;
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
        assert!(accepted < 10_000, "never refused");
    }
}

/// The analytic count: at order α, T rounds cost T·α/(2σ²) + c(α) with
/// c(α) = ln(1 − 1/α) − (ln δ + ln α)/(α − 1); T fits iff it fits at some
/// order, so the count is max over α of ⌊2σ²(ε − c(α))/α⌋.
fn analytic_count(sigma: f64, epsilon: f64, delta: f64) -> u64 {
    orders()
        .filter(|&a| a > 1.01)
        .map(|a| {
            let c = (1.0 - 1.0 / a).ln() - (delta.ln() + a.ln()) / (a - 1.0);
            (2.0 * sigma * sigma * (epsilon - c) / a).floor().max(0.0) as u64
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn a_site_stops_at_its_budget_after_the_analytic_number_of_rounds() {
    // (σ, ε, δ); the first four are the dp_accounting counts of
    // dp_accounting.rs (6, 3, 5, 6 rounds).
    for (sigma, epsilon, delta) in [
        (10.0, 1.0, 1e-5),
        (4.0, 2.0, 1e-5),
        (1.5, 8.0, 1e-5),
        (3.0, 4.0, 1e-5),
        (20.0, 1.0, 1e-6),
        (1.0, 30.0, 1e-5),
    ] {
        let budget = Budget::new(epsilon, delta).unwrap();
        let mut accountant = Accountant::new(budget);
        let accepted = spend_until_refused(&mut accountant, sigma);
        let want = analytic_count(sigma, epsilon, delta);
        assert!(want > 0, "test point must allow at least one round");
        assert_eq!(accepted, want, "σ={sigma} ε={epsilon} δ={delta}");
        assert_eq!(max_rounds(&budget, sigma).unwrap(), want);
    }
}

#[test]
fn a_refused_site_can_still_afford_a_noisier_round() {
    let mut accountant = Accountant::new(Budget::new(2.0, 1e-5).unwrap());
    spend_until_refused(&mut accountant, 4.0);
    let rounds = accountant.rounds();
    let remaining = accountant.remaining_rounds(100.0).unwrap();
    assert!(remaining > 0);
    let _charge = accountant.try_spend(100.0, no_record).unwrap();
    assert_eq!(accountant.rounds(), rounds + 1);
}

#[test]
fn nothing_is_charged_when_recording_fails() {
    let mut accountant = Accountant::new(Budget::new(5.0, 1e-5).unwrap());
    let _charge = accountant.try_spend(3.0, no_record).unwrap();
    let before = accountant.spent();
    let err = accountant
        .try_spend(3.0, |_| Err(std::io::Error::other("disk full")))
        .unwrap_err();
    assert!(
        matches!(err, DpError::RecordFailed { round: 2, .. }),
        "{err}"
    );
    assert_eq!(accountant.spent(), before);
    assert_eq!(accountant.rounds(), 1);
}

#[test]
fn the_recorded_state_already_holds_the_new_round() {
    let mut accountant = Accountant::new(Budget::new(5.0, 1e-5).unwrap());
    let mut recorded = None;
    let charge = accountant
        .try_spend(3.0, |state| {
            recorded = Some(state.clone());
            Ok::<(), std::io::Error>(())
        })
        .unwrap();
    let recorded = recorded.unwrap();
    assert_eq!(recorded.noise_multipliers, vec![3.0]);
    // Resuming from what was recorded gives exactly the spend just charged.
    let resumed = Accountant::from_state(recorded).unwrap();
    assert_eq!(resumed.spent(), charge.spent());
}

#[test]
fn spend_survives_a_restart_through_serde() {
    let budget = Budget::new(3.0, 1e-5).unwrap();
    let mut uninterrupted = Accountant::new(budget);
    let mut first = Accountant::new(budget);
    for sigma in [3.0, 4.0, 5.0] {
        let _charge = uninterrupted.try_spend(sigma, no_record).unwrap();
        let _charge = first.try_spend(sigma, no_record).unwrap();
    }
    let json = serde_json::to_string(&first).unwrap();
    drop(first);
    let mut resumed: Accountant = serde_json::from_str(&json).unwrap();
    assert_eq!(resumed.spent(), uninterrupted.spent());
    assert_eq!(
        spend_until_refused(&mut resumed, 4.0),
        spend_until_refused(&mut uninterrupted, 4.0)
    );
    assert_eq!(resumed.spent(), uninterrupted.spent());
}

#[test]
fn corrupt_state_is_refused_with_its_location() {
    let json = r#"{"budget": {"epsilon": 1.0, "delta": 1e-5}, "noise_multipliers": [2.0, -1.0]}"#;
    let err = serde_json::from_str::<Accountant>(json)
        .unwrap_err()
        .to_string();
    assert!(err.contains("noise_multipliers[1]"), "{err}");

    let json = r#"{"budget": {"epsilon": 0.0, "delta": 1e-5}, "noise_multipliers": []}"#;
    let err = serde_json::from_str::<Accountant>(json)
        .unwrap_err()
        .to_string();
    assert!(err.contains("budget.epsilon"), "{err}");

    let too_many = AccountantState {
        budget: Budget::new(1.0, 1e-5).unwrap(),
        noise_multipliers: vec![1e4; 100_001],
    };
    assert!(matches!(
        Accountant::from_state(too_many),
        Err(DpError::TooManyRounds { got: 100_001, .. })
    ));
}

#[test]
fn a_state_over_a_lowered_budget_refuses_further_rounds() {
    let mut accountant = Accountant::new(Budget::new(8.0, 1e-5).unwrap());
    for _ in 0..3 {
        let _charge = accountant.try_spend(2.0, no_record).unwrap();
    }
    let mut state = accountant.state();
    state.budget = Budget::new(1.0, 1e-5).unwrap();
    let mut lowered = Accountant::from_state(state).unwrap();
    assert!(lowered.spent().epsilon > 1.0);
    assert!(matches!(
        lowered.try_spend(50.0, no_record),
        Err(DpError::BudgetExceeded { .. })
    ));
}

#[test]
fn budgets_are_validated() {
    for (epsilon, delta, field) in [
        (0.0, 1e-5, "budget.epsilon"),
        (-1.0, 1e-5, "budget.epsilon"),
        (f64::INFINITY, 1e-5, "budget.epsilon"),
        (f64::NAN, 1e-5, "budget.epsilon"),
        (1.0, 0.0, "budget.delta"),
        (1.0, 1.0, "budget.delta"),
        (1.0, f64::NAN, "budget.delta"),
    ] {
        let err = Budget::new(epsilon, delta).unwrap_err();
        assert!(
            matches!(err, DpError::InvalidParameter { field: f, .. } if f == field),
            "{err}"
        );
    }
}

#[test]
fn smallest_sigma_fits_and_a_slightly_smaller_one_does_not() {
    for (epsilon, delta, rounds) in [
        (1.0, 1e-5, 7),
        (1.0, 1e-5, 30),
        (8.0, 1e-5, 7),
        (8.0, 1e-5, 30),
        (0.1, 1e-6, 100),
        (50.0, 1e-3, 1),
    ] {
        let budget = Budget::new(epsilon, delta).unwrap();
        let sigma = smallest_noise_multiplier(&budget, rounds).unwrap();

        let mut fits = Accountant::new(budget);
        for _ in 0..rounds {
            let _charge = fits
                .try_spend(sigma, no_record)
                .unwrap_or_else(|e| panic!("ε={epsilon} T={rounds} σ={sigma}: {e}"));
        }
        assert!(fits.spent().epsilon <= epsilon);
        assert!(fits.exact_epsilon() <= fits.spent().epsilon);

        let smaller = sigma * (1.0 - 1e-3);
        let mut too_little = Accountant::new(budget);
        let accepted = spend_until_refused(&mut too_little, smaller);
        assert!(
            accepted < rounds,
            "ε={epsilon} T={rounds}: σ·(1−1e-3) still fits"
        );
        assert_eq!(accepted, rounds - 1);
    }
}

#[test]
fn sigma_search_reports_infeasible_and_bad_inputs() {
    let tight = Budget::new(1e-9, 1e-5).unwrap();
    assert!(matches!(
        smallest_noise_multiplier(&tight, 1000),
        Err(DpError::NoFeasibleNoise { .. })
    ));
    let budget = Budget::new(1.0, 1e-5).unwrap();
    assert!(smallest_noise_multiplier(&budget, 0).is_err());
    assert!(matches!(
        smallest_noise_multiplier(&budget, 1_000_000),
        Err(DpError::TooManyRounds { .. })
    ));
}
