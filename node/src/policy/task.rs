//! The checks of a task at join, before anything is computed from the
//! rows: every rule of the policy, each with its verdict, so that `node task
//! review` can show them all and `node run` refuses on the first that fails.

use medfed_wire::Task;

use super::approval::{ApprovedTasks, task_sha256};
use super::cells::check_design_cells;
use super::{Policy, Refused};
use crate::data::{DataError, SiteData};

/// One rule's verdict on a task.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// The rule (a `[policy]` key, or a data reason).
    pub rule: &'static str,
    /// What it found, in plain words (no record value).
    pub what: String,
    /// Whether the task passes it.
    pub passes: bool,
}

/// Every verdict on a task, and its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskCheck {
    /// The task's SHA-256 (what `node task approve` records).
    pub sha256: String,
    /// The verdicts, in the order they are checked.
    pub verdicts: Vec<Verdict>,
    /// Why no held-out counts may leave this site in this task (a
    /// held-out patient alone in a design column), if so.
    pub withhold_held_out: Option<String>,
}

impl TaskCheck {
    /// The first failing verdict as a refusal of the task.
    ///
    /// # Errors
    /// That refusal.
    pub fn result(&self) -> Result<(), Refused> {
        match self.verdicts.iter().find(|v| !v.passes) {
            Some(v) => Err(Refused::task(v.rule, v.what.clone())),
            None => Ok(()),
        }
    }
}

/// Checks `task` against `policy` and this site's rows: `identifiers` are
/// the vault columns flagged as record identifiers, `site` the task's rows
/// (or why the vault cannot serve it), `approved` the approvals file when
/// the policy asks for approval.
pub fn check_task(
    policy: &Policy,
    task: &Task,
    identifiers: &[String],
    site: Result<&SiteData, &DataError>,
    approved: Option<&ApprovedTasks>,
) -> TaskCheck {
    let sha256 = task_sha256(task);
    let mut verdicts = Vec::new();
    let mut withhold_held_out = None;
    let mut verdict = |rule: &'static str, passes: bool, what: String| {
        verdicts.push(Verdict { rule, what, passes });
    };

    if let Some(approved) = approved {
        let passes = approved.contains(&sha256);
        verdict(
            "approved_tasks",
            passes,
            if passes {
                format!("the task (SHA-256 {sha256}) is approved")
            } else {
                format!(
                    "the task's description (SHA-256 {sha256}) is not one this hospital approved \
                     (`node task approve` records one in {})",
                    approved.path.display()
                )
            },
        );
    }
    columns(policy, task, identifiers, &mut verdict);
    let model_ok = policy.models.contains(&task.model);
    verdict(
        "models",
        model_ok,
        format!(
            "a {} model{}",
            task.model,
            if model_ok {
                " is allowed"
            } else {
                " is not allowed by this hospital"
            }
        ),
    );
    let algorithm_ok = policy.algorithms.contains(&task.algorithm);
    verdict(
        "algorithms",
        algorithm_ok,
        format!(
            "trained by {}{}",
            task.algorithm,
            if algorithm_ok {
                ", allowed"
            } else {
                ", which this hospital does not allow"
            }
        ),
    );
    privacy(policy, task, &mut verdict);
    secure_threshold(policy, task, &mut verdict);
    if let Some(members) = &policy.members {
        let strangers: Vec<&str> = task
            .members
            .iter()
            .filter(|m| !members.contains(m))
            .map(String::as_str)
            .collect();
        verdict(
            "members",
            strangers.is_empty(),
            if strangers.is_empty() {
                format!(
                    "every member ({}) is one this hospital agreed to",
                    task.members.join(", ")
                )
            } else {
                format!(
                    "the task lists members this hospital did not agree to federate with: {}",
                    strangers.join(", ")
                )
            },
        );
    }
    verdict(
        "max_score_bins",
        task.score_bins <= policy.max_score_bins,
        format!(
            "evaluation counts over {} score bins (at most {} allowed)",
            task.score_bins, policy.max_score_bins
        ),
    );
    match site {
        Ok(site) => withhold_held_out = rows(policy, task, site, &mut verdict),
        Err(error) => {
            let rule = match error {
                DataError::Columns { .. } => "missing_column",
                DataError::Target { .. } => "invalid_labels",
                _ => "no_training_rows",
            };
            // The error and its causes: they name columns and counts,
            // never values.
            let mut what = error.to_string();
            let mut cause = std::error::Error::source(error);
            while let Some(inner) = cause {
                what = format!("{what}: {inner}");
                cause = inner.source();
            }
            verdict(rule, false, what);
        }
    }
    TaskCheck {
        sha256,
        verdicts,
        withhold_held_out,
    }
}

