//! A node's side of secure aggregation: the four stages of a round, with the
//! medfed-secure client state carried from one instruction to the next.
//!
//! What stage 0 asks for (a FedAvg/FedProx update, Newton terms or the
//! normal equations) is computed exactly as for a clear step, then kept in
//! memory only; what leaves is the masked vector of
//! [`medfed_wire::secagg::MaskedKind`], in which every value, the row count
//! included, is hidden until it is summed with the others.
//!
//! The roster's signing keys are taken from the members' certificates, each
//! checked here against the consortium CA, never from the coordinator's
//! word: a coordinator that could substitute a key of its own for a member's
//! could impersonate that member in the key exchange, receive the shares
//! meant for it, and unmask another member's input.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use medfed_audit::SigningKey;
use medfed_model::preprocess::{HistogramPlan, median_plan};
use medfed_secure::secagg::{
    Client, ClientAdvertised, ClientMasked, ClientShared, FixedPoint, Member, SecAggConfig,
    SecAggParams,
};
use medfed_wire::Summed;
use medfed_wire::secagg::MaskedKind;
use medfed_wire::summed::{
    ColumnMoments, FinalEvaluationShape, MomentsShape, NewtonShape, UpdateShape, Weighting,
};
use medfed_wire::{
    Instruction, ModelUpdate, SecAggMessage, SecAggSubmission, SecureAggregation, Step, Task,
};

use crate::data::SiteData;
use crate::work::{Answer, answer};

/// Where this node is in the current round.
enum Phase {
    Advertised(ClientAdvertised),
    Shared(ClientShared),
    Masked(ClientMasked),
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
    me: String,
    settings: SecureAggregation,
    verifier: medfed_tls::MemberVerifier,
    signer: SigningKey,
    pending: Option<Pending>,
    /// The last submission, by step: sent again unchanged if the step is
    /// asked again after a lost connection (the state behind it is spent).
    last: Option<(u64, SecAggSubmission, String)>,
    /// Roster certificates already checked against the CA, by member: the
    /// same bytes are not checked again every round until
    /// [`RECHECK_AFTER`] has passed (a certificate can expire mid-task).
    checked: BTreeMap<String, Checked>,
}

/// A roster certificate that checked out, and the key it certifies.
struct Checked {
    der: Vec<u8>,
    sha256: [u8; 32],
    key: [u8; 32],
    at: Instant,
}

