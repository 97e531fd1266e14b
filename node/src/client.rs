//! Taking part in a task: open the hospital's keys and exchange log, join
//! the coordinator's task, settle differential privacy, then answer
//! instructions until the task is finished. The vault is decrypted in
//! memory only; what leaves is printed as it leaves.
//!
//! The connection and its recovery live in [`crate::session`], what is
//! computed in [`crate::work`] and [`crate::secagg`], how an answer becomes
//! a message in `answer`, and the way out in `send`. A submission the
//! coordinator already holds (sent just before the connection dropped) or
//! one for a step that has closed meanwhile is not an error: the node moves
//! on to the next instruction.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use medfed_audit::{AuditKey, SigningKey};
use medfed_vault::VaultKey;
use medfed_wire::{BudgetRefusal, Instruction, Step, Submission, Task};

use crate::answer::{Next, Reply};
use crate::data::SiteData;
use crate::ledger::Ledger;
use crate::policy::{ApprovedTasks, Gate, Policy, Refused, check_task};
use crate::privacy::{DpRounds, record_spend};
use crate::secagg::SecureRounds;
use crate::send::{Delivered, refused, send};
use crate::session::Session;
use crate::work::Answer;

/// Everything `node run` needs.
#[derive(Debug)]
pub struct RunOptions {
    /// Coordinator address, e.g. `https://127.0.0.1:7443`.
    pub coordinator: String,
    /// Name the coordinator's certificate must carry, e.g. `localhost`.
    pub server_name: String,
    /// Consortium CA certificate.
    pub ca: PathBuf,
    /// This hospital's certificate.
    pub cert: PathBuf,
    /// This hospital's private key.
    pub key: PathBuf,
    /// This hospital's Ed25519 signing key (certified in `cert`): signs
    /// every submission and the exchange log.
    pub signing_key: PathBuf,
    /// The exchange log.
    pub audit_log: PathBuf,
    /// The audit key file that encrypts the exchange log's payloads (`None`:
    /// the `MEDFED_AUDIT_KEY` environment variable).
    pub audit_key_file: Option<PathBuf>,
    /// The encrypted vault.
    pub vault: PathBuf,
    /// The vault key.
    pub vault_key: VaultKey,
    /// Only join this task (any task when `None`).
    pub task_id: Option<String>,
    /// How long to keep trying to reach the coordinator, at start and after
    /// each lost connection.
    pub connect_timeout: Duration,
    /// The site's own privacy budget for DP tasks (`None`: the node takes
    /// part in no DP task).
    pub privacy_budget: Option<medfed_secure::dp::Budget>,
    /// DANGER, for robustness tests only: multiply every model update by this
    /// factor before sending it, i.e. behave as a faulty or hostile member.
    pub danger_update_scale: Option<f64>,
    /// The hospital's own policy: what a task may compute and release.
    pub policy: Policy,
}

/// What a node did in one task.
#[derive(Debug, Default)]
pub struct NodeReport {
    /// Messages sent, by kind.
    pub sent: Vec<String>,
    /// Why the task ended.
    pub finished: String,
    /// Times the connection was lost and re-established.
    pub reconnects: u32,
}