/// `columns`, `deny_columns` and the identifier flags.
fn columns(
    policy: &Policy,
    task: &Task,
    identifiers: &[String],
    verdict: &mut impl FnMut(&'static str, bool, String),
) {
    let used = task.features.iter().chain(std::iter::once(&task.target));
    for name in used {
        if policy.deny_columns.contains(name) {
            verdict(
                "deny_columns",
                false,
                format!("column `{name}` is one this hospital never releases (deny_columns)"),
            );
        } else if identifiers.contains(name) && !policy.not_identifiers.contains(name) {
            verdict(
                "columns",
                false,
                format!(
                    "column `{name}` looks like a record identifier, so it is not used unless \
                     the data steward clears it ([policy] not_identifiers)"
                ),
            );
        } else if policy
            .columns
            .as_ref()
            .is_some_and(|allowed| !allowed.contains(name))
        {
            verdict(
                "columns",
                false,
                format!("column `{name}` is not in this hospital's allowed columns"),
            );
        }
    }
    verdict(
        "columns",
        true,
        format!(
            "target `{}` and features {} are allowed",
            task.target,
            task.features.join(", ")
        ),
    );
}

/// `require_secure_aggregation`, `require_dp`, `min_noise_multiplier`,
/// `max_epsilon_per_round`, what a DP task may ask for (no exact algorithm,
/// no site-alone models), and who adds the noise without secure
/// aggregation (`trust_coordinator_noise`).
fn privacy(policy: &Policy, task: &Task, verdict: &mut impl FnMut(&'static str, bool, String)) {
    if policy.require_secure_aggregation {
        verdict(
            "require_secure_aggregation",
            task.secure_aggregation.is_some(),
            if task.secure_aggregation.is_some() {
                "securely aggregated, as this hospital requires".into()
            } else {
                "not securely aggregated, and this hospital requires it".into()
            },
        );
    }
    match &task.differential_privacy {
        None => {
            if policy.require_dp {
                verdict(
                    "require_dp",
                    false,
                    "without differential privacy, and this hospital requires it".into(),
                );
            }
        }
        Some(dp) => {
            verdict(
                "min_noise_multiplier",
                dp.noise_multiplier >= policy.min_noise_multiplier,
                format!(
                    "differential privacy at noise multiplier σ = {} (at least {} required)",
                    dp.noise_multiplier, policy.min_noise_multiplier
                ),
            );
            if task.algorithm.is_exact() {
                verdict(
                    "task",
                    false,
                    format!(
                        "a differential-privacy task trained by {}, whose exact sums (gradient \
                         and Hessian, or X'X and X'y) would leave neither clipped nor noised",
                        task.algorithm
                    ),
                );
            }
            if task.baselines {
                verdict(
                    "task",
                    false,
                    "a differential-privacy task asks for a site-alone model, which would leave \
                     un-noised"
                        .into(),
                );
            }
            if task.secure_aggregation.is_none() {
                verdict(
                    "trust_coordinator_noise",
                    true,
                    if policy.trust_coordinator_noise {
                        "without secure aggregation, this site clips its updates only and trusts \
                         the coordinator to noise their sum (central noise)"
                            .into()
                    } else {
                        "without secure aggregation, this site adds the full noise to its own \
                         updates (local noise): the coordinator is not trusted with them"
                            .into()
                    },
                );
            }
            if let Some(cap) = policy.max_epsilon_per_round {
                let round = medfed_secure::dp::analytic::analytic_gaussian_epsilon(
                    dp.noise_multiplier,
                    1e-5,
                );
                let (passes, cost) = match round {
                    Ok(epsilon) => (epsilon <= cap, format!("ε = {epsilon:.4}")),
                    Err(_) => (false, "an ε that cannot be computed".to_owned()),
                };
                verdict(
                    "max_epsilon_per_round",
                    passes,
                    format!("one round alone costs {cost} at δ = 1e-5 (at most {cap} allowed)"),
                );
            }
        }
    }
}

/// `min_threshold`: a secure task's threshold against the floor for its
/// member count (each round's roster is checked again by
/// [`crate::secagg::SecureRounds`]).
fn secure_threshold(
    policy: &Policy,
    task: &Task,
    verdict: &mut impl FnMut(&'static str, bool, String),
) {
    let Some(settings) = &task.secure_aggregation else {
        return;
    };
    let members = task.members.len();
    let floor = policy.min_threshold.floor(members);
    let passes = u64::from(settings.threshold) >= floor;
    verdict(
        "min_threshold",
        passes,
        format!(
            "secure-aggregation threshold {} of {members} members (at least {floor} required: \
             min_threshold = {} of the members, rounded up)",
            settings.threshold, policy.min_threshold
        ),
    );
}

/// `min_rows`, `max_parameters_per_row` and `min_cell` on this site's rows;
/// returns why the held-out counts must be withheld, if they must.
fn rows(
    policy: &Policy,
    task: &Task,
    site: &SiteData,
    verdict: &mut impl FnMut(&'static str, bool, String),
) -> Option<String> {
    let train = site.train.y.len() as u64;
    let holdout = site.holdout.y.len() as u64;
    let enough = train >= policy.min_rows;
    verdict(
        "min_rows",
        enough,
        if enough {
            format!(
                "{train} training rows (at least min_rows = {})",
                policy.min_rows
            )
        } else {
            format!(
                "fewer training rows than min_rows = {}: this site takes no part",
                policy.min_rows
            )
        },
    );
    if !enough {
        return None;
    }
    if holdout > 0 && holdout < policy.min_rows {
        verdict(
            "min_rows",
            true,
            format!(
                "{holdout} held-out rows, fewer than min_rows = {}: no evaluation counts of them \
                 leave",
                policy.min_rows
            ),
        );
    }
    let parameters = task.dimension() as f64;
    let allowed = policy.max_parameters_per_row * train as f64;
    verdict(
        "max_parameters_per_row",
        parameters <= allowed,
        format!(
            "{parameters} parameters for {train} training rows (at most {} per row)",
            policy.max_parameters_per_row
        ),
    );
    let labels = task
        .model
        .predicts_probabilities()
        .then(|| site.train.y.view());
    let cells = check_design_cells(
        &task.columns,
        site.train.x.view(),
        labels,
        policy.min_cell,
        "training",
    );
    // Held-out counts of models the coordinator chooses would single out a
    // held-out patient alone in a design column the same way: then none
    // leave (fewer than min_rows held-out rows release none anyway).
    let withhold = if holdout >= policy.min_rows {
        check_design_cells(
            &task.columns,
            site.holdout.x.view(),
            None,
            policy.min_cell,
            "held-out",
        )
        .err()
        .map(|refused| {
            format!(
                "held-out counts withheld for the whole task: {}",
                refused.reason
            )
        })
    } else {
        None
    };
    if let Some(why) = &withhold {
        verdict("min_cell", true, why.clone());
    }
    match cells {
        Ok(()) => verdict(
            "min_cell",
            true,
            format!(
                "every one-hot, indicator and two-valued column (and class) holds 0 or at \
                 least min_cell = {} training rows",
                policy.min_cell
            ),
        ),
        Err(refused) => verdict("min_cell", false, refused.reason),
    }
    withhold
}

#[cfg(test)]
mod tests {
    use medfed_wire::{SecureAggregation, Task};

    use super::check_task;
    use crate::data::DataError;
    use crate::policy::{Fraction, Policy};

    fn secure_task(members: usize, threshold: u32) -> Task {
        Task {
            task_id: "t".into(),
            features: vec!["a".into()],
            columns: vec![medfed_model::ColumnSpec::numeric("a")],
            target: "y".into(),
            model: medfed_model::ModelKind::Logistic,
            l2: 0.0,
            local_steps: 1,
            learning_rate: 0.1,
            holdout_fraction: 0.2,
            split_seed: 1,
            rounds: 5,
            score_bins: 4,
            members: (0..members).map(|i| format!("m{i}")).collect(),
            secure_aggregation: Some(SecureAggregation {
                threshold,
                fixed_point_bits: 24,
            }),
            differential_privacy: None,
            algorithm: medfed_wire::TrainingAlgorithm::Fedavg,
            baselines: false,
            evaluate_every: 1,
        }
    }

    /// The `min_threshold` verdict on a task of `members` with `threshold`.
    fn threshold_verdict(policy: &Policy, members: usize, threshold: u32) -> (bool, String) {
        let no_rows = DataError::NoTrainingRows {
            rows: 0,
            missing_target: 0,
            holdout: 0,
        };
        let check = check_task(
            policy,
            &secure_task(members, threshold),
            &[],
            Err(&no_rows),
            None,
        );
        let verdict = check
            .verdicts
            .iter()
            .find(|v| v.rule == "min_threshold")
            .expect("a min_threshold verdict");
        (verdict.passes, verdict.what.clone())
    }

    #[test]
    fn a_threshold_below_two_thirds_of_the_members_is_refused_at_join() {
        let policy = Policy::default();
        let (passes, what) = threshold_verdict(&policy, 5, 3);
        assert!(!passes, "{what}");
        assert!(
            what.contains("threshold 3 of 5") && what.contains("at least 4"),
            "{what}"
        );
        assert!(threshold_verdict(&policy, 5, 4).0);
        assert!(threshold_verdict(&policy, 4, 3).0);
        let lenient = Policy {
            min_threshold: Fraction::new(3, 5).expect("3/5"),
            ..Policy::default()
        };
        assert!(threshold_verdict(&lenient, 5, 3).0);
        // A task without secure aggregation has no threshold to check.
        let mut clear = secure_task(5, 3);
        clear.secure_aggregation = None;
        let no_rows = DataError::NoTrainingRows {
            rows: 0,
            missing_target: 0,
            holdout: 0,
        };
        let check = check_task(&policy, &clear, &[], Err(&no_rows), None);
        assert!(check.verdicts.iter().all(|v| v.rule != "min_threshold"));
    }
}
