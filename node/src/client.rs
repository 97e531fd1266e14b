//! Taking part in a task: connect out to the coordinator over mutual TLS,
//! join, then answer instructions until the task is finished. The vault is
//! decrypted in memory only; what leaves is printed as it leaves.
//!
//! A lost connection is not the end: the node reconnects with exponential
//! backoff and jitter, joins again and carries on from the step it had
//! reached. A submission the coordinator already holds (sent just before
//! the connection dropped) or one for a step that has closed meanwhile is
//! not an error either: the node moves on to the next instruction.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use medfed_vault::VaultKey;
use medfed_wire::convert::{step_from_pb, task_from_pb};
use medfed_wire::limits::MAX_MESSAGE_BYTES;
use medfed_wire::pb::federation_client::FederationClient;
use medfed_wire::{PROTOCOL_VERSION, Submission, Task, pb};
use tonic::transport::Channel;

use crate::data::SiteData;
use crate::ledger::Ledger;
use crate::work::{Answer, answer};
use medfed_audit::{AuditKey, Signature, SigningKey};
use prost::Message;

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

/// First wait before reconnecting; doubled after each failure up to
/// [`MAX_BACKOFF`], with up to 50% random jitter so that many nodes that lost
/// the coordinator together do not come back in lockstep.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// `wait` plus a random share of up to half of it.
fn jittered(wait: Duration) -> Duration {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut byte = [0u8; 1];
    let share = match SystemRandom::new().fill(&mut byte) {
        Ok(()) => f64::from(byte[0]) / 255.0 * 0.5,
        Err(_) => 0.25,
    };
    wait.mul_f64(1.0 + share)
}

/// Whether a failed call means the connection is gone (so reconnect), as
/// opposed to the coordinator refusing the call or the TLS handshake failing
/// on a certificate (which no retry can fix).
fn connection_lost(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    ) && !medfed_tls::is_tls_refusal(status)
}

/// A node's connection to the coordinator, re-established as needed.
struct Session<'a> {
    options: &'a RunOptions,
    tls: std::sync::Arc<medfed_tls::ClientConfig>,
    client: Option<FederationClient<Channel>>,
    me: String,
    reconnects: u32,
    ledger: Ledger,
}

impl Session<'_> {
    /// Connects (retrying with backoff until `connect_timeout`) and joins;
    /// returns the task the coordinator runs.
    async fn join(&mut self) -> anyhow::Result<Task> {
        let deadline = Instant::now() + self.options.connect_timeout;
        let mut wait = FIRST_BACKOFF;
        loop {
            let attempt = async {
                let channel = medfed_tls::connect(
                    &self.options.coordinator,
                    &self.options.server_name,
                    self.tls.clone(),
                )
                .await
                .map_err(|e| {
                    // Keep a certificate refusal permanent; anything else
                    // (refused connection, timeout) is worth retrying.
                    let code = if medfed_tls::is_tls_refusal(&e) {
                        tonic::Code::PermissionDenied
                    } else {
                        tonic::Code::Unavailable
                    };
                    tonic::Status::new(code, format!("{:#}", anyhow::Error::from(e)))
                })?;
                let mut client = FederationClient::new(channel)
                    .max_decoding_message_size(MAX_MESSAGE_BYTES)
                    .max_encoding_message_size(MAX_MESSAGE_BYTES);
                let request = pb::JoinRequest {
                    task_id: self.options.task_id.clone().unwrap_or_default(),
                    protocol_version: PROTOCOL_VERSION,
                };
                let joined = client.join(request.clone()).await?.into_inner();
                Ok::<_, tonic::Status>((client, request, joined))
            };
            match attempt.await {
                Ok((client, request, joined)) => {
                    self.client = Some(client);
                    let task_id = joined
                        .task
                        .as_ref()
                        .map(|t| t.task_id.clone())
                        .unwrap_or_default();
                    self.ledger.joined(&task_id, &joined.coordinator)?;
                    self.ledger
                        .sent("join", 0, &request.encode_to_vec(), None)?;
                    self.ledger.received("task", 0, &joined.encode_to_vec())?;
                    let task = task_from_pb(joined.task.context("the coordinator sent no task")?)
                        .context("the coordinator sent an invalid task")?;
                    return Ok(task);
                }
                Err(status) if connection_lost(&status) && Instant::now() + wait < deadline => {
                    tracing::debug!(%status, "coordinator not reachable; retrying");
                    tokio::time::sleep(jittered(wait)).await;
                    wait = (wait * 2).min(MAX_BACKOFF);
                }
                Err(status) if connection_lost(&status) => {
                    return Err(status_error(status)).with_context(|| {
                        format!(
                            "cannot reach the coordinator at {} (tried for {} s)",
                            self.options.coordinator,
                            self.options.connect_timeout.as_secs()
                        )
                    });
                }
                Err(status) => {
                    return Err(status_error(status))
                        .context("the coordinator refused to admit this node");
                }
            }
        }
    }

    /// Reconnects after a lost connection and checks it is the same task.
    async fn rejoin(&mut self, task: &Task) -> anyhow::Result<()> {
        self.client = None;
        self.reconnects += 1;
        println!(
            "{}: lost the connection to the coordinator; reconnecting",
            self.me
        );
        let again = self.join().await?;
        anyhow::ensure!(
            again.task_id == task.task_id,
            "after reconnecting, the coordinator runs task {} instead of {}",
            again.task_id,
            task.task_id
        );
        println!("{}: rejoined task {}", self.me, task.task_id);
        Ok(())
    }

    fn client(&mut self) -> &mut FederationClient<Channel> {
        self.client
            .as_mut()
            .unwrap_or_else(|| unreachable!("calls are made only after a successful join"))
    }
}