/// Joins the coordinator's task and answers it to the end.
///
/// # Errors
/// Unreadable vault or certificates, an unreachable coordinator, a refusal
/// (not a member, wrong task), a vault that lacks the task's columns, a
/// message the coordinator refuses, or a differential-privacy task while
/// this node has no privacy budget ([`crate::privacy::NoBudget`], after
/// telling the coordinator). A spent budget is not an error: the node
/// declines and reports it.
pub async fn run(options: RunOptions) -> anyhow::Result<NodeReport> {
    let table = medfed_vault::read_vault(&options.vault, &options.vault_key)?;
    let (me, signer, ledger) = open_identity(&options)?;
    let policy = options.policy.clone();
    for what in policy.unpinned() {
        println!(
            "{me}: warning: not pinned: {what}; this node takes part with whatever the \
             consortium CA certifies"
        );
    }
    let tls = medfed_tls::pinned_client_config(
        &options.ca,
        &options.cert,
        &options.key,
        policy.coordinator,
    )
    .context("cannot set up TLS")?;
    let mut session = Session::new(&options, tls, me.clone(), ledger);
    if let Some(factor) = options.danger_update_scale {
        eprintln!(
            "node: DANGER: every model update is multiplied by {factor} (hostile-member test mode)"
        );
    }
    let task = session.join().await?;
    println!(
        "{me}: joined task {} ({} model, target {}, {} features, {} rounds)",
        task.task_id,
        task.model,
        task.target,
        task.features.len(),
        task.rounds
    );
    // The hospital's policy decides first, before anything is computed:
    // a task it does not allow, or one this site's rows cannot serve, is
    // refused with a notice naming the rule.
    let identifiers: Vec<String> = medfed_vault::flag_identifiers(&table)
        .into_iter()
        .map(|flag| flag.column)
        .collect();
    let site = SiteData::new(&table, &task);
    drop(table);
    let approved = policy
        .approved_tasks
        .as_deref()
        .map(ApprovedTasks::load)
        .transpose()?;
    let checked = check_task(
        &policy,
        &task,
        &identifiers,
        site.as_ref(),
        approved.as_ref(),
    );
    if let Err(refused) = checked.result() {
        return refuse(&mut session, &signer, &task, refused).await;
    }
    let site = site?;
    let mut gate = Gate::new(policy);
    if let Some(why) = checked.withhold_held_out {
        println!("{me}: {why}");
        gate.withhold_held_out(why);
    }
    // A DP task is settled next, before the records are used: a site
    // without a budget, or whose budget cannot pay for a round, declines.
    let dp = settle_dp(&mut session, &signer, &task, &options).await?;
    if let Some(refusal) = dp.as_ref().map(|d| d.refusal(0, 0)).transpose()?.flatten() {
        return decline(&mut session, &signer, &task, refusal).await;
    }
    println!(
        "{me}: {} training rows, {} held-out rows, {} rows without a target left out",
        site.train.y.len(),
        site.holdout.y.len(),
        site.missing_target
    );
    let secure = secure_rounds(&options, &task, &me, &signer)?;
    Participation {
        session,
        signer,
        task,
        site,
        dp,
        secure,
        gate,
        danger_update_scale: options.danger_update_scale,
        report: NodeReport::default(),
    }
    .answer_all()
    .await
}

/// This hospital's identity (from its certificate), its signing key
/// (checked against the certificate) and its exchange log.
fn open_identity(options: &RunOptions) -> anyhow::Result<(String, SigningKey, Ledger)> {
    let certs = medfed_tls::load_certs(&options.cert)?;
    let leaf = certs
        .first()
        .with_context(|| format!("{} holds no certificate", options.cert.display()))?;
    let me = medfed_tls::identity_from_der(leaf)?;
    let signer = SigningKey::from_file(&options.signing_key)?;
    if medfed_tls::signing_key_from_der(leaf)? != Some(*signer.public_key().as_bytes()) {
        anyhow::bail!(
            "the signing key {} is not the one certified in {}: use the .sign.key made \
             together with that certificate's request",
            options.signing_key.display(),
            options.cert.display()
        );
    }
    let audit_key = match &options.audit_key_file {
        Some(path) => AuditKey::from_file(path)?,
        None => AuditKey::from_env(medfed_audit::AUDIT_KEY_ENV)?,
    };
    let (ledger, repair) = Ledger::open(&options.audit_log, &me, &signer, &audit_key)
        .with_context(|| {
            format!(
                "cannot open the exchange log {}",
                options.audit_log.display()
            )
        })?;
    if let Some(repair) = repair {
        println!(
            "{me}: the exchange log {} ended in a torn entry; cut {} bytes and recorded the repair",
            options.audit_log.display(),
            repair.bytes_cut
        );
    }
    Ok((me, signer, ledger))
}

