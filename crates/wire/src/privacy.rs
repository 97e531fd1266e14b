//! Checked conversions of the differential-privacy messages: a task's
//! DP-FedAvg settings, the spend a member reports with its update, and a
//! member's refusal of a round its budget cannot pay for (or of a DP task
//! it has no budget for).

use crate::WireError;
use crate::convert::check_task_id;
use crate::message::{
    BudgetRefusal, DifferentialPrivacy, PrivacySpend, Refusal, RefusalReason, Task,
};
use crate::pb;
use medfed_secure::dp::NoisePlacement;

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
        noise: spend_noise_to_pb(spend.placement).into(),
    }
}

/// The wire's name for where a member's noise was added.
fn spend_noise_to_pb(placement: NoisePlacement) -> pb::SpendNoise {
    match placement {
        NoisePlacement::Local => pb::SpendNoise::Full,
        NoisePlacement::LocalWithSecureAggregation { .. } => pb::SpendNoise::SecureShare,
        // Central, and any placement added later: the coordinator noises
        // the sum, which keeps the guarantee whatever the member did.
        _ => pb::SpendNoise::ClippedOnly,
    }
}

/// Whether `value` is finite and at least 0.
fn non_negative(value: f64) -> bool {
    value.is_finite() && value >= 0.0
}

/// `spend` encoded as a member records it in its own exchange log.
pub fn encode_spend(spend: &PrivacySpend) -> Vec<u8> {
    prost::Message::encode_to_vec(&spend_to_pb(spend))
}

/// Converts and validates a spend reported with round `round` of `task`:
/// the task uses DP, the round is the submission's, the noise multiplier is
/// the task's, ε and the budget are finite and non-negative, `0 < δ < 1`,
/// at least one round is charged, and the noise is a secure share under
/// secure aggregation, clipped-only or full without.
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
        noise,
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
    let placement = match (pb::SpendNoise::try_from(noise), task.secure_aggregation) {
        (Ok(pb::SpendNoise::SecureShare), Some(settings)) => {
            NoisePlacement::LocalWithSecureAggregation {
                min_contributors: settings.threshold,
            }
        }
        (Ok(pb::SpendNoise::ClippedOnly), None) => NoisePlacement::Central,
        (Ok(pb::SpendNoise::Full), None) => NoisePlacement::Local,
        (Ok(other), secure) => {
            return Err(invalid(
                "privacy_spend.noise",
                format!(
                    "{} does not fit a task {} secure aggregation",
                    other.as_str_name(),
                    if secure.is_some() { "with" } else { "without" }
                ),
            ));
        }
        (Err(_), _) => {
            return Err(invalid(
                "privacy_spend.noise",
                format!("{noise} is not a known noise (0 clipped only, 1 full, 2 secure share)"),
            ));
        }
    };
    Ok(PrivacySpend {
        round,
        noise_multiplier,
        epsilon,
        delta,
        rounds,
        budget_epsilon,
        placement,
    })
}

/// Converts a budget refusal for the wire.
pub fn refusal_to_pb(refusal: &BudgetRefusal, task_id: &str) -> pb::BudgetRefusal {
    let reason = match refusal.reason {
        RefusalReason::BudgetSpent => pb::budget_refusal::Reason::BudgetSpent,
        RefusalReason::NoBudget => pb::budget_refusal::Reason::NoBudget,
    };
    pb::BudgetRefusal {
        task_id: task_id.to_owned(),
        step: refusal.step,
        round: refusal.round,
        spent_epsilon: refusal.spent_epsilon,
        delta: refusal.delta,
        epsilon_after_round: refusal.epsilon_after_round,
        budget_epsilon: refusal.budget_epsilon,
        rounds_spent: refusal.rounds_spent,
        reason: reason.into(),
    }
}