/// How a submission ended.
enum Delivered {
    /// Accepted now.
    Accepted,
    /// The coordinator already holds it (sent before a lost connection).
    AlreadyThere,
    /// The step closed before it arrived (deadline, quorum).
    TooLate(String),
    /// The connection dropped: reconnect, then ask for the current step.
    ConnectionLost,
}

fn delivered(result: Result<tonic::Response<pb::Ack>, tonic::Status>) -> anyhow::Result<Delivered> {
    match result {
        Ok(_) => Ok(Delivered::Accepted),
        Err(status) if status.code() == tonic::Code::AlreadyExists => Ok(Delivered::AlreadyThere),
        Err(status) if status.code() == tonic::Code::FailedPrecondition => {
            Ok(Delivered::TooLate(status.message().to_owned()))
        }
        Err(status) if connection_lost(&status) => Ok(Delivered::ConnectionLost),
        Err(status) => Err(status_error(status)).context("the coordinator refused a submission"),
    }
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
    let tls = medfed_tls::client_config(&options.ca, &options.cert, &options.key)
        .context("cannot set up TLS")?;
    let mut session = Session {
        options: &options,
        tls,
        client: None,
        me: me.clone(),
        reconnects: 0,
        ledger,
    };
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
    // A DP task is settled first, before the records are used: a site
    // without a budget, or whose budget cannot pay for a round, declines.
    let task_id = task.task_id.clone();
    let mut dp = match task.dp_config() {
        None => None,
        Some(config) => {
            let Some(budget) = options.privacy_budget else {
                // Say so before leaving, so the coordinator stops waiting
                // for this site now rather than at its deadline. A notice
                // that cannot be delivered does not hide the reason.
                let refusal = medfed_wire::BudgetRefusal::no_budget();
                let what = format!("task {task_id}: it has no privacy budget set");
                if let Err(error) =
                    send_refusal(&mut session, &signer, &task, &refusal, &what).await
                {
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
            Some(crate::privacy::DpRounds {
                task_id: task_id.clone(),
                config,
                site,
            })
        }
    };
    if let Some(refusal) = dp.as_ref().map(|d| d.refusal(0, 0)).transpose()?.flatten() {
        return decline(&mut session, &signer, &task, refusal).await;
    }
    let mut site = SiteData::new(&table, &task)?;
    drop(table);
    println!(
        "{me}: {} training rows, {} held-out rows, {} rows without a target left out",
        site.train.y.len(),
        site.holdout.y.len(),
        site.missing_target
    );

    let mut secure = match task.secure_aggregation {
        Some(settings) => {
            let verifier = medfed_tls::MemberVerifier::new(&options.ca)
                .context("cannot check secure-aggregation rosters")?;
            println!(
                "{me}: secure aggregation is on (threshold {} of {} members): updates leave \
                 this node masked",
                settings.threshold,
                task.members.len()
            );
            Some(crate::secagg::SecureRounds::new(
                me.clone(),
                settings,
                verifier,
                signer.clone(),
            ))
        }
        None => None,
    };
    // The DP update of the last step answered in clear, sent again as is if
    // the step is asked again after a lost connection (never charged twice).
    let mut last_dp_update: Option<medfed_wire::ModelUpdate> = None;
    let mut report = NodeReport::default();
    let mut after_step = 0;
    loop {
        let polled = session
            .client()
            .next_instruction(pb::InstructionRequest {
                task_id: task_id.clone(),
                after_step,
            })
            .await;
        let instruction = match polled {
            Ok(response) => response.into_inner(),
            Err(status) if connection_lost(&status) => {
                session.rejoin(&task).await?;
                continue;
            }
            Err(status) => {
                return Err(status_error(status)).context("the coordinator stopped answering");
            }
        };
        let raw = instruction.encode_to_vec();
        let step = step_from_pb(instruction, &task)
            .context("the coordinator sent an invalid instruction")?;
        if step.step <= after_step {
            continue;
        }
        if !matches!(step.instruction, medfed_wire::Instruction::Wait) {
            session.ledger.received(step.kind(), step.round(), &raw)?;
        }
        let is_secagg = matches!(
            step.instruction,
            medfed_wire::Instruction::SecAggKeys { .. }
                | medfed_wire::Instruction::SecAggShares { .. }
                | medfed_wire::Instruction::SecAggMask { .. }
                | medfed_wire::Instruction::SecAggUnmask { .. }
        );
        let charged_round = match &step.instruction {
            medfed_wire::Instruction::Train { round, .. }
                if last_dp_update.as_ref().map(|u| u.step) != Some(step.step) =>
            {
                Some(*round)
            }
            medfed_wire::Instruction::SecAggKeys { work, .. }
                if matches!(**work, medfed_wire::Instruction::Train { .. })
                    && !secure.as_ref().is_some_and(|s| s.answered(step.step)) =>
            {
                Some(work.round())
            }
            _ => None,
        };
        if let (Some(round), Some(dp)) = (charged_round, dp.as_ref())
            && let Some(refusal) = dp.refusal(step.step, round)?
        {
            return decline(&mut session, &signer, &task, refusal).await;
        }
        if is_secagg {
            let Some(secure) = secure.as_mut() else {
                anyhow::bail!(
                    "the coordinator sent a secure-aggregation step, but task {task_id} does \
                     not use secure aggregation"
                );
            };
            let replay = secure.answered(step.step);
            let Some((line, submission)) = secure.answer(&mut site, &task, &step, dp.as_mut())?
            else {
                after_step = step.step;
                continue;
            };
            if let Some(spend) = submission.privacy_spend.as_ref().filter(|_| !replay) {
                record_spend(&mut session.ledger, spend)?;
            }
            let sent = signed(
                &signer,
                &mut session.ledger,
                &Submission::SecAgg(submission),
                &task_id,
            )?;
            let outcome = session.client().submit(sent).await;
            if let Err(status) = &outcome
                && !connection_lost(status)
            {
                session
                    .ledger
                    .received("refusal", 0, status.message().as_bytes())?;
            }
            match delivered(outcome)? {
                Delivered::Accepted | Delivered::AlreadyThere => {
                    println!("{me}: {line}");
                    report.sent.push(line);
                    after_step = step.step;
                }
                Delivered::TooLate(why) => {
                    println!("{me}: step {} closed before our answer: {why}", step.step);
                    secure.forget();
                    after_step = step.step;
                }
                Delivered::ConnectionLost => session.rejoin(&task).await?,
            }
            continue;
        }
        crate::secagg::refuse_in_clear(&task, &step)?;
        let (line, outcome) = match answer(&mut site, &task, &step)? {
            Answer::Nothing => {
                after_step = step.step;
                continue;
            }
            Answer::Finished(reason) => {
                println!("{me}: task {task_id} finished: {reason}");
                report.finished = reason;
                report.reconnects = session.reconnects;
                return Ok(report);
            }
            Answer::Statistics(stats) => {
                let line = format!(
                    "sent statistics: count, sum, sum of squares, range (and category counts) \
                     for {} columns over {} training rows",
                    stats.summaries.len(),
                    stats.train_rows
                );
                let sent = signed(
                    &signer,
                    &mut session.ledger,
                    &Submission::Statistics(stats),
                    &task_id,
                )?;
                (line, session.client().submit(sent).await)
            }
            Answer::Update(mut update) => {
                if let Some(factor) = options.danger_update_scale {
                    update.delta *= factor;
                }
                if let Some(dp) = dp.as_mut() {
                    match last_dp_update.as_ref().filter(|u| u.step == update.step) {
                        Some(sent) => update = sent.clone(),
                        None => {
                            let delta = update.delta.as_slice_mut().context(
                                "the update is not a contiguous vector (cannot clip and noise it)",
                            )?;
                            let spend = dp.release(update.round, delta).with_context(|| {
                                format!(
                                    "round {}: cannot charge and noise the update",
                                    update.round
                                )
                            })?;
                            // Nothing data-dependent beside the clipped update.
                            update.num_rows = 0;
                            update.train_loss = 0.0;
                            update.privacy_spend = Some(spend);
                            record_spend(&mut session.ledger, &spend)?;
                            last_dp_update = Some(update.clone());
                        }
                    }
                }
                let line = format!(
                    "sent update for round {}: {} parameter deltas (norm {:.4}), {} rows",
                    update.round,
                    update.delta.len(),
                    update.delta.dot(&update.delta).sqrt(),
                    update.num_rows
                );
                let sent = signed(
                    &signer,
                    &mut session.ledger,
                    &Submission::Update(update),
                    &task_id,
                )?;
                (line, session.client().submit(sent).await)
            }
            Answer::Histograms(report) => {
                let columns = report.histograms.iter().flatten().count();
                let line = format!(
                    "sent histograms of {columns} columns (counts per bin over the global ranges)"
                );
                let sent = signed(
                    &signer,
                    &mut session.ledger,
                    &Submission::Histograms(report),
                    &task_id,
                )?;
                (line, session.client().submit(sent).await)
            }
            Answer::Newton(report) => {
                let (round, d, n) = (
                    report.round,
                    report.terms.gradient_sum.len(),
                    report.terms.n,
                );
                let line = format!(
                    "sent Newton terms for round {round}: loss, gradient ({d} values) and \
                     Hessian ({d}x{d}) sums over {n} rows"
                );
                let sent = signed(
                    &signer,
                    &mut session.ledger,
                    &Submission::Newton(report),
                    &task_id,
                )?;
                (line, session.client().submit(sent).await)
            }
            Answer::Normal(report) => {
                let (d, n) = (report.terms.xty.len(), report.terms.n);
                let line = format!(
                    "sent normal-equation terms: X'X ({d}x{d}), X'y, y'y sums over {n} rows"
                );
                let sent = signed(
                    &signer,
                    &mut session.ledger,
                    &Submission::Normal(report),
                    &task_id,
                )?;
                (line, session.client().submit(sent).await)
            }
            Answer::Baseline(model) => {
                let line = format!(
                    "sent site-alone model: {} parameters trained on {} rows",
                    model.model.len(),
                    model.num_rows
                );
                let sent = signed(
                    &signer,
                    &mut session.ledger,
                    &Submission::Baseline(model),
                    &task_id,
                )?;
                (line, session.client().submit(sent).await)
            }
            Answer::Evaluation(evaluation) => {
                let line = format!(
                    "sent evaluation counts for {} models on {} held-out rows",
                    evaluation.models.len(),
                    site.holdout.y.len()
                );
                let sent = signed(
                    &signer,
                    &mut session.ledger,
                    &Submission::Evaluation(evaluation),
                    &task_id,
                )?;
                (line, session.client().submit(sent).await)
            }
        };
        if let Err(status) = &outcome
            && !connection_lost(status)
        {
            session
                .ledger
                .received("refusal", 0, status.message().as_bytes())?;
        }
        match delivered(outcome)? {
            Delivered::Accepted => {
                println!("{me}: {line}");
                report.sent.push(line);
                after_step = step.step;
            }
            Delivered::AlreadyThere => {
                println!("{me}: step {} was already received", step.step);
                after_step = step.step;
            }
            Delivered::TooLate(why) => {
                println!("{me}: step {} closed before our answer: {why}", step.step);
                after_step = step.step;
            }
            // Not marked done: after rejoining, the step is answered again
            // if it is still open.
            Delivered::ConnectionLost => session.rejoin(&task).await?,
        }
    }
}

/// Records a privacy spend in the exchange log (a local entry), before the
/// update it paid for leaves.
fn record_spend(ledger: &mut Ledger, spend: &medfed_wire::PrivacySpend) -> anyhow::Result<()> {
    let bytes = medfed_wire::privacy::spend_to_pb(spend).encode_to_vec();
    ledger.spent(spend.round, &bytes)
}

/// Tells the coordinator this site declines a round its budget cannot pay
/// for, and stops.
async fn decline(
    session: &mut Session<'_>,
    signer: &SigningKey,
    task: &Task,
    refusal: medfed_wire::BudgetRefusal,
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
    send_refusal(session, signer, task, &refusal, &round).await?;
    println!("{me}: {message}");
    Ok(NodeReport {
        sent: Vec::new(),
        finished: message,
        reconnects: session.reconnects,
    })
}

/// Sends `refusal`, signed and recorded in the exchange log, reconnecting
/// if the connection drops (three attempts); `what` names what is declined
/// in the line printed.
async fn send_refusal(
    session: &mut Session<'_>,
    signer: &SigningKey,
    task: &Task,
    refusal: &medfed_wire::BudgetRefusal,
    what: &str,
) -> anyhow::Result<()> {
    let me = session.me.clone();
    let refusal = Submission::BudgetRefusal(*refusal);
    for _attempt in 0..3 {
        let sent = signed(signer, &mut session.ledger, &refusal, &task.task_id)?;
        let outcome = session.client().submit(sent).await;
        match outcome {
            Err(status) if connection_lost(&status) => session.rejoin(task).await?,
            Err(status) if status.code() == tonic::Code::AlreadyExists => break,
            Err(status) => {
                session
                    .ledger
                    .received("refusal", 0, status.message().as_bytes())?;
                println!("{me}: the coordinator did not take the budget notice: {status}");
                break;
            }
            Ok(_) => {
                println!("{me}: told the coordinator this site declines {what}");
                break;
            }
        }
    }
    Ok(())
}

/// `message` encoded and signed with the hospital's signing key, and
/// recorded in its exchange log before it leaves.
fn signed(
    signer: &SigningKey,
    ledger: &mut Ledger,
    submission: &Submission,
    task_id: &str,
) -> anyhow::Result<pb::Signed> {
    let body = medfed_wire::submission::to_pb(submission, task_id).encode_to_vec();
    let signature: Signature = signer.sign(&body);
    ledger.sent(
        submission.kind(),
        submission.round(),
        &body,
        Some(signature),
    )?;
    Ok(pb::Signed {
        body,
        signature: signature.as_bytes().to_vec(),
    })
}

/// A gRPC status as an error that says what the coordinator said, or, for
/// a transport failure, every distinct cause down the chain (a TLS 1.3
/// refusal of our certificate surfaces on the first call as an alert deep
/// inside a transport error).
fn status_error(status: tonic::Status) -> anyhow::Error {
    let code = status.code();
    let message = status.message().to_owned();
    if code == tonic::Code::Unknown || code == tonic::Code::Unavailable {
        let mut causes: Vec<String> = Vec::new();
        let mut next = std::error::Error::source(&status);
        while let Some(cause) = next {
            let text = cause.to_string();
            if !text.is_empty() && text != message && !causes.contains(&text) {
                causes.push(text);
            }
            next = cause.source();
        }
        let mut text = format!("{code:?}: {message}");
        for cause in causes {
            text.push_str(": ");
            text.push_str(&cause);
        }
        if medfed_tls::is_tls_refusal(&status) {
            text.push_str(
                " (the TLS handshake failed: the coordinator did not accept this node's \
                 certificate, or this node did not accept the coordinator's)",
            );
        }
        anyhow::Error::new(PeerError(text))
    } else {
        anyhow::Error::new(PeerError(format!("{code:?}: {message}")))
    }
}

/// The coordinator could not be reached, refused this node, or ended the
/// connection: a network or peer failure (exit code 5 of `node`).
#[derive(Debug)]
pub struct PeerError(String);

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PeerError {}