/// The task's DP rounds at this site (`None` for a task without DP).
///
/// # Errors
/// A DP task while this node has no privacy budget ([`crate::privacy::NoBudget`],
/// after telling the coordinator), or a privacy record that cannot be read.
async fn settle_dp(
    session: &mut Session<'_>,
    signer: &SigningKey,
    task: &Task,
    options: &RunOptions,
) -> anyhow::Result<Option<DpRounds>> {
    let me = session.me.clone();
    let task_id = task.task_id.clone();
    let Some((config, why)) = crate::privacy::member_config(task, &options.policy) else {
        return Ok(None);
    };
    let Some(budget) = options.privacy_budget else {
        // Say so before leaving, so the coordinator stops waiting for this
        // site now rather than at its deadline. A notice that cannot be
        // delivered does not hide the reason.
        let refusal = BudgetRefusal::no_budget();
        let what = format!("task {task_id}: it has no privacy budget set");
        if let Err(error) = send_refusal(session, signer, task, refusal, &what).await {
            println!("{me}: could not tell the coordinator: {error:#}");
        }
        return Err(crate::privacy::NoBudget {
            task_id,
            noise_multiplier: config.noise_multiplier(),
            clip_norm: config.clip_norm(),
        }
        .into());
    };
    let site = crate::privacy::SitePrivacy::open(&options.vault, budget)?;
    let spent = site.accountant().spent();
    println!(
        "{me}: differential privacy is on ({} noise, σ = {}, C = {}); this site's \
         budget is {budget}, spent so far {spent} (record {})",
        config.placement(),
        config.noise_multiplier(),
        config.clip_norm(),
        site.path().display()
    );
    println!("{me}: {} noise: {why}", config.placement().name());
    Ok(Some(DpRounds::new(task_id, config, site)))
}

/// The secure-aggregation state for the task (`None` for a task without
/// secure aggregation).
fn secure_rounds(
    options: &RunOptions,
    task: &Task,
    me: &str,
    signer: &SigningKey,
) -> anyhow::Result<Option<SecureRounds>> {
    let Some(settings) = task.secure_aggregation else {
        return Ok(None);
    };
    let verifier = medfed_tls::MemberVerifier::new(&options.ca)
        .context("cannot check secure-aggregation rosters")?;
    let contributions = crate::secagg::Contributions::open(&options.vault)?;
    println!(
        "{me}: secure aggregation is on (threshold {} of {} members): updates leave \
         this node masked",
        settings.threshold,
        task.members.len()
    );
    Ok(Some(
        SecureRounds::new(
            me.to_owned(),
            settings,
            verifier,
            signer.clone(),
            contributions,
        )
        .with_policy(&options.policy),
    ))
}

/// A joined task being answered, step by step.
struct Participation<'a> {
    session: Session<'a>,
    signer: SigningKey,
    task: Task,
    site: SiteData,
    dp: Option<DpRounds>,
    secure: Option<SecureRounds>,
    gate: Gate,
    danger_update_scale: Option<f64>,
    report: NodeReport,
}

