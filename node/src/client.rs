//! Taking part in a task: connect out to the coordinator over mutual TLS,
//! join, then answer instructions until the task is finished. The vault is
//! decrypted in memory only; what leaves is printed as it leaves.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use medfed_vault::VaultKey;
use medfed_wire::convert::{
    baseline_to_pb, evaluation_to_pb, statistics_to_pb, step_from_pb, task_from_pb, update_to_pb,
};
use medfed_wire::limits::MAX_MESSAGE_BYTES;
use medfed_wire::pb::federation_client::FederationClient;
use medfed_wire::{PROTOCOL_VERSION, pb};
use tonic::transport::Channel;

use crate::data::SiteData;
use crate::signing::SigningKey;
use crate::work::{Answer, answer};

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
    /// This hospital's Ed25519 signing key (certified in `cert`).
    pub signing_key: PathBuf,
    /// The encrypted vault.
    pub vault: PathBuf,
    /// The vault key.
    pub vault_key: VaultKey,
    /// Only join this task (any task when `None`).
    pub task_id: Option<String>,
    /// How long to keep trying to reach the coordinator.
    pub connect_timeout: Duration,
}

/// What a node did in one task.
#[derive(Debug, Default)]
pub struct NodeReport {
    /// Messages sent, by kind.
    pub sent: Vec<String>,
    /// Why the task ended.
    pub finished: String,
}

async fn connect(options: &RunOptions) -> anyhow::Result<Channel> {
    let tls = medfed_tls::client_config(&options.ca, &options.cert, &options.key)
        .context("cannot set up TLS")?;
    let deadline = Instant::now() + options.connect_timeout;
    let mut wait = Duration::from_millis(50);
    loop {
        match medfed_tls::connect(&options.coordinator, &options.server_name, tls.clone()).await {
            Ok(channel) => return Ok(channel),
            Err(error) if Instant::now() + wait < deadline => {
                tracing::debug!(%error, "coordinator not reachable yet; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            Err(error) => {
                return Err(error).with_context(|| {
                    format!("cannot reach the coordinator at {}", options.coordinator)
                });
            }
        }
    }
}

/// Joins the coordinator's task and answers it to the end.
///
/// # Errors
/// Unreadable vault or certificates, an unreachable coordinator, a refusal
/// (not a member, wrong task), a vault that lacks the task's columns, or a
/// message the coordinator refuses.
pub async fn run(options: RunOptions) -> anyhow::Result<NodeReport> {
    let table = medfed_vault::read_vault(&options.vault, &options.vault_key)?;
    let certs = medfed_tls::load_certs(&options.cert)?;
    let leaf = certs
        .first()
        .with_context(|| format!("{} holds no certificate", options.cert.display()))?;
    let me = medfed_tls::identity_from_der(leaf)?;
    let signer = SigningKey::from_file(&options.signing_key)?;
    signer.check_certified(medfed_tls::signing_key_from_der(leaf)?, &options.cert)?;
    let channel = connect(&options).await?;
    let mut client = FederationClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);

    let wanted = options.task_id.clone().unwrap_or_default();
    let joined = client
        .join(pb::JoinRequest {
            task_id: wanted,
            protocol_version: PROTOCOL_VERSION,
        })
        .await
        .map_err(status_error)
        .context("the coordinator refused to admit this node")?
        .into_inner();
    let task = task_from_pb(joined.task.context("the coordinator sent no task")?)
        .context("the coordinator sent an invalid task")?;
    println!(
        "{me}: joined task {} ({} model, target {}, {} features, {} rounds)",
        task.task_id,
        task.model,
        task.target,
        task.features.len(),
        task.rounds
    );
    let mut site = SiteData::new(&table, &task)?;
    drop(table);
    println!(
        "{me}: {} training rows, {} held-out rows, {} rows without a target left out",
        site.train.y.len(),
        site.holdout.y.len(),
        site.missing_target
    );

    let task_id = task.task_id.clone();
    let mut report = NodeReport::default();
    let mut after_step = 0;
    loop {
        let instruction = client
            .next_instruction(pb::InstructionRequest {
                task_id: task_id.clone(),
                after_step,
            })
            .await
            .map_err(status_error)
            .context("lost contact with the coordinator")?
            .into_inner();
        let step = step_from_pb(instruction, &task)
            .context("the coordinator sent an invalid instruction")?;
        if step.step <= after_step {
            continue;
        }
        after_step = step.step;
        let sent = match answer(&mut site, &task, &step)? {
            Answer::Nothing => continue,
            Answer::Finished(reason) => {
                println!("{me}: task {task_id} finished: {reason}");
                report.finished = reason;
                return Ok(report);
            }
            Answer::Statistics(stats) => {
                let line = format!(
                    "sent statistics: count, sum, sum of squares for {} features over {} training rows",
                    stats.features.len(),
                    stats.train_rows
                );
                client
                    .submit_statistics(signed(&signer, &statistics_to_pb(&stats, &task_id)))
                    .await
                    .map_err(status_error)?;
                line
            }
            Answer::Update(update) => {
                let line = format!(
                    "sent update for round {}: {} parameter deltas (norm {:.4}), {} rows",
                    update.round,
                    update.delta.len(),
                    update.delta.dot(&update.delta).sqrt(),
                    update.num_rows
                );
                client
                    .submit_update(signed(&signer, &update_to_pb(&update, &task_id)))
                    .await
                    .map_err(status_error)?;
                line
            }
            Answer::Baseline(model) => {
                let line = format!(
                    "sent site-alone model: {} parameters trained on {} rows",
                    model.model.len(),
                    model.num_rows
                );
                client
                    .submit_baseline(signed(&signer, &baseline_to_pb(&model, &task_id)))
                    .await
                    .map_err(status_error)?;
                line
            }
            Answer::Evaluation(evaluation) => {
                let line = format!(
                    "sent evaluation counts for {} models on {} held-out rows",
                    evaluation.models.len(),
                    site.holdout.y.len()
                );
                client
                    .submit_evaluation(signed(&signer, &evaluation_to_pb(&evaluation, &task_id)))
                    .await
                    .map_err(status_error)?;
                line
            }
        };
        println!("{me}: {sent}");
        report.sent.push(sent);
    }
}

/// `message` encoded and signed with the hospital's signing key.
fn signed(signer: &SigningKey, message: &impl prost::Message) -> pb::Signed {
    let body = message.encode_to_vec();
    let signature = signer.sign(&body);
    pb::Signed { body, signature }
}

/// A gRPC status as an error that says what the coordinator said.
fn status_error(status: tonic::Status) -> anyhow::Error {
    let code = status.code();
    let message = status.message();
    // TLS 1.3 refusals of our certificate surface on the first call.
    if code == tonic::Code::Unknown || code == tonic::Code::Unavailable {
        let source = std::error::Error::source(&status)
            .map(|s| format!(": {s}"))
            .unwrap_or_default();
        anyhow::anyhow!("{code:?}: {message}{source}")
    } else {
        anyhow::anyhow!("{code:?}: {message}")
    }
}
