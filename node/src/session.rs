//! The node's connection to the coordinator: connect out over mutual TLS,
//! join the task, poll for the next instruction, and come back after a lost
//! connection.
//!
//! A lost connection is not the end: the node reconnects with exponential
//! backoff and jitter, joins again and carries on from the step it had
//! reached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use medfed_wire::client::{Client, Joined};
use medfed_wire::{Step, Task, kinds};

use crate::client::RunOptions;
use crate::ledger::Ledger;

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
pub(crate) fn connection_lost(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    ) && !medfed_tls::is_tls_refusal(status)
}

/// A node's connection to the coordinator, re-established as needed.
pub(crate) struct Session<'a> {
    options: &'a RunOptions,
    tls: Arc<medfed_tls::ClientConfig>,
    client: Option<Client>,
    /// This hospital's identity, as its certificate names it.
    pub(crate) me: String,
    /// Times the connection was lost and re-established.
    pub(crate) reconnects: u32,
    /// The hospital's exchange log: every message in and out.
    pub(crate) ledger: Ledger,
}

impl<'a> Session<'a> {
    /// A session not yet connected; [`Session::join`] connects.
    pub(crate) fn new(
        options: &'a RunOptions,
        tls: Arc<medfed_tls::ClientConfig>,
        me: String,
        ledger: Ledger,
    ) -> Self {
        Session {
            options,
            tls,
            client: None,
            me,
            reconnects: 0,
            ledger,
        }
    }

    /// Connects (retrying with backoff until `connect_timeout`) and joins;
    /// returns the task the coordinator runs.
    pub(crate) async fn join(&mut self) -> anyhow::Result<Task> {
        let deadline = Instant::now() + self.options.connect_timeout;
        let mut wait = FIRST_BACKOFF;
        loop {
            match self.attempt().await {
                Ok((client, joined)) => {
                    self.client = Some(client);
                    self.ledger.joined(&joined.task_id, &joined.coordinator)?;
                    self.ledger.sent(kinds::JOIN, 0, &joined.request, None)?;
                    self.ledger.received(kinds::TASK, 0, &joined.response)?;
                    let task = joined
                        .task
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

    /// One attempt to connect and join.
    async fn attempt(&self) -> Result<(Client, Joined), tonic::Status> {
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
        let mut client = Client::new(channel);
        let task_id = self.options.task_id.clone().unwrap_or_default();
        let joined = client.join(&task_id).await?;
        Ok((client, joined))
    }

    /// Reconnects after a lost connection and checks it is the same task.
    pub(crate) async fn rejoin(&mut self, task: &Task) -> anyhow::Result<()> {
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
        // The task was checked against the hospital's policy (and its
        // approval) at the first join: a task that changed since is not it.
        anyhow::ensure!(
            again == *task,
            "after reconnecting, the coordinator describes task {} differently from the task \
             this node joined (SHA-256 {} then, {} now); it takes no part in a changed task",
            task.task_id,
            crate::policy::task_sha256(task),
            crate::policy::task_sha256(&again)
        );
        println!("{}: rejoined task {}", self.me, task.task_id);
        Ok(())
    }

    /// Asks for the instruction after step `after_step` and records it in
    /// the exchange log; `None` when there is nothing new to answer yet (the
    /// connection was lost and is back, or the coordinator repeated a step
    /// already answered).
    ///
    /// # Errors
    /// The coordinator stopped answering, could not be reached again, or
    /// sent an invalid instruction; the log could not be written.
    pub(crate) async fn next_step(
        &mut self,
        task: &Task,
        after_step: u64,
    ) -> anyhow::Result<Option<Step>> {
        let polled = self.client().next_instruction(task, after_step).await;
        let received = match polled {
            Ok(received) => received,
            Err(status) if connection_lost(&status) => {
                self.rejoin(task).await?;
                return Ok(None);
            }
            Err(status) => {
                return Err(status_error(status)).context("the coordinator stopped answering");
            }
        };
        let raw = received.bytes;
        let step = received
            .step
            .context("the coordinator sent an invalid instruction")?;
        if step.step <= after_step {
            return Ok(None);
        }
        if !matches!(step.instruction, medfed_wire::Instruction::Wait) {
            self.ledger.received(step.kind(), step.round(), &raw)?;
        }
        Ok(Some(step))
    }

    /// The connected client.
    pub(crate) fn client(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .unwrap_or_else(|| unreachable!("calls are made only after a successful join"))
    }
}

/// A gRPC status as an error that says what the coordinator said, or, for
/// a transport failure, every distinct cause down the chain (a TLS 1.3
/// refusal of our certificate surfaces on the first call as an alert deep
/// inside a transport error).
pub(crate) fn status_error(status: tonic::Status) -> anyhow::Error {
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