/// Converts and validates a member's budget refusal: the task uses DP and
/// the reason is a known one. A spent budget names a round of 0 (before
/// training) or in range, finite non-negative ε values and `0 < δ < 1`; a
/// missing budget says nothing else (step, round, ε, δ and rounds all 0).
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
        reason,
    } = refusal;
    check_task_id(task, task_id)?;
    let invalid = |field: &'static str, reason: String| WireError::Invalid { field, reason };
    if task.differential_privacy.is_none() {
        return Err(invalid(
            "budget_refusal",
            "this task does not use differential privacy".into(),
        ));
    }
    let reason = match pb::budget_refusal::Reason::try_from(reason) {
        Ok(pb::budget_refusal::Reason::BudgetSpent) => RefusalReason::BudgetSpent,
        Ok(pb::budget_refusal::Reason::NoBudget) => RefusalReason::NoBudget,
        Err(_) => {
            return Err(invalid(
                "budget_refusal.reason",
                format!("{reason} is not a known reason (0 budget spent, 1 no budget)"),
            ));
        }
    };
    if reason == RefusalReason::NoBudget {
        let no_budget = BudgetRefusal::no_budget();
        let said = BudgetRefusal {
            step,
            round,
            spent_epsilon,
            delta,
            epsilon_after_round,
            budget_epsilon,
            rounds_spent,
            reason,
        };
        // Exact: a site without a budget has nothing to report, and a
        // notice that says more is not one this build writes.
        if said != no_budget {
            return Err(invalid(
                "budget_refusal",
                format!(
                    "a notice of no budget must carry nothing else (step, round, ε, δ and \
                     rounds all 0); got step {step}, round {round}, spent ε {spent_epsilon}, \
                     δ {delta}, ε after the round {epsilon_after_round}, budget ε \
                     {budget_epsilon}, {rounds_spent} rounds"
                ),
            ));
        }
        return Ok(no_budget);
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
        reason,
    })
}

/// Converts a member's policy refusal for the wire.
pub fn policy_refusal_to_pb(refusal: &Refusal, task_id: &str) -> pb::Refusal {
    pb::Refusal {
        task_id: task_id.to_owned(),
        step: refusal.step,
        rule: refusal.rule.clone(),
        reason: refusal.reason.clone(),
    }
}

