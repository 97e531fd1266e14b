//! Clipping and Gaussian noise: the bound after clipping, and the spread of
//! the noise each placement adds.

use medfed_secure::dp::{
    Accountant, Budget, DpConfig, DpError, NoisePlacement, add_gaussian_noise, clip_to_norm,
    l2_norm,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

proptest! {
    #[test]
    fn clipped_norm_never_exceeds_the_bound(
        values in prop::collection::vec(-1e6_f64..1e6, 1..64),
        clip in 1e-3_f64..1e3,
    ) {
        let mut v = values.clone();
        let report = clip_to_norm(&mut v, clip).unwrap();
        prop_assert!(l2_norm(&v) <= clip, "norm {} > {}", l2_norm(&v), clip);
        prop_assert_eq!(report.norm_after, l2_norm(&v));
        if report.clipped {
            // Same direction, scaled down, and close to the bound.
            prop_assert!(l2_norm(&v) >= clip * (1.0 - 1e-9));
            let k = clip / report.norm_before;
            for (a, b) in v.iter().zip(&values) {
                prop_assert!((a - b * k).abs() <= 1e-9 * (b.abs() * k + 1e-300));
            }
        } else {
            prop_assert_eq!(v, values);
        }
    }

    #[test]
    fn vectors_within_the_bound_are_unchanged(
        values in prop::collection::vec(-1.0_f64..1.0, 1..64),
    ) {
        // |v| ≤ √63 < 8, so a clip norm of 8 never bites.
        let mut v = values.clone();
        let report = clip_to_norm(&mut v, 8.0).unwrap();
        prop_assert!(!report.clipped);
        prop_assert_eq!(v, values);
    }
}

fn mean_and_std(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// With n samples the standard error of a sample std is about std/√(2n):
/// 0.16% at n = 200 000, so 1% is about six standard errors.
#[test]
fn gaussian_noise_has_the_requested_spread() {
    let mut rng = StdRng::seed_from_u64(7);
    let std_dev = 1.1 * 0.5;
    let mut v = vec![0.0; 200_000];
    add_gaussian_noise(&mut v, std_dev, &mut rng).unwrap();
    let (mean, std) = mean_and_std(&v);
    assert!((std / std_dev - 1.0).abs() < 0.01, "std {std} vs {std_dev}");
    // Standard error of the mean: 0.55/√200000 ≈ 0.0012.
    assert!(mean.abs() < 0.006, "mean {mean}");
}

fn charge_for(config: &DpConfig, accountant: &mut Accountant) -> medfed_secure::dp::Charge {
    accountant
        .try_spend(config.noise_multiplier(), |_| Ok::<(), std::io::Error>(()))
        .unwrap()
}

fn roomy_accountant() -> Accountant {
    Accountant::new(Budget::new(100.0, 1e-5).unwrap())
}

/// Four sites under secure aggregation with t = 4 each add σC/2; the noise
/// of their sum must have standard deviation σC, the charged amount.
#[test]
fn secure_aggregation_shares_sum_to_the_charged_noise() {
    let placement = NoisePlacement::LocalWithSecureAggregation {
        min_contributors: 4,
    };
    let config = DpConfig::new(0.5, 1.2, placement).unwrap();
    assert!((config.site_noise_std().unwrap() - 0.3).abs() < 1e-12);
    let mut rng = StdRng::seed_from_u64(11);
    let dim = 100_000;
    let mut sum = vec![0.0; dim];
    for _ in 0..4 {
        let mut accountant = roomy_accountant();
        let mut update = vec![0.0; dim];
        let charge = charge_for(&config, &mut accountant);
        config
            .privatise_site_update(&mut update, charge, &mut rng)
            .unwrap();
        let (_, site_std) = mean_and_std(&update);
        assert!((site_std / 0.3 - 1.0).abs() < 0.015, "site std {site_std}");
        sum.iter_mut().zip(&update).for_each(|(s, u)| *s += u);
    }
    let (_, std) = mean_and_std(&sum);
    let want = 1.2 * 0.5;
    assert!((std / want - 1.0).abs() < 0.015, "sum std {std} vs {want}");
    assert!((config.sum_noise_std(4) - want).abs() < 1e-12);
}

#[test]
fn local_placement_noises_each_update_fully_and_clips_first() {
    let config = DpConfig::new(1.0, 2.0, NoisePlacement::Local).unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mut accountant = roomy_accountant();
    // A large update: after clipping to 1 its signal is negligible next to
    // noise of std 2, so the empirical std is that of the noise.
    let mut update = vec![1000.0; 50_000];
    let charge = charge_for(&config, &mut accountant);
    let report = config
        .privatise_site_update(&mut update, charge, &mut rng)
        .unwrap();
    assert!(report.clipped);
    let (mean, std) = mean_and_std(&update);
    assert!((std / 2.0 - 1.0).abs() < 0.02, "std {std}");
    // The clipped signal per coordinate is 1/√50000 ≈ 0.0045.
    assert!(
        (mean - 1.0 / (50_000f64).sqrt()).abs() < 0.04,
        "mean {mean}"
    );
    assert!(config.central_noise_std().is_none());
    assert!(matches!(
        config.add_central_noise(&mut [0.0], &mut rng),
        Err(DpError::WrongPlacement { .. })
    ));
}

#[test]
fn central_placement_only_clips_at_the_site_and_noises_the_sum() {
    let config = DpConfig::new(2.0, 1.5, NoisePlacement::Central).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let mut accountant = roomy_accountant();
    let mut update = vec![3.0, 4.0];
    let charge = charge_for(&config, &mut accountant);
    config
        .privatise_site_update(&mut update, charge, &mut rng)
        .unwrap();
    assert!((update[0] - 1.2).abs() < 1e-12 && (update[1] - 1.6).abs() < 1e-12);

    let mut sum = vec![0.0; 100_000];
    config.add_central_noise(&mut sum, &mut rng).unwrap();
    let (_, std) = mean_and_std(&sum);
    assert!((std / 3.0 - 1.0).abs() < 0.015, "std {std}");
    assert!(!config.placement().protects_against_coordinator());
}

#[test]
fn a_charge_at_another_sigma_is_refused() {
    let config = DpConfig::new(1.0, 2.0, NoisePlacement::Local).unwrap();
    let mut accountant = roomy_accountant();
    let charge = accountant
        .try_spend(1.0, |_| Ok::<(), std::io::Error>(()))
        .unwrap();
    let mut update = vec![0.5, 0.5];
    let err = config
        .privatise_site_update(&mut update, charge, &mut StdRng::seed_from_u64(1))
        .unwrap_err();
    assert!(
        matches!(err, DpError::ChargeMismatch { round: 1, charged, configured }
            if charged == 1.0 && configured == 2.0),
        "{err}"
    );
    assert_eq!(update, [0.5, 0.5]);
}

#[test]
fn config_is_validated_on_load_and_describes_itself() {
    let ok: DpConfig = serde_json::from_str(
        r#"{"clip_norm": 1.0, "noise_multiplier": 3.5,
            "placement": {"kind": "local_with_secure_aggregation", "min_contributors": 3}}"#,
    )
    .unwrap();
    let text = ok.describe();
    assert!(text.contains("σ·C = 3.5"), "{text}");
    assert!(text.contains("√3"), "{text}");
    assert_eq!(
        ok.placement().to_string(),
        "local with secure aggregation (at least 3 contributors)"
    );

    for (json, field) in [
        (
            r#"{"clip_norm": -1.0, "noise_multiplier": 1.0, "placement": {"kind": "central"}}"#,
            "clip_norm",
        ),
        (
            r#"{"clip_norm": 1.0, "noise_multiplier": 0.0, "placement": {"kind": "local"}}"#,
            "noise_multiplier",
        ),
        (
            r#"{"clip_norm": 1.0, "noise_multiplier": 1.0,
                "placement": {"kind": "local_with_secure_aggregation", "min_contributors": 0}}"#,
            "placement.min_contributors",
        ),
    ] {
        let err = serde_json::from_str::<DpConfig>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{err}");
    }
    let unknown = r#"{"clip_norm": 1.0, "noise_multiplier": 1.0, "placement": {"kind": "central"}, "sigma": 2}"#;
    assert!(serde_json::from_str::<DpConfig>(unknown).is_err());
}
