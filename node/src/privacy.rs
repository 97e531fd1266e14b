//! The site's own privacy budget for DP tasks, and the record of every
//! round charged against it, kept beside the vault.
//!
//! The budget belongs to the data, not to a task: one accountant per vault
//! charges every DP round this node takes part in, whatever the task, and
//! its state lives in `<vault>.privacy.json`. The file is replaced
//! atomically (write, fsync, rename, fsync the directory) *before* the
//! noised update that a round pays for is kept for sending, so a crash can
//! waste a round's ε but never forget one. A restarted node resumes the
//! record; the coordinator cannot raise or reset it.
//!
//! A node with no budget set takes part in no DP task: it tells the
//! coordinator so (a signed notice) and stops with [`NoBudget`].

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use medfed_secure::dp::{Accountant, AccountantState, Budget, Charge, DpError, NoisePlacement};
use medfed_wire::message::RefusalReason;
use medfed_wire::{BudgetRefusal, ModelUpdate, PrivacySpend, Task};
use serde::{Deserialize, Serialize};

use crate::ledger::Ledger;

/// Format tag of the privacy file.
pub const PRIVACY_FORMAT: &str = "medfed-privacy/1";

/// Largest privacy file read (a record per round; 100 000 rounds at most).
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// A DP task reached a node that has no privacy budget of its own: a
/// configuration problem (exit code 3 of `node`), told to the coordinator
/// before the node stops.
#[derive(Debug, thiserror::Error)]
#[error(
    "task {task_id} uses differential privacy (noise multiplier {noise_multiplier}, clip norm \
     {clip_norm}), but this node has no privacy budget set: set `epsilon` and `delta` in the \
     [privacy] table of the node file, or pass --dp-epsilon and --dp-delta. Not taking part"
)]
pub struct NoBudget {
    /// The task declined.
    pub task_id: String,
    /// Its noise multiplier σ.
    pub noise_multiplier: f64,
    /// Its clip norm C.
    pub clip_norm: f64,
}

/// One round charged, as recorded in the privacy file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendRecord {
    /// The task the round belonged to.
    pub task_id: String,
    /// The task's round.
    pub round: u32,
    /// The noise multiplier it was charged at.
    pub noise_multiplier: f64,
    /// The site's total ε after it.
    pub epsilon: f64,
    /// The δ of the ε.
    pub delta: f64,
}

/// The privacy file: the accountant's state and a readable record of what
/// each charged round was.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrivacyFile {
    format: String,
    accountant: AccountantState,
    spends: Vec<SpendRecord>,
}

/// The site's accountant, bound to its file.
#[derive(Debug)]
pub struct SitePrivacy {
    path: PathBuf,
    accountant: Accountant,
    spends: Vec<SpendRecord>,
}

/// A DP task's rounds at this site: the task's configuration, the site's
/// accountant, and the last update released in clear.
#[derive(Debug)]
pub struct DpRounds {
    /// The task.
    pub task_id: String,
    /// Clip norm, noise multiplier and placement.
    pub config: medfed_secure::dp::DpConfig,
    /// The site's accountant.
    pub site: SitePrivacy,
    /// The noised update of the last step answered in clear, sent again as
    /// is if the step is asked again after a lost connection (never charged
    /// twice).
    released: Option<ModelUpdate>,
}

impl DpRounds {
    /// The rounds of DP task `task_id` under `config`, charged to `site`.
    pub fn new(task_id: String, config: medfed_secure::dp::DpConfig, site: SitePrivacy) -> Self {
        DpRounds {
            task_id,
            config,
            site,
            released: None,
        }
    }

    /// Whether the clear update for `step` was already charged and noised
    /// (the step is asked again after a lost connection).
    pub fn released(&self, step: u64) -> bool {
        self.released.as_ref().map(|u| u.step) == Some(step)
    }

    /// Makes `update` fit to leave in clear: charges its round, clips and
    /// noises it, and drops everything data-dependent beside the clipped
    /// update; the charge is recorded in `ledger` before the update leaves.
    /// An update for a step already released is replaced by the one
    /// released then, without a second charge.
    ///
    /// # Errors
    /// The update cannot be charged and noised (see [`DpRounds::release`])
    /// or the charge cannot be recorded; `update` must not be sent.
    pub fn release_update(
        &mut self,
        update: &mut ModelUpdate,
        ledger: &mut Ledger,
    ) -> anyhow::Result<()> {
        if let Some(sent) = self.released.as_ref().filter(|u| u.step == update.step) {
            *update = sent.clone();
            return Ok(());
        }
        let delta = update
            .delta
            .as_slice_mut()
            .context("the update is not a contiguous vector (cannot clip and noise it)")?;
        let spend = self.release(update.round, delta).with_context(|| {
            format!("round {}: cannot charge and noise the update", update.round)
        })?;
        // Nothing data-dependent beside the clipped update.
        update.num_rows = 0;
        update.train_loss = 0.0;
        update.privacy_spend = Some(spend);
        record_spend(ledger, &spend)?;
        self.released = Some(update.clone());
        Ok(())
    }

