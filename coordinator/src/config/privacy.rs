//! `[privacy]`: secure aggregation and DP-FedAvg, their defaults, the
//! checks of their settings, and what else in the task they rule out.

use medfed_wire::Task;
use serde::Deserialize;

use super::file::{EvaluationSection, PrivacySection, TrainingSection};
use super::{Aggregation, Algorithm, ConfigError};

/// What a securely aggregated training round that cannot be summed (fewer
/// than the threshold survive a stage, or the sum is refused) does to the
/// run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailedRound {
    /// The run stops with an error and writes no model (the checkpoint
    /// keeps the last completed round).
    #[default]
    Stop,
    /// The round is recorded as failed, the model stays as it was, and
    /// training goes on with the next round (members that come back take
    /// part again).
    Skip,
}

/// The δ at which `coordinator config check` states the ε a whole run
/// costs a site (each site holds its own budget and δ).
pub const REFERENCE_DELTA: f64 = 1e-5;

/// Default fractional bits of the secure-aggregation fixed point: a
/// precision of 2^-24 (6e-8) per value, and room for values up to about
/// 2^39 / n for n members.
pub const DEFAULT_FIXED_POINT_BITS: u32 = 24;

/// The default secure-aggregation threshold for `members` members:
/// ⌈2n/3⌉ (and never below ⌊n/2⌋ + 1 nor above n). More than half keeps
/// the protocol's guarantee against a coordinator alone (at most one
/// survivor set can gather t signatures); two thirds also keeps it when
/// up to 2t − n − 1 ≈ n/3 members collude with the coordinator (Bonawitz
/// et al., full version, §6), and still lets a third of the members drop.
pub fn default_threshold(members: usize) -> u32 {
    let two_thirds = (2 * members).div_ceil(3);
    two_thirds.max(members / 2 + 1).min(members) as u32
}

