//! One securely aggregated sum: five coordinator steps (advertise keys,
//! share keys, masked input, consistency check, unmasking), each with the
//! step deadline and quorum of every other step. The coordinator drives the medfed-secure
//! server state machine and ends with the sum over the surviving members of
//! the vectors they masked (see [`MaskedKind`]): the preprocessing's two
//! statistics passes, a training round's update or terms, and the final
//! evaluation. It never holds one member's vector.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use medfed_secure::secagg::{FixedPoint, Member, SecAggConfig, SecAggParams, Server};
use medfed_wire::secagg::MaskedKind;
use medfed_wire::{Instruction, RosterMember, SecureAggregation, Step, Task};

use crate::config::TaskConfig;
use crate::mailbox::secure::{SecureInbox, Stage};
use crate::mailbox::{self, Handle, Mailbox};
use crate::refusals::{self, Awaited, Need};
use crate::run_error::RunError;
use crate::state::Shared;
use crate::step::StepCounter;
use crate::wait::wait_for_members;

/// The unmasked sum of one securely aggregated step.
pub struct SecureSum {
    /// The sum of the survivors' vectors, decoded (read it with the step's
    /// [`Summed`](medfed_wire::Summed) layout).
    pub sum: Vec<f64>,
    /// Members whose masked input is in the sum.
    pub survivors: BTreeSet<String>,
    /// Members of the task that are not.
    pub missing: Vec<String>,
    /// Members the protocol left out of a step for something they sent
    /// (shares others refused, a signature or a revealed share that does
    /// not check out), each with the reason; also printed for the operator.
    pub excluded: Vec<(String, String)>,
}

/// Runs the five stages of secure aggregation for stage-0 `work` and
/// returns the decoded sum of the survivors' vectors, held-out counts
/// included when asked for.
///
/// # Errors
/// Fewer members than the threshold (or, once members have refused and
/// left, than the quorum), a stage that closes below the quorum or the
/// threshold, or a sum the protocol cannot finish.
pub async fn secure_sum(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    work: Instruction,
) -> Result<SecureSum, RunError> {
    let task = &shared.task;
    let round = work.round();
    let label = step_label(&work);
    let failed = |reason: String| RunError::SecureAggregation {
        step: label.clone(),
        reason,
    };
    let Some(vector_len) = MaskedKind::vector_len(&work, task) else {
        return Err(failed(
            "this step cannot be securely aggregated for this task".into(),
        ));
    };
    let (roster, certificates) = roster(shared);
    if let Some(error) = short_roster(shared, config, settings, &roster, &label) {
        return Err(error);
    }
    let params = session_params(task, settings, &work, &roster, vector_len).map_err(failed)?;
    let ids: BTreeMap<String, u32> = roster.iter().map(|m| m.name.clone()).zip(0..).collect();
    let name_of = |id: u32| roster[id as usize].name.clone();
    let stages = Stages {
        shared,
        config,
        round,
        label: &label,
        ids: &ids,
    };

    // Stage 0: train and advertise keys.
    let everyone: BTreeSet<String> = ids.keys().cloned().collect();
    let instruction = Instruction::SecAggKeys {
        work: Box::new(work),
        roster: certificates,
    };
    let server = stages
        .run(
            steps,
            "keys",
            instruction,
            Server::new(params.clone()),
            everyone,
        )
        .await?;
    let (sharing, key_list) = server.finish().map_err(|e| failed(e.to_string()))?;

    // Stage 1: every advertised key to everyone that advertised.
    let advertised: BTreeSet<String> = key_list.keys.iter().map(|k| name_of(k.sender)).collect();
    let instruction = Instruction::SecAggShares { round, key_list };
    let sharing = stages
        .run(steps, "shares", instruction, sharing, advertised)
        .await?;
    let (masking, routed) = sharing.finish().map_err(|e| failed(e.to_string()))?;

    // Stage 2: each member its own shares; masked inputs are added up.
    let routed: BTreeMap<String, _> = routed
        .into_iter()
        .map(|r| (name_of(r.recipient), r))
        .collect();
    let shared_keys: BTreeSet<String> = routed.keys().cloned().collect();
    let instruction = Instruction::SecAggMask { round, routed };
    let masking = stages
        .run(steps, "masked inputs", instruction, masking, shared_keys)
        .await?;
    let (checking, check) = masking.finish().map_err(|e| failed(e.to_string()))?;

    // Stage 3: the survivors sign the survivor set, each against its own
    // view of who shared keys with it.
    let survivors: BTreeSet<String> = check.survivors.iter().map(|&id| name_of(id)).collect();
    let instruction = Instruction::SecAggCheck {
        round,
        request: check,
    };
    let checking = stages
        .run(
            steps,
            "consistency check",
            instruction,
            checking,
            survivors.clone(),
        )
        .await?;
    let (unmasking, request) = checking.finish().map_err(|e| failed(e.to_string()))?;

    // Stage 4: the signers reveal the shares that remove the masks.
    let signers: BTreeSet<String> = request
        .signatures
        .iter()
        .map(|s| name_of(s.sender))
        .collect();
    let instruction = Instruction::SecAggUnmask { round, request };
    let unmasking = stages
        .run(steps, "unmasking", instruction, unmasking, signers)
        .await?;
    let aggregate = unmasking.finish().map_err(|e| failed(e.to_string()))?;
    let excluded: Vec<(String, String)> = aggregate
        .excluded()
        .iter()
        .map(|e| (name_of(e.member), format!("{}: {}", e.stage, e.reason)))
        .collect();
    for (member, reason) in &excluded {
        shared.say(&format!(
            "{label}: secure aggregation left {member} out ({reason})"
        ));
    }
    let sum = aggregate.decode();
    let missing = task
        .members
        .iter()
        .filter(|m| !survivors.contains(*m))
        .cloned()
        .collect();
    Ok(SecureSum {
        sum,
        survivors,
        missing,
        excluded,
    })
}