/// Converts and validates a member's policy refusal: the task's id, a rule
/// name and a reason within their bounds.
///
/// # Errors
/// [`WireError::Invalid`] naming the field.
pub fn policy_refusal_from_pb(refusal: pb::Refusal, task: &Task) -> Result<Refusal> {
    let pb::Refusal {
        task_id,
        step,
        rule,
        reason,
    } = refusal;
    check_task_id(task, task_id)?;
    let refusal = Refusal { step, rule, reason };
    refusal.validate().map_err(|reason| WireError::Invalid {
        field: "refusal",
        reason,
    })?;
    Ok(refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dp_task() -> Task {
        Task {
            task_id: "t1".into(),
            features: vec!["a".into()],
            columns: vec![medfed_model::ColumnSpec::numeric("a")],
            target: "y".into(),
            model: medfed_model::ModelKind::Logistic,
            l2: 0.0,
            local_steps: 1,
            learning_rate: 0.5,
            holdout_fraction: 0.25,
            split_seed: 7,
            rounds: 5,
            score_bins: 4,
            members: vec!["h1".into(), "h2".into()],
            secure_aggregation: None,
            differential_privacy: Some(DifferentialPrivacy {
                noise_multiplier: 1.0,
                clip_norm: 1.0,
            }),
            algorithm: crate::TrainingAlgorithm::Fedavg,
            baselines: false,
            evaluate_every: 1,
        }
    }

    fn spent() -> BudgetRefusal {
        BudgetRefusal {
            step: 9,
            round: 4,
            spent_epsilon: 1.5,
            delta: 1e-5,
            epsilon_after_round: 2.1,
            budget_epsilon: 2.0,
            rounds_spent: 3,
            reason: RefusalReason::BudgetSpent,
        }
    }

    fn spend(placement: NoisePlacement) -> PrivacySpend {
        PrivacySpend {
            round: 2,
            noise_multiplier: 1.0,
            epsilon: 0.8,
            delta: 1e-5,
            rounds: 2,
            budget_epsilon: 5.0,
            placement,
        }
    }

    /// Where the noise went travels with the spend, and must fit the task:
    /// a secure share only under secure aggregation, clipped-only or full
    /// only without; an unknown value is refused by name.
    #[test]
    fn a_spend_says_where_its_noise_went_and_it_must_fit_the_task() {
        let clear = dp_task();
        for placement in [NoisePlacement::Central, NoisePlacement::Local] {
            let sent = spend(placement);
            assert_eq!(spend_from_pb(spend_to_pb(&sent), &clear, 2), Ok(sent));
        }
        let mut secure = dp_task();
        secure.secure_aggregation = Some(crate::SecureAggregation {
            threshold: 2,
            fixed_point_bits: 24,
        });
        let share = spend(NoisePlacement::LocalWithSecureAggregation {
            min_contributors: 2,
        });
        assert_eq!(spend_from_pb(spend_to_pb(&share), &secure, 2), Ok(share));
        let misfits = [
            (spend_to_pb(&share), &clear),
            (spend_to_pb(&spend(NoisePlacement::Local)), &secure),
            (spend_to_pb(&spend(NoisePlacement::Central)), &secure),
        ];
        for (wire, task) in misfits {
            let err = spend_from_pb(wire, task, 2).expect_err("refused");
            assert!(
                matches!(
                    err,
                    WireError::Invalid {
                        field: "privacy_spend.noise",
                        ..
                    }
                ),
                "{err}"
            );
        }
        let mut unknown = spend_to_pb(&spend(NoisePlacement::Local));
        unknown.noise = 9;
        let err = spend_from_pb(unknown, &clear, 2).expect_err("refused");
        assert!(err.to_string().contains("not a known noise"), "{err}");
    }

    #[test]
    fn both_reasons_round_trip() {
        let task = dp_task();
        for refusal in [spent(), BudgetRefusal::no_budget()] {
            let wire = refusal_to_pb(&refusal, "t1");
            assert_eq!(refusal_from_pb(wire, &task), Ok(refusal));
        }
    }

    #[test]
    fn a_notice_without_a_reason_keeps_its_old_meaning() {
        // Field 9 absent on the wire decodes as 0: a spent budget, with the
        // ε values it always carried.
        let mut wire = refusal_to_pb(&spent(), "t1");
        wire.reason = 0;
        use prost::Message;
        let bytes = wire.encode_to_vec();
        let decoded = pb::BudgetRefusal::decode(bytes.as_slice()).expect("decode");
        let refusal = refusal_from_pb(decoded, &dp_task()).expect("valid");
        assert_eq!(refusal.reason, RefusalReason::BudgetSpent);
        assert_eq!(refusal, spent());
        assert!(refusal.to_string().contains("is spent"), "{refusal}");
    }

    #[test]
    fn an_unknown_reason_is_refused_by_name() {
        let mut wire = refusal_to_pb(&spent(), "t1");
        wire.reason = 7;
        let err = refusal_from_pb(wire, &dp_task()).expect_err("refused");
        assert!(
            matches!(
                err,
                WireError::Invalid {
                    field: "budget_refusal.reason",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn a_notice_of_no_budget_carries_nothing_else() {
        let changes: [fn(&mut pb::BudgetRefusal); 7] = [
            |w| w.step = 3,
            |w| w.round = 1,
            |w| w.spent_epsilon = 0.5,
            |w| w.delta = 1e-5,
            |w| w.epsilon_after_round = f64::NAN,
            |w| w.budget_epsilon = 1.0,
            |w| w.rounds_spent = 2,
        ];
        for change in changes {
            let mut wire = refusal_to_pb(&BudgetRefusal::no_budget(), "t1");
            change(&mut wire);
            let err = refusal_from_pb(wire.clone(), &dp_task()).expect_err("refused");
            assert!(
                err.to_string().contains("must carry nothing else"),
                "{wire:?}: {err}"
            );
        }
    }

    #[test]
    fn no_budget_reads_as_such_and_says_how_to_set_one() {
        let text = BudgetRefusal::no_budget().to_string();
        for needed in [
            "no privacy budget set",
            "[privacy]",
            "--dp-epsilon",
            "--dp-delta",
        ] {
            assert!(text.contains(needed), "{needed:?} missing from {text:?}");
        }
    }

    #[test]
    fn a_refusal_in_a_task_without_dp_is_refused() {
        let mut task = dp_task();
        task.differential_privacy = None;
        let wire = refusal_to_pb(&BudgetRefusal::no_budget(), "t1");
        let err = refusal_from_pb(wire, &task).expect_err("refused");
        assert!(
            err.to_string()
                .contains("does not use differential privacy"),
            "{err}"
        );
    }

    #[test]
    fn a_policy_refusal_keeps_its_rule_and_a_malformed_one_is_refused() {
        let task = dp_task();
        let sent = Refusal::new(4, "min_rows", "fewer training rows than min_rows = 10");
        let received = policy_refusal_from_pb(policy_refusal_to_pb(&sent, "t1"), &task);
        assert_eq!(received, Ok(sent.clone()));
        let other_task = policy_refusal_from_pb(policy_refusal_to_pb(&sent, "t2"), &task);
        assert!(other_task.is_err());
        let mut bad = policy_refusal_to_pb(&sent, "t1");
        bad.rule = "min rows; DROP".into();
        assert!(matches!(
            policy_refusal_from_pb(bad, &task),
            Err(WireError::Invalid {
                field: "refusal",
                ..
            })
        ));
    }
}