impl Participation<'_> {
    /// Polls, answers and sends until the task is finished or this site
    /// declines a round.
    async fn answer_all(mut self) -> anyhow::Result<NodeReport> {
        let mut after_step = 0;
        loop {
            let Some(step) = self.session.next_step(&self.task, after_step).await? else {
                continue;
            };
            if let Err(refused) = self.gate.admit(&self.task, &step) {
                return refuse(&mut self.session, &self.signer, &self.task, refused).await;
            }
            if let Some(refusal) = self.refusal_due(&step)? {
                return decline(&mut self.session, &self.signer, &self.task, refusal).await;
            }
            let reply = if is_secure_stage(&step) {
                match self.secure_reply(&step) {
                    Ok(reply) => reply,
                    Err(error) => return self.refuse_or_fail(error, step.step).await,
                }
            } else {
                crate::secagg::refuse_in_clear(&self.task, &step)?;
                let next = match self.clear_reply(&step) {
                    Ok(next) => next,
                    Err(error) => return self.refuse_or_fail(error, step.step).await,
                };
                match next {
                    Next::Ask => None,
                    Next::Finished(reason) => {
                        println!(
                            "{}: task {} finished: {reason}",
                            self.session.me, self.task.task_id
                        );
                        self.report.finished = reason;
                        self.report.reconnects = self.session.reconnects;
                        return Ok(self.report);
                    }
                    Next::Send(reply) => Some(*reply),
                }
            };
            let done = match reply {
                None => true,
                Some(reply) => self.deliver(&step, reply).await?,
            };
            if done {
                after_step = step.step;
            }
        }
    }

    /// The budget refusal to send instead of answering `step`, if the step
    /// would charge a DP round the budget cannot pay for (a step asked
    /// again after a lost connection was charged already).
    fn refusal_due(&self, step: &Step) -> anyhow::Result<Option<BudgetRefusal>> {
        let Some(dp) = self.dp.as_ref() else {
            return Ok(None);
        };
        let round = match &step.instruction {
            Instruction::Train { round, .. } if !dp.released(step.step) => *round,
            Instruction::SecAggKeys { work, .. }
                if matches!(**work, Instruction::Train { .. })
                    && !self.secure.as_ref().is_some_and(|s| s.answered(step.step)) =>
            {
                work.round()
            }
            _ => return Ok(None),
        };
        Ok(dp.refusal(step.step, round)?)
    }

    /// The answer to a secure-aggregation stage, `None` when this node has
    /// no part in it. A privacy spend it carries is recorded the first time.
    fn secure_reply(&mut self, step: &Step) -> anyhow::Result<Option<Reply>> {
        let Some(secure) = self.secure.as_mut() else {
            anyhow::bail!(
                "the coordinator sent a secure-aggregation step, but task {} does \
                 not use secure aggregation",
                self.task.task_id
            );
        };
        let replay = secure.answered(step.step);
        let Some((line, submission)) = secure.answer(
            &mut self.site,
            &self.task,
            step,
            self.dp.as_mut(),
            &self.gate,
        )?
        else {
            return Ok(None);
        };
        if let Some(spend) = submission.privacy_spend.as_ref().filter(|_| !replay) {
            record_spend(&mut self.session.ledger, spend)?;
        }
        Ok(Some(Reply::secure(line, submission)))
    }

    /// The answer to `step` in clear; a model update is scaled (in the
    /// danger test mode) and, in a DP task, charged, clipped and noised.
    fn clear_reply(&mut self, step: &Step) -> anyhow::Result<Next> {
        let mut notes = Vec::new();
        let mut answer = self
            .gate
            .answer(&mut self.site, &self.task, step, &mut notes)?;
        for note in notes {
            println!("{}: step {}: {note}", self.session.me, step.step);
        }
        if let Answer::Send(Submission::Update(update)) = &mut answer {
            if let Some(factor) = self.danger_update_scale {
                update.delta *= factor;
            }
            if let Some(dp) = self.dp.as_mut() {
                dp.release_update(update, &mut self.session.ledger)?;
            }
        }
        Ok(crate::answer::next(answer, self.site.holdout.y.len()))
    }

    /// Sends the refusal `error` holds (the policy refused what was about to
    /// be computed or to leave at `step`) and stops; any other error ends
    /// the run as it is.
    async fn refuse_or_fail(
        &mut self,
        error: anyhow::Error,
        step: u64,
    ) -> anyhow::Result<NodeReport> {
        let refused = error
            .chain()
            .find_map(|cause| cause.downcast_ref::<Refused>())
            .cloned()
            .map(|refused| refused.at(step));
        match refused {
            Some(refused) => refuse(&mut self.session, &self.signer, &self.task, refused).await,
            None => Err(error),
        }
    }

    /// Sends `reply` to `step` and says whether the step is done with.
    async fn deliver(&mut self, step: &Step, reply: Reply) -> anyhow::Result<bool> {
        let me = self.session.me.clone();
        let delivered = send(
            &mut self.session,
            &self.signer,
            &self.task.task_id,
            &reply.outgoing,
        )
        .await?;
        match delivered {
            Delivered::Accepted => {}
            // The same stage sent again: it counts as this one's.
            Delivered::AlreadyThere if reply.is_secure() => {}
            Delivered::AlreadyThere => {
                println!("{me}: step {} was already received", step.step);
                return Ok(true);
            }
            Delivered::TooLate(status) => {
                println!(
                    "{me}: step {} closed before our answer: {}",
                    step.step,
                    status.message()
                );
                if reply.is_secure()
                    && let Some(secure) = self.secure.as_mut()
                {
                    secure.forget();
                }
                return Ok(true);
            }
            // Not done: after rejoining, the step is answered again if it
            // is still open.
            Delivered::ConnectionLost => {
                self.session.rejoin(&self.task).await?;
                return Ok(false);
            }
            Delivered::Refused(status) => return Err(refused(status)),
        }
        println!("{me}: {}", reply.line);
        self.report.sent.push(reply.line);
        Ok(true)
    }
}