/// The roster: members that joined and are still in the task, in task
/// order, with the certificate each presented (members check each against
/// the consortium CA). A member that refused or left is not on it, so no
/// stage waits for it and no mask depends on it.
fn roster(shared: &Shared) -> (Vec<Member>, Vec<RosterMember>) {
    let state = shared.lock();
    let mut roster = Vec::new();
    let mut certificates = Vec::new();
    for name in shared.task.members.iter().filter(|m| !state.has_left(m)) {
        if let Some(der) = state.certificates.get(name) {
            let key = medfed_tls::signing_key_from_der(&der.as_slice().into())
                .ok()
                .flatten();
            if let Some(key) = key {
                roster.push(Member {
                    name: name.clone(),
                    verify_key: key,
                });
                let digest = ring::digest::digest(&ring::digest::SHA256, der);
                let mut certificate_sha256 = [0u8; 32];
                certificate_sha256.copy_from_slice(digest.as_ref());
                certificates.push(RosterMember {
                    name: name.clone(),
                    certificate: Some(der.clone()),
                    certificate_sha256,
                });
            }
        }
    }
    (roster, certificates)
}

/// The error when members that refused leave the roster shorter than the
/// threshold or the quorum: the sum is not started, since no stage could
/// close. `None` when nobody refused (the threshold is then checked with
/// the protocol's parameters).
fn short_roster(
    shared: &Shared,
    config: &TaskConfig,
    settings: SecureAggregation,
    roster: &[Member],
    label: &str,
) -> Option<RunError> {
    let names: BTreeSet<String> = roster.iter().map(|m| m.name.clone()).collect();
    let current = shared.current_step();
    let members = shared.task.members.len();
    let state = shared.lock();
    let needs = [
        Need::threshold(settings.threshold as usize),
        Need::quorum(config.quorum),
    ];
    needs.into_iter().find_map(|need| {
        let awaited = Awaited {
            what: label,
            expected: &names,
            need,
        };
        refusals::too_few(&state, &awaited, &BTreeSet::new(), members, current)
    })
}

/// The protocol's parameters for this sum.
///
/// # Errors
/// Fewer members on the roster than the threshold, or settings the
/// protocol refuses.
fn session_params(
    task: &Task,
    settings: SecureAggregation,
    work: &Instruction,
    roster: &[Member],
    vector_len: usize,
) -> Result<SecAggParams, String> {
    if roster.len() < settings.threshold as usize {
        return Err(format!(
            "only {} members have joined and are still in the task ({}), fewer than the \
             threshold {}",
            roster.len(),
            roster
                .iter()
                .map(|m| m.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            settings.threshold
        ));
    }
    SecAggParams::new(SecAggConfig {
        task: task.task_id.clone(),
        round: MaskedKind::session(work),
        threshold: settings.threshold,
        members: roster.to_vec(),
        vector_len,
        fixed_point: FixedPoint::new(settings.fixed_point_bits).map_err(|e| e.to_string())?,
    })
    .map_err(|e| e.to_string())
}

/// What every stage of one sum shares: where it is published, its round
/// and name in messages, and the members' protocol ids.
struct Stages<'a> {
    shared: &'a Arc<Shared>,
    config: &'a TaskConfig,
    round: u32,
    label: &'a str,
    ids: &'a BTreeMap<String, u32>,
}

impl Stages<'_> {
    /// Publishes one stage and waits for the members it expects: all of
    /// them, or at least the quorum by the step deadline. Returns the
    /// stage's server with what arrived.
    async fn run<S: Stage>(
        &self,
        steps: &mut StepCounter,
        what: &str,
        instruction: Instruction,
        server: S,
        expected: BTreeSet<String>,
    ) -> Result<S, RunError> {
        let s = steps.next_step();
        let inbox: Handle<SecureInbox<S>> = Arc::new(Mutex::new(SecureInbox::new(
            server,
            self.ids.clone(),
            self.round,
            s,
        )));
        self.shared.publish(
            Step {
                step: s,
                instruction,
            },
            Some(Mailbox::new(
                s,
                Some(self.round),
                expected.clone(),
                inbox.clone(),
            )),
        );
        let label = format!("{} ({what})", self.label);
        let waited = wait_for_members(self.shared, self.config, &label, &expected).await;
        // Closed on failure too, so the stage takes no late messages.
        self.shared.close();
        waited?;
        Ok(mailbox::take(inbox, &label)?.server)
    }
}

/// How a securely aggregated step is named in messages: its round, or the
/// pass outside training.
pub(crate) fn step_label(work: &Instruction) -> String {
    match MaskedKind::of(work) {
        Some(MaskedKind::Statistics) => "the statistics pass".into(),
        Some(MaskedKind::Moments) => "the column moments pass".into(),
        Some(MaskedKind::Evaluation) => "the final evaluation".into(),
        _ => format!("round {}", work.round()),
    }
}
