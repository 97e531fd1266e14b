//! The per-round state a node carries across the five stages of a secure
//! round (keys, shares, masked input, consistency check, unmasking), and
//! the submission that answers each stage, kept to be sent again after a
//! lost connection.

use std::collections::BTreeMap;

use anyhow::Context;
use medfed_audit::SigningKey;
use medfed_secure::secagg::{
    Client, ClientAdvertised, ClientChecked, ClientMasked, ClientShared, SecAggParams,
};
use medfed_wire::secagg::MaskedKind;
use medfed_wire::{Instruction, SecAggMessage, SecAggSubmission, SecureAggregation, Step, Task};

use super::input::{Stage0, stage0_input};
use super::roster::Checked;
use crate::data::SiteData;

/// Where this node is in the current round.
enum Phase {
    Advertised(ClientAdvertised),
    Shared(ClientShared),
    Masked(ClientMasked),
    /// Signed one survivor set; answers only the unmasking of that set.
    Checked(ClientChecked),
}

struct Pending {
    round: u32,
    params: SecAggParams,
    phase: Phase,
    /// The clear vector to mask; never sent as is.
    input: Vec<f64>,
}

/// A node's secure-aggregation state across the steps of a round.
pub struct SecureRounds {
    pub(super) me: String,
    pub(super) settings: SecureAggregation,
    pub(super) verifier: medfed_tls::MemberVerifier,
    pub(super) signer: SigningKey,
    pending: Option<Pending>,
    /// The last submission, by step: sent again unchanged if the step is
    /// asked again after a lost connection (the state behind it is spent).
    last: Option<(u64, SecAggSubmission, String)>,
    /// Roster certificates already checked against the CA, by member: the
    /// same bytes are not checked again every round until
    /// [`RECHECK_AFTER`](super::roster::RECHECK_AFTER) has passed (a
    /// certificate can expire mid-task).
    pub(super) checked: BTreeMap<String, Checked>,
    /// The hospital's pins (`[policy] member_certificates`): the SHA-256 of
    /// the certificate each named member must present in a roster.
    pub(super) pinned: BTreeMap<String, [u8; 32]>,
}

impl SecureRounds {
    /// State for `me`, checking roster certificates with `verifier`.
    pub fn new(
        me: String,
        settings: SecureAggregation,
        verifier: medfed_tls::MemberVerifier,
        signer: SigningKey,
    ) -> SecureRounds {
        SecureRounds {
            me,
            settings,
            verifier,
            signer,
            pending: None,
            last: None,
            checked: BTreeMap::new(),
            pinned: BTreeMap::new(),
        }
    }

    /// The same state, accepting for each member in `pinned` only the
    /// certificate with that SHA-256 (a second certificate issued under a
    /// hospital's name is refused).
    pub fn with_pinned_certificates(self, pinned: BTreeMap<String, [u8; 32]>) -> SecureRounds {
        SecureRounds { pinned, ..self }
    }

    /// Whether `step` was already answered (it is asked again after a lost
    /// connection, and the same submission is sent again).
    pub fn answered(&self, step: u64) -> bool {
        matches!(&self.last, Some((last, _, _)) if *last == step)
    }

    /// Forgets the round in progress (its step closed without us).
    pub fn forget(&mut self) {
        self.pending = None;
    }