/// Whether `step` is one of the five stages of a secure-aggregation round.
fn is_secure_stage(step: &Step) -> bool {
    matches!(
        step.instruction,
        Instruction::SecAggKeys { .. }
            | Instruction::SecAggShares { .. }
            | Instruction::SecAggMask { .. }
            | Instruction::SecAggCheck { .. }
            | Instruction::SecAggUnmask { .. }
    )
}

/// Tells the coordinator this site declines a round its budget cannot pay
/// for, and stops.
async fn decline(
    session: &mut Session<'_>,
    signer: &SigningKey,
    task: &Task,
    refusal: BudgetRefusal,
) -> anyhow::Result<NodeReport> {
    let me = session.me.clone();
    let round = if refusal.round == 0 {
        "the next round".to_owned()
    } else {
        format!("round {}", refusal.round)
    };
    let message = format!(
        "stopped: this site's privacy budget is spent. Budget ε = {} at δ = {:e}; spent ε = {:.4} \
         over {} rounds; {round} would cost ε = {:.4} more (total ε = {:.4}), past the budget",
        refusal.budget_epsilon,
        refusal.delta,
        refusal.spent_epsilon,
        refusal.rounds_spent,
        refusal.epsilon_after_round - refusal.spent_epsilon,
        refusal.epsilon_after_round
    );
    send_refusal(session, signer, task, refusal, &round).await?;
    println!("{me}: {message}");
    Ok(NodeReport {
        sent: Vec::new(),
        finished: message,
        reconnects: session.reconnects,
    })
}

/// Tells the coordinator this site refuses the task or a step under its
/// own policy (or for a data reason) and stops: the error returned is the
/// refusal, so the exit status says so.
async fn refuse(
    session: &mut Session<'_>,
    signer: &SigningKey,
    task: &Task,
    refused: Refused,
) -> anyhow::Result<NodeReport> {
    let me = session.me.clone();
    let what = if refused.step == 0 {
        format!("task {}", task.task_id)
    } else {
        format!("step {} of task {}", refused.step, task.task_id)
    };
    println!(
        "{me}: {what} refused by rule `{}`: {}",
        refused.rule, refused.reason
    );
    let outgoing = Submission::Refusal(refused.notice());
    for _attempt in 0..3 {
        match send(session, signer, &task.task_id, &outgoing).await? {
            Delivered::ConnectionLost => session.rejoin(task).await?,
            Delivered::AlreadyThere => break,
            Delivered::TooLate(status) | Delivered::Refused(status) => {
                println!("{me}: the coordinator did not take the refusal notice: {status}");
                break;
            }
            Delivered::Accepted => {
                println!("{me}: told the coordinator this site refuses {what}");
                break;
            }
        }
    }
    Err(refused.into())
}

/// Sends `refusal`, reconnecting if the connection drops (three attempts);
/// `what` names what is declined in the line printed. A notice the
/// coordinator does not take is printed, not an error: the site stops
/// either way.
async fn send_refusal(
    session: &mut Session<'_>,
    signer: &SigningKey,
    task: &Task,
    refusal: BudgetRefusal,
    what: &str,
) -> anyhow::Result<()> {
    let me = session.me.clone();
    let outgoing = Submission::BudgetRefusal(refusal);
    for _attempt in 0..3 {
        match send(session, signer, &task.task_id, &outgoing).await? {
            Delivered::ConnectionLost => session.rejoin(task).await?,
            Delivered::AlreadyThere => break,
            Delivered::TooLate(status) | Delivered::Refused(status) => {
                println!("{me}: the coordinator did not take the budget notice: {status}");
                break;
            }
            Delivered::Accepted => {
                println!("{me}: told the coordinator this site declines {what}");
                break;
            }
        }
    }
    Ok(())
}