/// How long a checked roster certificate is trusted before it is checked
/// again.
const RECHECK_AFTER: Duration = Duration::from_secs(600);

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
        }
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
                } = stage0_input(site, task, &work, dp)?;
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
            Instruction::SecAggUnmask { round, request } => {
                let Some(pending) = self.take(*round, "unmasking") else {
                    return Ok(None);
                };
                let Phase::Masked(client) = pending.phase else {
                    return Ok(None);
                };
                let response = client.unmask(request).with_context(|| {
                    format!("the unmasking request of round {round} is refused")
                })?;
                (
                    *round,
                    SecAggMessage::Unmask(response),
                    format!(
                        "sent unmasking shares for round {round}: {} survivors, {} dropped",
                        request.survivors.len(),
                        request.dropped.len()
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

    /// The round's parameters: the roster's keys from certificates checked
    /// against the consortium CA, the threshold and encoding from the task.
    fn params(
        &mut self,
        task: &Task,
        (round, session): (u32, u64),
        roster: &[medfed_wire::RosterMember],
        vector_len: usize,
    ) -> anyhow::Result<SecAggParams> {
        let members = roster
            .iter()
            .map(|m| {
                Ok(Member {
                    name: m.name.clone(),
                    verify_key: self.checked_key(m)?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .with_context(|| format!("the roster of round {round} is refused"))?;
        if let Some(me) = members.iter().find(|m| m.name == self.me)
            && me.verify_key != *self.signer.public_key().as_bytes()
        {
            anyhow::bail!(
                "the roster of round {round} lists {} with a key other than this node's",
                self.me
            );
        }
        SecAggParams::new(SecAggConfig {
            task: task.task_id.clone(),
            round: session,
            threshold: self.settings.threshold,
            members,
            vector_len,
            fixed_point: FixedPoint::new(self.settings.fixed_point_bits)?,
        })
        .with_context(|| format!("the roster of round {round} is refused"))
    }

    /// The signing key `m`'s certificate certifies, checked against the
    /// consortium CA unless the same certificate checked out recently. A
    /// roster entry without the certificate names one sent earlier by its
    /// digest.
    fn checked_key(&mut self, m: &medfed_wire::RosterMember) -> anyhow::Result<[u8; 32]> {
        let held = self
            .checked
            .get(&m.name)
            .filter(|c| c.sha256 == m.certificate_sha256);
        let der = match (&m.certificate, held) {
            (Some(der), _) => {
                if sha256(der) != m.certificate_sha256 {
                    anyhow::bail!(
                        "the roster's certificate for {} does not match its digest",
                        m.name
                    );
                }
                if let Some(c) = held
                    && c.der == *der
                    && c.at.elapsed() < RECHECK_AFTER
                {
                    return Ok(c.key);
                }
                der.clone()
            }
            (None, Some(c)) if c.at.elapsed() < RECHECK_AFTER => return Ok(c.key),
            (None, Some(c)) => c.der.clone(),
            (None, None) => anyhow::bail!(
                "the roster names {}'s certificate by digest only, and this node holds no \
                 certificate with that digest (a coordinator sends every certificate in full \
                 after a join: restart the node to join again)",
                m.name
            ),
        };
        let key = self.verifier.signing_key(&m.name, &der)?;
        self.checked.insert(
            m.name.clone(),
            Checked {
                der,
                sha256: m.certificate_sha256,
                key,
                at: Instant::now(),
            },
        );
        Ok(key)
    }
}

/// SHA-256 of `bytes`.
fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// What stage 0 of a securely aggregated step keeps to mask.
struct Stage0 {
    /// The clear vector to mask, the round's held-out counts included when
    /// asked for.
    input: Vec<f64>,
    /// In a DP training round, what it cost this site.
    privacy_spend: Option<medfed_wire::PrivacySpend>,
    /// What the vector holds, for the node's output.
    what: String,
}

/// Computes what stage 0's `work` asks for, exactly as for a clear step,
/// and lays it out as the vector to mask (see [`MaskedKind`] and
/// [`Summed`]).
///
/// # Errors
/// As the work itself; a DP task asking for Newton or normal-equation
/// terms (they are not clipped or noised); work that makes nothing to mask;
/// a value that does not fit its layout (held-out counts asked for and not
/// made, or made and not asked for, included).
fn stage0_input(
    site: &mut SiteData,
    task: &Task,
    work: &Step,
    dp: Option<&mut crate::privacy::DpRounds>,
) -> anyhow::Result<Stage0> {
    let round = work.round();
    let evaluate = MaskedKind::evaluates(&work.instruction);
    let laid_out = |e: medfed_wire::LayoutError| {
        anyhow::anyhow!("round {round}: the values to mask do not fit their layout: {e}")
    };
    let plain = |input: Vec<f64>, what: String| Stage0 {
        input,
        privacy_spend: None,
        what,
    };
    if let Instruction::CollectHistograms { plan } = &work.instruction {
        // The second statistics pass: sums scaled to the pooled ranges and
        // the median histograms (not the clear pass's histograms of every
        // ranged column).
        let input =
            moments(site, task, plan).context("the column moments pass (secure aggregation)")?;
        let what = "column sums over the pooled ranges and median histograms";
        return Ok(plain(input, what.into()));
    }
    Ok(match (answer(site, task, work)?, dp) {
        // DP: the update clipped and noised, every member weighing the
        // same, and neither rows nor loss released.
        (Answer::Update(update), Some(dp)) => {
            let mut noised = update.delta.to_vec();
            let spend = dp
                .release(round, &mut noised)
                .with_context(|| format!("round {round}: cannot charge and noise the update"))?;
            let shape = UpdateShape {
                weighting: Weighting::Equal,
                ..UpdateShape::new(task, evaluate)
            };
            let what = format!(
                "trained on {} rows; update clipped and noised (ε spent {:.4} of {} at δ = {:e})",
                update.num_rows, spend.epsilon, spend.budget_epsilon, spend.delta
            );
            let noised = ModelUpdate {
                delta: noised.into(),
                ..update
            };
            Stage0 {
                input: noised.to_vector(&shape).map_err(laid_out)?,
                privacy_spend: Some(spend),
                what,
            }
        }
        (Answer::Update(update), None) => {
            let shape = UpdateShape {
                weighting: Weighting::Rows,
                ..UpdateShape::new(task, evaluate)
            };
            plain(
                update.to_vector(&shape).map_err(laid_out)?,
                format!("trained on {} rows, update", update.num_rows),
            )
        }
        (Answer::Newton(report), None) => plain(
            report
                .to_vector(&NewtonShape::new(task, evaluate))
                .map_err(laid_out)?,
            format!("Newton terms of {} rows", report.terms.n),
        ),
        (Answer::Normal(report), None) => plain(
            report.to_vector(&task.dimension()).map_err(laid_out)?,
            format!("normal-equation terms of {} rows", report.terms.n),
        ),
        (Answer::Newton(_) | Answer::Normal(_), Some(_)) => anyhow::bail!(
            "round {round}: Newton and normal-equation terms are not clipped or noised, and \
             this task uses differential privacy"
        ),
        (Answer::Statistics(report), _) => {
            let input = report
                .to_vector(&task.columns)
                .context("the statistics pass (secure aggregation)")?;
            let what = format!(
                "column counts and coarse ranges of {} rows",
                report.train_rows
            );
            plain(input, what)
        }
        (Answer::Evaluation(report), _) => plain(
            report
                .to_vector(&FinalEvaluationShape::new(task, report.models.len()))
                .map_err(laid_out)?,
            "held-out counts of the federated model".into(),
        ),
        _ => anyhow::bail!("round {round}: stage 0 produced nothing to mask"),
    })
}

/// The second statistics pass at this site: its exact column sums scaled to
/// the pooled ranges of `plan`, and the histograms of the columns imputed
/// by their median.
fn moments(site: &SiteData, task: &Task, plan: &HistogramPlan) -> anyhow::Result<Vec<f64>> {
    let moments = ColumnMoments {
        summaries: site.statistics(task)?,
        histograms: site.histograms(task, &median_plan(&task.columns, plan))?,
    };
    let shape = MomentsShape {
        columns: task.columns.clone(),
        plan: plan.clone(),
    };
    Ok(moments.to_vector(&shape)?)
}

/// Refuses a request for anything computed from the rows in clear when the
/// task uses secure aggregation: whatever the coordinator asks, only
/// masked inputs leave the node.
///
/// # Errors
/// A statistics, histogram, training, Newton, normal-equation, baseline or
/// evaluation step outside secure aggregation in such a task, naming it.
pub fn refuse_in_clear(task: &Task, step: &Step) -> anyhow::Result<()> {
    let from_rows = matches!(
        step.instruction,
        Instruction::CollectStatistics
            | Instruction::CollectHistograms { .. }
            | Instruction::Train { .. }
            | Instruction::Newton { .. }
            | Instruction::Normal { .. }
            | Instruction::Baseline { .. }
            | Instruction::Evaluate { .. }
    );
    if task.secure_aggregation.is_some() && from_rows {
        anyhow::bail!(
            "the coordinator asked for {} in clear (step {}), but task {} uses secure \
             aggregation: refused, nothing sent (only masked inputs leave this node)",
            step.kind(),
            step.step,
            task.task_id
        );
    }
    Ok(())
}

fn client_id(params: &SecAggParams, me: &str) -> Option<u32> {
    params
        .config()
        .members
        .iter()
        .position(|m| m.name == me)
        .map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(secure: bool) -> Task {
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
            members: vec!["h".into(), "k".into()],
            secure_aggregation: secure.then_some(SecureAggregation {
                threshold: 2,
                fixed_point_bits: 24,
            }),
            differential_privacy: None,
        }
    }

    #[test]
    fn clear_requests_for_aggregates_are_refused_in_a_secure_task() {
        let statistics = Step {
            step: 3,
            instruction: Instruction::CollectStatistics,
        };
        let wait = Step {
            step: 4,
            instruction: Instruction::Wait,
        };
        let refused = refuse_in_clear(&task(true), &statistics).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("collect-statistics in clear (step 3)"),
            "{refused}"
        );
        assert!(refuse_in_clear(&task(true), &wait).is_ok());
        assert!(refuse_in_clear(&task(false), &statistics).is_ok());
    }
}