    /// The refusal to send before round `round` (at `step`), if the budget
    /// cannot pay for it.
    ///
    /// # Errors
    /// A noise multiplier the accountant refuses.
    pub fn refusal(&self, step: u64, round: u32) -> Result<Option<BudgetRefusal>, DpError> {
        self.site
            .refusal(self.config.noise_multiplier(), step, round)
    }

    /// Charges round `round`, durably, then clips `update` to C and adds
    /// this site's share of the noise (none with central noise): only then
    /// may it leave.
    ///
    /// # Errors
    /// The budget does not cover the round, the record cannot be written,
    /// or the noise cannot be drawn; `update` must not be sent.
    pub fn release(&mut self, round: u32, update: &mut [f64]) -> Result<PrivacySpend, DpError> {
        let sigma = self.config.noise_multiplier();
        let charge = self.site.spend(&self.task_id, round, sigma)?;
        let spent = charge.spent();
        let mut rng = medfed_secure::dp::os_seeded_rng()?;
        self.config
            .privatise_site_update(update, charge, &mut rng)?;
        Ok(PrivacySpend {
            round,
            noise_multiplier: sigma,
            epsilon: spent.epsilon,
            delta: spent.delta,
            rounds: spent.rounds,
            budget_epsilon: self.site.accountant().budget().epsilon(),
            placement: self.config.placement(),
        })
    }
}

/// The DP-FedAvg configuration this site applies to `task` under `policy`
/// (`None` without DP), and why its noise goes where it does, for the
/// node's output. σ and C are the task's, checked against the policy at
/// join and fixed for the whole task: no step carries either, and a task
/// described differently at a reconnection is not taken part in.
pub fn member_config(
    task: &Task,
    policy: &crate::policy::Policy,
) -> Option<(medfed_secure::dp::DpConfig, &'static str)> {
    let config = task.member_dp_config(policy.trust_coordinator_noise)?;
    let why = match config.placement() {
        NoisePlacement::LocalWithSecureAggregation { .. } => {
            "secure aggregation reveals only the sum, so this site adds its share of the noise"
        }
        NoisePlacement::Central => {
            "no secure aggregation and [policy] trust_coordinator_noise = true: this site clips \
             only and the coordinator noises the sum (it sees this site's clipped update)"
        }
        _ => {
            "no secure aggregation and the coordinator is not trusted with the noise \
             ([policy] trust_coordinator_noise = false): this site adds the full noise, so \
             every update it sends is itself noised with the charged σ"
        }
    };
    Some((config, why))
}

/// Records a privacy spend in the exchange log (a local entry), before the
/// update it paid for leaves.
///
/// # Errors
/// The log cannot be written.
pub fn record_spend(ledger: &mut Ledger, spend: &PrivacySpend) -> anyhow::Result<()> {
    let bytes = medfed_wire::privacy::encode_spend(spend);
    ledger.spent(spend.round, &bytes)
}

/// `<vault>.privacy.json`.
pub fn privacy_path(vault: &Path) -> PathBuf {
    let mut name = vault.as_os_str().to_owned();
    name.push(".privacy.json");
    PathBuf::from(name)
}