/// The checked `[privacy.dp]` settings (`None`: DP off).
pub(super) fn dp_settings(
    privacy: &PrivacySection,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<medfed_wire::DifferentialPrivacy>, ConfigError> {
    let Some(dp) = &privacy.dp else {
        return Ok(None);
    };
    for (key, value) in [
        ("privacy.dp.noise_multiplier", dp.noise_multiplier),
        ("privacy.dp.clip_norm", dp.clip_norm),
    ] {
        if !(value.is_finite() && value > 0.0) {
            return Err(invalid(
                key,
                format!("{value} is not allowed: expected a finite number > 0"),
            ));
        }
    }
    Ok(Some(medfed_wire::DifferentialPrivacy {
        noise_multiplier: dp.noise_multiplier,
        clip_norm: dp.clip_norm,
    }))
}

/// The checked `[privacy]` settings for `members` members (`None`: secure
/// aggregation off).
pub(super) fn privacy_settings(
    privacy: &PrivacySection,
    members: usize,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Option<medfed_wire::SecureAggregation>, ConfigError> {
    if !privacy.secure_aggregation {
        for (key, set) in [
            ("privacy.threshold", privacy.threshold.is_some()),
            (
                "privacy.fixed_point_bits",
                privacy.fixed_point_bits.is_some(),
            ),
            ("privacy.failed_round", privacy.failed_round.is_some()),
        ] {
            if set {
                return Err(invalid(
                    key,
                    "applies to secure aggregation only: set privacy.secure_aggregation = true"
                        .into(),
                ));
            }
        }
        return Ok(None);
    }
    if members < 2 {
        return Err(invalid(
            "privacy.secure_aggregation",
            format!("needs at least 2 members, the task has {members}"),
        ));
    }
    let threshold = privacy
        .threshold
        .unwrap_or_else(|| default_threshold(members));
    let t = threshold as usize;
    if t * 2 <= members || t > members {
        return Err(invalid(
            "privacy.threshold",
            format!(
                "{threshold} is out of range for {members} members: expected more than half \
                 and at most all ({} to {members})",
                members / 2 + 1
            ),
        ));
    }
    let fixed_point_bits = privacy.fixed_point_bits.unwrap_or(DEFAULT_FIXED_POINT_BITS);
    let max = medfed_secure::secagg::FixedPoint::MAX_FRAC_BITS;
    if !(1..=max).contains(&fixed_point_bits) {
        return Err(invalid(
            "privacy.fixed_point_bits",
            format!("{fixed_point_bits} is out of range 1 to {max}"),
        ));
    }
    Ok(Some(medfed_wire::SecureAggregation {
        threshold,
        fixed_point_bits,
    }))
}

/// Refuses what differential privacy or secure aggregation, when `task`
/// has them, rule out in the training and evaluation settings: other
/// aggregations, coordinator-side clipping, site-alone baselines, and
/// skipping a failed round of an exact algorithm.
pub(super) fn check_privacy(
    privacy: &PrivacySection,
    training: &TrainingSection,
    evaluation: &EvaluationSection,
    task: &Task,
    algorithm: Algorithm,
    invalid: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let secure = task.secure_aggregation.is_some();
    let dp = task.differential_privacy.is_some();
    if dp {
        let refused =
            |key: &str, problem: &str| invalid(key, format!("{problem} (privacy.dp is set)"));
        if training.aggregation != Aggregation::Fedavg {
            return Err(refused(
                "training.aggregation",
                &format!(
                    "\"{}\" is not covered by DP-FedAvg's guarantee, which needs the \
                     plain sum of clipped updates: use \"fedavg\"",
                    format!("{:?}", training.aggregation).to_lowercase()
                ),
            ));
        }
        if training.clip_norm.is_some() {
            return Err(refused(
                "training.clip_norm",
                "every site clips its own update to privacy.dp.clip_norm; remove \
                 training.clip_norm",
            ));
        }
        if evaluation.baselines {
            return Err(refused(
                "evaluation.baselines",
                "site-alone models are released without clipping or noise, outside the \
                 privacy budget: set evaluation.baselines = false",
            ));
        }
    }
    if secure {
        let refused = |key: &str, what: &str| {
            invalid(
                key,
                format!(
                    "{what} needs every member's update in clear; with \
                     privacy.secure_aggregation = true the coordinator sees only their sum"
                ),
            )
        };
        if training.aggregation != Aggregation::Fedavg {
            return Err(refused(
                "training.aggregation",
                &format!("\"{:?}\"", training.aggregation).to_lowercase(),
            ));
        }
        if training.clip_norm.is_some() {
            return Err(refused("training.clip_norm", "clipping at the coordinator"));
        }
        if training.max_update_norm.is_some() {
            return Err(refused(
                "training.max_update_norm",
                "refusing long updates at the coordinator",
            ));
        }
        if privacy.failed_round == Some(FailedRound::Skip)
            && !matches!(algorithm, Algorithm::Fedavg | Algorithm::Fedprox)
        {
            return Err(invalid(
                "privacy.failed_round",
                format!(
                    "\"skip\" applies to \"fedavg\" and \"fedprox\" rounds; a {} step \
                     that cannot be summed stops the run",
                    algorithm
                ),
            ));
        }
        if evaluation.baselines {
            return Err(invalid(
                "evaluation.baselines",
                "a site-alone model is one site's model, sent in clear; with \
                 privacy.secure_aggregation = true the coordinator sees only sums over the \
                 sites: set evaluation.baselines = false"
                    .into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::default_threshold;

    #[test]
    fn the_default_threshold_is_two_thirds_rounded_up() {
        let expected = [
            (2, 2),
            (3, 2),
            (4, 3),
            (5, 4),
            (6, 4),
            (7, 5),
            (9, 6),
            (10, 7),
            (20, 14),
            (100, 67),
            (255, 170),
        ];
        for (n, t) in expected {
            assert_eq!(default_threshold(n), t, "n = {n}");
        }
        for n in 2..=255usize {
            let t = default_threshold(n) as usize;
            assert!(t * 2 > n && t <= n, "n = {n}: t = {t}");
            assert!(3 * t >= 2 * n, "n = {n}: t = {t} is below 2n/3");
        }
    }
}