    /// The submission that answers a secure-aggregation `step`, with the
    /// line to print, or `None` when this node has no part in it (it joined
    /// mid-round, or dropped out of the round at an earlier stage).
    ///
    /// # Errors
    /// A roster certificate that does not check out, keys or shares the
    /// protocol refuses (a coordinator or member that misbehaves), or an
    /// update outside the fixed-point range.
    pub fn answer(
        &mut self,
        site: &mut SiteData,
        task: &Task,
        step: &Step,
        dp: Option<&mut crate::privacy::DpRounds>,
        gate: &crate::policy::Gate,
    ) -> anyhow::Result<Option<(String, SecAggSubmission)>> {
        if let Some((last_step, submission, line)) = &self.last
            && *last_step == step.step
        {
            return Ok(Some((line.clone(), submission.clone())));
        }
        let answered = match &step.instruction {
            Instruction::SecAggKeys { work, roster } => {
                let round = &work.round();
                let Some(length) = MaskedKind::vector_len(work, task) else {
                    anyhow::bail!("round {round}: stage 0 asks for nothing that can be masked");
                };
                let params =
                    self.params(task, (*round, MaskedKind::session(work)), roster, length)?;
                let Some(id) = params
                    .config()
                    .members
                    .iter()
                    .position(|m| m.name == self.me)
                else {
                    println!(
                        "{}: not on the roster of round {round}; waiting for the next round",
                        self.me
                    );
                    return Ok(None);
                };
                let work = Step {
                    step: step.step,
                    instruction: (**work).clone(),
                };
                let Stage0 {
                    input,
                    privacy_spend,
                    what,
                } = stage0_input(site, task, &work, dp, gate)?;
                let (client, message) = Client::new(params.clone(), id as u32)
                    .with_context(|| format!("secure aggregation of round {round}"))?
                    .advertise_keys(self.signer.key_pair());
                self.pending = Some(Pending {
                    round: *round,
                    params,
                    phase: Phase::Advertised(client),
                    input,
                });
                let line = format!(
                    "sent secure-aggregation keys for round {round}: {what} kept here until \
                     masked"
                );
                (*round, SecAggMessage::Keys(message), line, privacy_spend)
            }
            Instruction::SecAggShares { round, key_list } => {
                let Some(pending) = self.take(*round, "shares") else {
                    return Ok(None);
                };
                let Phase::Advertised(client) = pending.phase else {
                    return Ok(None);
                };
                let id = client_id(&pending.params, &self.me);
                if !key_list.keys.iter().any(|k| Some(k.sender) == id) {
                    println!(
                        "{}: our keys missed round {round}'s key list; waiting for the next round",
                        self.me
                    );
                    return Ok(None);
                }
                let (client, message) = client.share_keys(key_list).with_context(|| {
                    format!("the key list of round {round} is refused (secure aggregation)")
                })?;
                let shares = message.shares.len();
                self.pending = Some(Pending {
                    phase: Phase::Shared(client),
                    ..pending
                });
                (
                    *round,
                    SecAggMessage::Shares(message),
                    format!(
                        "sent encrypted key shares for round {round} to {shares} members \
                         (via the coordinator, which cannot read them)"
                    ),
                    None,
                )
            }
            Instruction::SecAggMask { round, routed } => {
                let Some(pending) = self.take(*round, "masking") else {
                    return Ok(None);
                };
                let Phase::Shared(client) = pending.phase else {
                    return Ok(None);
                };
                let Some(mine) = routed.get(&self.me) else {
                    println!(
                        "{}: no shares routed to us in round {round}; waiting for the next round",
                        self.me
                    );
                    return Ok(None);
                };
                let encoded = pending
                    .params
                    .encode_input(&pending.input)
                    .with_context(|| {
                        format!(
                            "round {round}: the update does not fit the fixed-point range \
                         (|value| up to {:.3e} with {} fractional bits for {} members)",
                            pending
                                .params
                                .fixed_point()
                                .value_bound(pending.params.members()),
                            pending.params.fixed_point().frac_bits(),
                            pending.params.members()
                        )
                    })?;
                let (client, message) = client.mask_input(mine, &encoded).with_context(|| {
                    format!("the shares routed in round {round} are refused (secure aggregation)")
                })?;
                let values = message.values.len();
                self.pending = Some(Pending {
                    phase: Phase::Masked(client),
                    ..pending
                });
                (
                    *round,
                    SecAggMessage::Masked(message),
                    format!(
                        "sent masked input for round {round}: {values} masked values, none \
                         readable alone"
                    ),
                    None,
                )
            }
            Instruction::SecAggCheck { round, request } => {
                let Some(pending) = self.take(*round, "consistency check") else {
                    return Ok(None);
                };
                let Phase::Masked(client) = pending.phase else {
                    return Ok(None);
                };
                for (member, why) in client.complaints() {
                    println!(
                        "{}: round {round}: refused the shares {} sent us and did not mask \
                         with it ({why})",
                        self.me,
                        pending
                            .params
                            .member_name(*member)
                            .unwrap_or("an unknown member")
                    );
                }
                let (client, signature) = client
                    .check(request, self.signer.key_pair())
                    .with_context(|| {
                        format!("the survivor set of round {round} is refused (secure aggregation)")
                    })?;
                let survivors = request.survivors.len();
                self.pending = Some(Pending {
                    phase: Phase::Checked(client),
                    ..pending
                });
                (
                    *round,
                    SecAggMessage::Consistency(signature),
                    format!(
                        "signed the survivor set of round {round}: {survivors} members, all of \
                         which shared keys with us"
                    ),
                    None,
                )
            }
            Instruction::SecAggUnmask { round, request } => {
                let Some(pending) = self.take(*round, "unmasking") else {
                    return Ok(None);
                };
                let Phase::Checked(client) = pending.phase else {
                    return Ok(None);
                };
                let response = client.unmask(request).with_context(|| {
                    format!("the unmasking request of round {round} is refused")
                })?;
                (
                    *round,
                    SecAggMessage::Unmask(response),
                    format!(
                        "sent unmasking shares for round {round}: {} survivors, {} signatures \
                         on that set",
                        request.survivors.len(),
                        request.signatures.len()
                    ),
                    None,
                )
            }
            _ => return Ok(None),
        };
        let (round, message, line, privacy_spend) = answered;
        let submission = SecAggSubmission {
            step: step.step,
            round,
            message,
            privacy_spend,
        };
        self.last = Some((step.step, submission.clone(), line.clone()));
        Ok(Some((line, submission)))
    }

    /// Takes the round's state, or says why there is none.
    fn take(&mut self, round: u32, stage: &str) -> Option<Pending> {
        match self.pending.take() {
            Some(pending) if pending.round == round => Some(pending),
            _ => {
                println!(
                    "{}: no secure-aggregation state for the {stage} stage of round {round} \
                     (joined mid-round); waiting for the next round",
                    self.me
                );
                None
            }
        }
    }
}

fn client_id(params: &SecAggParams, me: &str) -> Option<u32> {
    params
        .config()
        .members
        .iter()
        .position(|m| m.name == me)
        .map(|i| i as u32)
}
