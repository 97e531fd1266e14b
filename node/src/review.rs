//! `node task review` and `node task approve`: what a task would compute
//! from this hospital's rows, in plain words, with every rule of the
//! policy's verdict and the task's SHA-256; and the record of an approved
//! hash. The task comes from the coordinator's `Describe` call, which joins
//! nothing; the vault is decrypted in memory only, and nothing is sent.

use std::fmt::Write as _;

use anyhow::Context;
use medfed_wire::Task;
use medfed_wire::client::Client;

use crate::config::Settings;
use crate::data::SiteData;
use crate::policy::{ApprovedTasks, TaskCheck, check_task};

/// A task as the coordinator describes it, checked against this site.
#[derive(Debug)]
pub struct Review {
    /// The coordinator's name (its certificate's).
    pub coordinator: String,
    /// The task.
    pub task: Task,
    /// Every rule's verdict, and the task's hash.
    pub check: TaskCheck,
}

/// Asks the coordinator for its task (pinned as the policy says) and
/// checks it against the policy and this site's rows.
///
/// # Errors
/// The vault, the keys or the certificates cannot be read, the coordinator
/// cannot be reached or refuses, or sends an invalid task.
pub async fn review(settings: &Settings) -> anyhow::Result<Review> {
    let vault_key = settings.vault_key.load(false)?;
    let table = medfed_vault::read_vault(&settings.vault, &vault_key)?;
    let tls = medfed_tls::pinned_client_config(
        &settings.ca,
        &settings.cert,
        &settings.key,
        settings.policy.coordinator,
    )
    .context("cannot set up TLS")?;
    let channel = medfed_tls::connect(&settings.coordinator, &settings.server_name, tls)
        .await
        .with_context(|| format!("cannot reach the coordinator at {}", settings.coordinator))?;
    let described = Client::new(channel)
        .describe(settings.task_id.as_deref().unwrap_or_default())
        .await
        .map_err(|status| anyhow::anyhow!("{}", status.message()))
        .context("the coordinator did not describe its task")?;
    let task = described
        .task
        .context("the coordinator sent an invalid task")?;
    let identifiers: Vec<String> = medfed_vault::flag_identifiers(&table)
        .into_iter()
        .map(|flag| flag.column)
        .collect();
    let site = SiteData::new(&table, &task);
    drop(table);
    let approved = settings
        .policy
        .approved_tasks
        .as_deref()
        .map(ApprovedTasks::load)
        .transpose()?;
    let check = check_task(
        &settings.policy,
        &task,
        &identifiers,
        site.as_ref(),
        approved.as_ref(),
    );
    Ok(Review {
        coordinator: described.coordinator,
        task,
        check,
    })
}

impl Review {
    /// What the task computes and what the policy says, for the data
    /// steward.
    pub fn render(&self) -> String {
        let task = &self.task;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "task {} from coordinator {}",
            task.task_id, self.coordinator
        );
        let _ = writeln!(out, "what it computes from this hospital's rows:");
        let _ = writeln!(
            out,
            "  a {} model of `{}` on {} features, trained by {} in at most {} rounds",
            task.model,
            task.target,
            task.features.len(),
            task.algorithm,
            task.rounds
        );
        for spec in &task.columns {
            let mut how = Vec::new();
            if let Some(codes) = &spec.categories {
                let codes: Vec<String> = codes.iter().map(ToString::to_string).collect();
                how.push(format!("one-hot over codes {}", codes.join(", ")));
            }
            if !spec.unknown_values.is_empty() {
                let codes: Vec<String> = spec.unknown_values.iter().map(f64::to_string).collect();
                how.push(format!("{} read as missing", codes.join(", ")));
            }
            if spec.missing_indicator {
                how.push("a missing-value indicator".into());
            }
            let how = if how.is_empty() {
                "numeric".to_owned()
            } else {
                how.join("; ")
            };
            let _ = writeln!(out, "    {}: {how}", spec.name);
        }
        let _ = writeln!(
            out,
            "  held out for evaluation: {:.0}% of rows (seed {}); held-out counts with {}; \
             final evaluation over {} score bins{}",
            task.holdout_fraction * 100.0,
            task.split_seed,
            match task.evaluate_every {
                0 => "no round".to_owned(),
                1 => "every round".to_owned(),
                n => format!("every {n}th round"),
            },
            task.score_bins,
            if task.baselines {
                "; a model trained on this site's rows alone"
            } else {
                ""
            }
        );
        let _ = writeln!(
            out,
            "  secure aggregation: {}",
            task.secure_aggregation.map_or_else(
                || "off: the coordinator sees this site's own sums".to_owned(),
                |s| format!(
                    "on (threshold {} of {} members)",
                    s.threshold,
                    task.members.len()
                )
            )
        );
        let _ = writeln!(
            out,
            "  differential privacy: {}",
            task.differential_privacy.map_or_else(
                || "off".to_owned(),
                |dp| format!(
                    "noise multiplier σ = {}, clip norm C = {}",
                    dp.noise_multiplier, dp.clip_norm
                )
            )
        );
        let _ = writeln!(out, "  members: {}", task.members.join(", "));
        let _ = writeln!(out, "what this hospital's policy says:");
        for verdict in &self.check.verdicts {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                if verdict.passes { "ok     " } else { "REFUSED" },
                verdict.rule,
                verdict.what
            );
        }
        match self.check.result() {
            Ok(()) => {
                let _ = writeln!(out, "this node would take part");
            }
            Err(refused) => {
                let _ = writeln!(out, "this node would refuse it: {refused}");
            }
        }
        let _ = writeln!(out, "task sha256: {}", self.check.sha256);
        out
    }
}
