//! Checked conversions of the differential-privacy messages: a task's
//! DP-FedAvg settings, the spend a member reports with its update, and a
//! member's refusal of a round its budget cannot pay for.

use crate::WireError;
use crate::convert::check_task_id;
use crate::message::{BudgetRefusal, DifferentialPrivacy, PrivacySpend, Task};
use crate::pb;

type Result<T> = std::result::Result<T, WireError>;

/// Checks a task's DP-FedAvg settings: a finite positive noise multiplier
/// and clip norm, as [`medfed_secure::dp::DpConfig::new`] requires.
///
/// # Errors
/// [`WireError::Invalid`] naming the field.
pub fn validate_differential_privacy(settings: &DifferentialPrivacy) -> Result<()> {
    let checks = [
        (
            "task.differential_privacy.noise_multiplier",
            settings.noise_multiplier,
        ),
        ("task.differential_privacy.clip_norm", settings.clip_norm),
    ];
    for (field, value) in checks {
        if !(value.is_finite() && value > 0.0) {
            return Err(WireError::Invalid {
                field,
                reason: format!("{value} is not a finite number > 0"),
            });
        }
    }
    let placement = medfed_secure::dp::NoisePlacement::Central;
    medfed_secure::dp::DpConfig::new(settings.clip_norm, settings.noise_multiplier, placement)
        .map_err(|e| WireError::Invalid {
            field: "task.differential_privacy",
            reason: e.to_string(),
        })?;
    Ok(())
}

/// Converts DP settings for the wire.
pub fn dp_to_pb(settings: &DifferentialPrivacy) -> pb::DifferentialPrivacy {
    pb::DifferentialPrivacy {
        noise_multiplier: settings.noise_multiplier,
        clip_norm: settings.clip_norm,
    }
}

/// Converts DP settings from the wire (validated with the task).
pub fn dp_from_pb(settings: pb::DifferentialPrivacy) -> DifferentialPrivacy {
    let pb::DifferentialPrivacy {
        noise_multiplier,
        clip_norm,
    } = settings;
    DifferentialPrivacy {
        noise_multiplier,
        clip_norm,
    }
}

/// Converts a reported spend for the wire.
pub fn spend_to_pb(spend: &PrivacySpend) -> pb::PrivacySpend {
    pb::PrivacySpend {
        round: spend.round,
        noise_multiplier: spend.noise_multiplier,
        epsilon: spend.epsilon,
        delta: spend.delta,
        rounds: spend.rounds,
        budget_epsilon: spend.budget_epsilon,
    }
}

/// Whether `value` is finite and at least 0.
fn non_negative(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

/// Converts and validates a spend reported with round `round` of `task`:
/// the task uses DP, the round is the submission's, the noise multiplier is
/// the task's, ε and the budget are finite and non-negative, `0 < δ < 1`,
/// and at least one round is charged.
///
/// # Errors
/// [`WireError::Invalid`] naming the field.
pub fn spend_from_pb(spend: pb::PrivacySpend, task: &Task, round: u32) -> Result<PrivacySpend> {
    let pb::PrivacySpend {
        round: spent_round,
        noise_multiplier,
        epsilon,
        delta,
        rounds,
        budget_epsilon,
    } = spend;
    let invalid = |field: &'static str, reason: String| WireError::Invalid { field, reason };
    let Some(dp) = task.differential_privacy else {
        return Err(invalid(
            "privacy_spend",
            "this task does not use differential privacy".into(),
        ));
    };
    if spent_round != round {
        return Err(invalid(
            "privacy_spend.round",
            format!("{spent_round} is not the submission's round {round}"),
        ));
    }
    // Exact: the member must have been charged the very σ the task sets.
    let same_sigma = noise_multiplier == dp.noise_multiplier;
    if !same_sigma {
        return Err(invalid(
            "privacy_spend.noise_multiplier",
            format!(
                "{noise_multiplier} is not the task's noise multiplier {}",
                dp.noise_multiplier
            ),
        ));
    }
    if !non_negative(epsilon) || !non_negative(budget_epsilon) {
        return Err(invalid(
            "privacy_spend.epsilon",
            format!("ε = {epsilon} and budget {budget_epsilon} must be finite numbers >= 0"),
        ));
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(invalid(
            "privacy_spend.delta",
            format!("{delta} is not in (0, 1)"),
        ));
    }
    if rounds == 0 || rounds > medfed_secure::dp::rdp::MAX_ROUNDS {
        return Err(invalid(
            "privacy_spend.rounds",
            format!("{rounds} is not a number of rounds charged"),
        ));
    }
    Ok(PrivacySpend {
        round,
        noise_multiplier,
        epsilon,
        delta,
        rounds,
        budget_epsilon,
    })
}

/// Converts a budget refusal for the wire.
pub fn refusal_to_pb(refusal: &BudgetRefusal, task_id: &str) -> pb::BudgetRefusal {
    pb::BudgetRefusal {
        task_id: task_id.to_owned(),
        step: refusal.step,
        round: refusal.round,
        spent_epsilon: refusal.spent_epsilon,
        delta: refusal.delta,
        epsilon_after_round: refusal.epsilon_after_round,
        budget_epsilon: refusal.budget_epsilon,
        rounds_spent: refusal.rounds_spent,
    }
}

/// Converts and validates a member's budget refusal: the task uses DP, the
/// round is 0 (before training) or in range, the ε values are finite and
/// non-negative and `0 < δ < 1`.
///
/// # Errors
/// [`WireError::Invalid`] naming the field.
pub fn refusal_from_pb(refusal: pb::BudgetRefusal, task: &Task) -> Result<BudgetRefusal> {
    let pb::BudgetRefusal {
        task_id,
        step,
        round,
        spent_epsilon,
        delta,
        epsilon_after_round,
        budget_epsilon,
        rounds_spent,
    } = refusal;
    check_task_id(task, task_id)?;
    let invalid = |field: &'static str, reason: String| WireError::Invalid { field, reason };
    if task.differential_privacy.is_none() {
        return Err(invalid(
            "budget_refusal",
            "this task does not use differential privacy".into(),
        ));
    }
    if round > task.rounds {
        return Err(invalid(
            "budget_refusal.round",
            format!("round {round} is outside 0..={}", task.rounds),
        ));
    }
    if ![spent_epsilon, epsilon_after_round, budget_epsilon]
        .into_iter()
        .all(non_negative)
    {
        return Err(invalid(
            "budget_refusal.epsilon",
            "spent, after-round and budget ε must be finite numbers >= 0".into(),
        ));
    }
    if !(delta > 0.0 && delta < 1.0) {
        return Err(invalid(
            "budget_refusal.delta",
            format!("{delta} is not in (0, 1)"),
        ));
    }
    Ok(BudgetRefusal {
        step,
        round,
        spent_epsilon,
        delta,
        epsilon_after_round,
        budget_epsilon,
        rounds_spent,
    })
}