impl SitePrivacy {
    /// Opens the record beside `vault`, or starts one. The budget is the
    /// one configured now (the hospital may change it); the rounds already
    /// charged are kept.
    ///
    /// # Errors
    /// A file that cannot be read, is too large, or is not a valid record.
    pub fn open(vault: &Path, budget: Budget) -> anyhow::Result<SitePrivacy> {
        let path = privacy_path(vault);
        let (accountant, spends) = match std::fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Accountant::new(budget), vec![]),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read {}", path.display()));
            }
            Ok(meta) if meta.len() > MAX_FILE_BYTES => {
                anyhow::bail!(
                    "{} is larger than {MAX_FILE_BYTES} bytes: not a privacy record",
                    path.display()
                );
            }
            Ok(_) => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let file: PrivacyFile = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a valid privacy record", path.display()))?;
                anyhow::ensure!(
                    file.format == PRIVACY_FORMAT,
                    "{}: format {:?}, expected {PRIVACY_FORMAT:?}",
                    path.display(),
                    file.format
                );
                let state = AccountantState {
                    budget,
                    noise_multipliers: file.accountant.noise_multipliers,
                };
                let accountant = Accountant::from_state(state)
                    .with_context(|| format!("{} is not a valid privacy record", path.display()))?;
                (accountant, file.spends)
            }
        };
        Ok(SitePrivacy {
            path,
            accountant,
            spends,
        })
    }

    /// The file the record is kept in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The accountant.
    pub fn accountant(&self) -> &Accountant {
        &self.accountant
    }

    /// The rounds charged, oldest first.
    pub fn spends(&self) -> &[SpendRecord] {
        &self.spends
    }

    /// The refusal to send if one more round at `noise_multiplier` would
    /// take the site past its budget (for `step` and `round`; 0 before
    /// training), or `None` if it fits.
    ///
    /// # Errors
    /// A noise multiplier the accountant refuses.
    pub fn refusal(
        &self,
        noise_multiplier: f64,
        step: u64,
        round: u32,
    ) -> Result<Option<BudgetRefusal>, DpError> {
        let after = self.accountant.epsilon_after(noise_multiplier)?;
        let budget = self.accountant.budget();
        if after <= budget.epsilon() {
            return Ok(None);
        }
        let spent = self.accountant.spent();
        Ok(Some(BudgetRefusal {
            step,
            round,
            spent_epsilon: spent.epsilon,
            delta: budget.delta(),
            epsilon_after_round: after,
            budget_epsilon: budget.epsilon(),
            rounds_spent: spent.rounds,
            reason: RefusalReason::BudgetSpent,
        }))
    }

    /// Charges one round of `task_id` at `noise_multiplier`, writing the
    /// record durably before the charge is handed back.
    ///
    /// # Errors
    /// [`DpError::BudgetExceeded`] if the round does not fit;
    /// [`DpError::RecordFailed`] if the record cannot be written (then
    /// nothing is charged and nothing may be sent).
    pub fn spend(
        &mut self,
        task_id: &str,
        round: u32,
        noise_multiplier: f64,
    ) -> Result<Charge, DpError> {
        let epsilon = self.accountant.epsilon_after(noise_multiplier)?;
        let delta = self.accountant.budget().delta();
        let record = SpendRecord {
            task_id: task_id.to_owned(),
            round,
            noise_multiplier,
            epsilon,
            delta,
        };
        let mut spends = self.spends.clone();
        spends.push(record);
        let path = self.path.clone();
        let charge = self.accountant.try_spend(noise_multiplier, |state| {
            write_atomically(
                &path,
                &PrivacyFile {
                    format: PRIVACY_FORMAT.to_owned(),
                    accountant: state.clone(),
                    spends: spends.clone(),
                },
            )
        })?;
        self.spends = spends;
        Ok(charge)
    }
}

/// Writes `file` as pretty JSON to a temporary file beside `path`, fsyncs
/// it, renames it over `path` and fsyncs the directory: a crash leaves the
/// old file or the new one, never a part of either.
pub(crate) fn write_atomically(path: &Path, file: &impl Serialize) -> std::io::Result<()> {
    let dir = medfed_fsutil::parent_dir(path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    let mut buffered = std::io::BufWriter::new(&mut tmp);
    serde_json::to_writer_pretty(&mut buffered, file)?;
    buffered.write_all(b"\n")?;
    buffered.flush()?;
    drop(buffered);
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    medfed_fsutil::sync_parent_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spends_persist_resume_and_stop_at_the_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("site.vault");
        let budget = Budget::new(2.0, 1e-5).expect("budget");
        let sigma = 4.0;
        let allowed = medfed_secure::dp::max_rounds(&budget, sigma).expect("rounds");
        assert!(
            allowed >= 2,
            "the test needs at least two rounds, got {allowed}"
        );
        let mut privacy = SitePrivacy::open(&vault, budget).expect("open");
        for round in 1..=allowed {
            assert_eq!(privacy.refusal(sigma, 0, 0).expect("check"), None);
            let charge = privacy.spend("t", round as u32, sigma).expect("spend");
            assert_eq!(charge.round(), round);
        }
        let refusal = privacy
            .refusal(sigma, 9, 9)
            .expect("check")
            .expect("refused");
        assert_eq!(refusal.rounds_spent, allowed);
        assert_eq!(refusal.reason, RefusalReason::BudgetSpent);
        assert!(refusal.epsilon_after_round > 2.0 && refusal.spent_epsilon <= 2.0);
        assert!(matches!(
            privacy.spend("t", 99, sigma),
            Err(DpError::BudgetExceeded { .. })
        ));
        // A restart resumes every round charged, and refuses the next.
        let resumed = SitePrivacy::open(&vault, budget).expect("reopen");
        assert_eq!(resumed.accountant().rounds(), allowed);
        assert_eq!(resumed.spends().len() as u64, allowed);
        assert!(resumed.refusal(sigma, 0, 0).expect("check").is_some());
    }

    #[test]
    fn a_damaged_record_is_refused_not_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let vault = dir.path().join("site.vault");
        std::fs::write(privacy_path(&vault), "{\"format\": 3}").expect("write");
        let budget = Budget::new(1.0, 1e-5).expect("budget");
        let err = SitePrivacy::open(&vault, budget).expect_err("refused");
        assert!(
            format!("{err:#}").contains("not a valid privacy record"),
            "{err:#}"
        );
    }
}
