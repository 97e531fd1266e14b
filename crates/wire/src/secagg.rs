//! Checked conversions of the secure-aggregation instructions and
//! submissions. The protocol's own messages travel as medfed-secure bytes
//! inside the protobuf ones; they are parsed here, once, with the sizes the
//! task allows, so the coordinator and nodes only see typed messages.

use std::collections::{BTreeMap, BTreeSet};

use medfed_secure::secagg::{
    AdvertiseKeys, FixedPoint, KeyList, MaskedInput, RoutedShares, SecAggError, ShareKeys,
    UnmaskRequest, UnmaskResponse,
};

use crate::WireError;
use crate::convert::{check_task_id, counts_from_pb, counts_to_pb, step_from_pb};
use crate::limits::MAX_CERTIFICATE_BYTES;
use crate::message::{
    Instruction, RosterMember, SecAggMessage, SecAggSubmission, SecureAggregation, Task,
};
use crate::pb;

type Result<T> = std::result::Result<T, WireError>;

/// What the members of a securely aggregated step mask, and so how the
/// coordinator reads the sum. For `D` = [`Task::dimension`]:
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaskedKind {
    /// A FedAvg/FedProx round: `[rows x update..., rows, rows x training
    /// loss]`, `D + 2` values.
    Update,
    /// A Newton round: `[n, loss sum, gradient sum..., upper triangle of
    /// the Hessian sum row by row...]`, `2 + D + D(D+1)/2` values (see
    /// [`crate::terms::newton_to_masked`]).
    Newton,
    /// The normal equations: `[n, yᵀy, Xᵀy..., upper triangle of XᵀX row by
    /// row...]`, `2 + D + D(D+1)/2` values (see
    /// [`crate::terms::normal_to_masked`]).
    Normal,
}

impl MaskedKind {
    /// The kind a stage-0 `work` instruction masks (`None` for instructions
    /// that cannot be securely aggregated).
    pub fn of(work: &Instruction) -> Option<MaskedKind> {
        match work {
            Instruction::Train { .. } => Some(MaskedKind::Update),
            Instruction::Newton { .. } => Some(MaskedKind::Newton),
            Instruction::Normal { .. } => Some(MaskedKind::Normal),
            _ => None,
        }
    }

    /// Length of the vector each member masks for `task`.
    pub fn len(self, task: &Task) -> usize {
        let d = task.dimension();
        match self {
            MaskedKind::Update => d + 2,
            MaskedKind::Newton | MaskedKind::Normal => 2 + d + d * (d + 1) / 2,
        }
    }
}

/// Checks a task's secure-aggregation settings against its member list.
///
/// # Errors
/// A threshold outside (n/2, n] for n members, fewer than 2 members, or
/// fixed-point bits outside 1 to [`FixedPoint::MAX_FRAC_BITS`].
pub fn validate_secure_aggregation(settings: &SecureAggregation, members: usize) -> Result<()> {
    let max_members = medfed_secure::secagg::MAX_MEMBERS as usize;
    if !(2..=max_members).contains(&members) {
        return Err(WireError::Invalid {
            field: "task.members",
            reason: format!(
                "secure aggregation needs 2 to {max_members} members, the task has {members}"
            ),
        });
    }
    let t = settings.threshold as usize;
    if t * 2 <= members || t > members {
        return Err(WireError::Invalid {
            field: "task.secure_aggregation.threshold",
            reason: format!(
                "{t} is out of range for {members} members: expected more than half and at \
                 most all ({} to {members})",
                members / 2 + 1
            ),
        });
    }
    if !(1..=FixedPoint::MAX_FRAC_BITS).contains(&settings.fixed_point_bits) {
        return Err(WireError::Invalid {
            field: "task.secure_aggregation.fixed_point_bits",
            reason: format!(
                "{} is out of range 1 to {}",
                settings.fixed_point_bits,
                FixedPoint::MAX_FRAC_BITS
            ),
        });
    }
    Ok(())
}

fn protocol(field: &'static str, error: SecAggError) -> WireError {
    WireError::Invalid {
        field,
        reason: error.to_string(),
    }
}

fn secagg_settings(task: &Task, field: &'static str) -> Result<SecureAggregation> {
    task.secure_aggregation.ok_or(WireError::Invalid {
        field,
        reason: "this task does not use secure aggregation".into(),
    })
}

fn check_member(field: &'static str, name: &str, task: &Task) -> Result<()> {
    if task.members.iter().any(|m| m == name) {
        Ok(())
    } else {
        Err(WireError::Invalid {
            field,
            reason: format!(
                "{:?} is not a member of the task",
                name.chars().take(64).collect::<String>()
            ),
        })
    }
}

/// The protobuf kind of a secure-aggregation instruction, with only the
/// entry of `recipient` kept in a [`Instruction::SecAggMask`] (all of them
/// when `recipient` is `None`). `None` for other instructions.
pub(crate) fn instruction_to_pb(
    instruction: &Instruction,
    recipient: Option<&str>,
) -> Option<pb::instruction::Kind> {
    use pb::instruction::Kind;
    Some(match instruction {
        Instruction::SecAggKeys { work, roster } => {
            let (mut train, mut newton, mut normal) = (None, None, None);
            match crate::convert::kind_to_pb(work, None) {
                Kind::Train(t) => train = Some(t),
                Kind::Newton(n) => newton = Some(n),
                Kind::Normal(n) => normal = Some(n),
                _ => unreachable!("stage 0 carries a training, Newton or normal-equation step"),
            }
            Kind::SecaggKeys(pb::SecAggKeys {
                train,
                roster: roster
                    .iter()
                    .map(|m| pb::RosterMember {
                        name: m.name.clone(),
                        certificate: m.certificate.clone(),
                    })
                    .collect(),
                newton,
                normal,
            })
        }
        Instruction::SecAggShares { round, key_list } => Kind::SecaggShares(pb::SecAggShares {
            round: *round,
            key_list: key_list.to_bytes(),
        }),
        Instruction::SecAggMask { round, routed } => Kind::SecaggMask(pb::SecAggMask {
            round: *round,
            routed: routed
                .iter()
                .filter(|(member, _)| recipient.is_none_or(|r| r == member.as_str()))
                .map(|(member, shares)| pb::RoutedFor {
                    member: member.clone(),
                    shares: shares.to_bytes(),
                })
                .collect(),
        }),
        Instruction::SecAggUnmask { round, request } => Kind::SecaggUnmask(pb::SecAggUnmask {
            round: *round,
            request: request.to_bytes(),
        }),
        _ => return None,
    })
}

/// Converts and validates a secure-aggregation instruction kind.
pub(crate) fn instruction_from_pb(
    step: u64,
    kind: pb::instruction::Kind,
    task: &Task,
) -> Result<Instruction> {
    use pb::instruction::Kind;
    Ok(match kind {
        Kind::SecaggKeys(pb::SecAggKeys {
            train,
            roster,
            newton,
            normal,
        }) => {
            secagg_settings(task, "secagg_keys")?;
            let work = match (train, newton, normal) {
                (Some(train), None, None) => Kind::Train(train),
                (None, Some(newton), None) => Kind::Newton(newton),
                (None, None, Some(normal)) => Kind::Normal(normal),
                _ => {
                    return Err(WireError::Invalid {
                        field: "secagg_keys",
                        reason: "expected exactly one of train, newton and normal".into(),
                    });
                }
            };
            let work = step_from_pb(
                pb::Instruction {
                    step,
                    kind: Some(work),
                },
                task,
            )?
            .instruction;
            if roster.len() > task.members.len() {
                return Err(WireError::TooLarge {
                    field: "secagg_keys.roster",
                    max: task.members.len() as u64,
                    got: roster.len() as u64,
                });
            }
            let mut seen = BTreeSet::new();
            let roster = roster
                .into_iter()
                .map(|pb::RosterMember { name, certificate }| {
                    check_member("secagg_keys.roster.name", &name, task)?;
                    if !seen.insert(name.clone()) {
                        return Err(WireError::Invalid {
                            field: "secagg_keys.roster.name",
                            reason: format!("{name:?} is listed twice"),
                        });
                    }
                    if certificate.is_empty() || certificate.len() > MAX_CERTIFICATE_BYTES {
                        return Err(WireError::TooLarge {
                            field: "secagg_keys.roster.certificate",
                            max: MAX_CERTIFICATE_BYTES as u64,
                            got: certificate.len() as u64,
                        });
                    }
                    Ok(RosterMember { name, certificate })
                })
                .collect::<Result<Vec<_>>>()?;
            Instruction::SecAggKeys {
                work: Box::new(work),
                roster,
            }
        }
        Kind::SecaggShares(pb::SecAggShares { round, key_list }) => {
            secagg_settings(task, "secagg_shares")?;
            check_round("secagg_shares.round", round, task)?;
            Instruction::SecAggShares {
                round,
                key_list: KeyList::from_bytes(&key_list)
                    .map_err(|e| protocol("secagg_shares.key_list", e))?,
            }
        }
        Kind::SecaggMask(pb::SecAggMask { round, routed }) => {
            secagg_settings(task, "secagg_mask")?;
            check_round("secagg_mask.round", round, task)?;
            if routed.len() > task.members.len() {
                return Err(WireError::TooLarge {
                    field: "secagg_mask.routed",
                    max: task.members.len() as u64,
                    got: routed.len() as u64,
                });
            }
            let mut map = BTreeMap::new();
            for pb::RoutedFor { member, shares } in routed {
                check_member("secagg_mask.routed.member", &member, task)?;
                let shares = RoutedShares::from_bytes(&shares)
                    .map_err(|e| protocol("secagg_mask.routed.shares", e))?;
                if map.insert(member.clone(), shares).is_some() {
                    return Err(WireError::Invalid {
                        field: "secagg_mask.routed.member",
                        reason: format!("{member:?} is listed twice"),
                    });
                }
            }
            Instruction::SecAggMask { round, routed: map }
        }
        Kind::SecaggUnmask(pb::SecAggUnmask { round, request }) => {
            secagg_settings(task, "secagg_unmask")?;
            check_round("secagg_unmask.round", round, task)?;
            Instruction::SecAggUnmask {
                round,
                request: UnmaskRequest::from_bytes(&request)
                    .map_err(|e| protocol("secagg_unmask.request", e))?,
            }
        }
        _ => {
            return Err(WireError::Invalid {
                field: "instruction.kind",
                reason: "not a secure-aggregation instruction".into(),
            });
        }
    })
}

fn check_round(field: &'static str, round: u32, task: &Task) -> Result<()> {
    if round == 0 || round > task.rounds {
        return Err(WireError::Invalid {
            field,
            reason: format!("round {round} is outside 1..={}", task.rounds),
        });
    }
    Ok(())
}

/// Converts a secure-aggregation submission for the wire.
pub fn submission_to_pb(submission: &SecAggSubmission, task_id: &str) -> pb::SecAggSubmission {
    let (stage, payload, evaluation) = match &submission.message {
        SecAggMessage::Keys(m) => (pb::SecAggStage::Keys, m.to_bytes(), None),
        SecAggMessage::Shares(m) => (pb::SecAggStage::Shares, m.to_bytes(), None),
        SecAggMessage::Masked { input, evaluation } => (
            pb::SecAggStage::Masked,
            input.to_bytes(),
            evaluation.as_ref().map(counts_to_pb),
        ),
        SecAggMessage::Unmask(m) => (pb::SecAggStage::Unmask, m.to_bytes(), None),
    };
    pb::SecAggSubmission {
        task_id: task_id.to_owned(),
        step: submission.step,
        round: submission.round,
        stage: stage.into(),
        payload,
        evaluation,
        privacy_spend: submission
            .privacy_spend
            .as_ref()
            .map(crate::privacy::spend_to_pb),
    }
}

/// Converts and validates a member's secure-aggregation submission: the
/// task uses secure aggregation, the round is in range, the payload parses
/// as the stage's message, a masked input has a length the task can mask, and
/// only a masked input carries evaluation counts.
///
/// # Errors
/// Any of the above, naming the field.
pub fn submission_from_pb(
    submission: pb::SecAggSubmission,
    task: &Task,
) -> Result<SecAggSubmission> {
    let pb::SecAggSubmission {
        task_id,
        step,
        round,
        stage,
        payload,
        evaluation,
        privacy_spend,
    } = submission;
    check_task_id(task, task_id)?;
    secagg_settings(task, "secagg")?;
    check_round("secagg.round", round, task)?;
    let stage = pb::SecAggStage::try_from(stage).unwrap_or(pb::SecAggStage::Unspecified);
    // In a DP task the keys carry the spend the round cost the member
    // (charged before its noised update was kept for masking).
    let spend_expected = task.differential_privacy.is_some() && stage == pb::SecAggStage::Keys;
    let privacy_spend = match (privacy_spend, spend_expected) {
        (Some(spend), true) => Some(crate::privacy::spend_from_pb(spend, task, round)?),
        (None, false) => None,
        (None, true) => {
            return Err(WireError::MissingField {
                field: "secagg.privacy_spend",
            });
        }
        (Some(_), false) => {
            return Err(WireError::Invalid {
                field: "secagg.privacy_spend",
                reason: "only the keys of a DP task carry a privacy spend".into(),
            });
        }
    };
    if evaluation.is_some() && stage != pb::SecAggStage::Masked {
        return Err(WireError::Invalid {
            field: "secagg.evaluation",
            reason: "only the masked input carries evaluation counts".into(),
        });
    }
    let field = "secagg.payload";
    let message = match stage {
        pb::SecAggStage::Keys => SecAggMessage::Keys(
            AdvertiseKeys::from_bytes(&payload).map_err(|e| protocol(field, e))?,
        ),
        pb::SecAggStage::Shares => {
            SecAggMessage::Shares(ShareKeys::from_bytes(&payload).map_err(|e| protocol(field, e))?)
        }
        pb::SecAggStage::Masked => {
            let input = MaskedInput::from_bytes(&payload).map_err(|e| protocol(field, e))?;
            // The step's kind is not known here: any length the task's
            // model can mask passes, and the round's secure-aggregation
            // server holds the input to the exact one.
            let lengths = [MaskedKind::Update, MaskedKind::Newton, MaskedKind::Normal]
                .map(|kind| kind.len(task));
            if !lengths.contains(&input.values.len()) {
                return Err(WireError::Invalid {
                    field,
                    reason: format!(
                        "the masked vector has {} values, expected {} (update), {} (Newton \
                         terms) or {} (normal equations)",
                        input.values.len(),
                        lengths[0],
                        lengths[1],
                        lengths[2]
                    ),
                });
            }
            SecAggMessage::Masked {
                input,
                evaluation: evaluation
                    .map(|c| counts_from_pb(c, task, task.round_score_bins()))
                    .transpose()?,
            }
        }
        pb::SecAggStage::Unmask => SecAggMessage::Unmask(
            UnmaskResponse::from_bytes(&payload).map_err(|e| protocol(field, e))?,
        ),
        pb::SecAggStage::Unspecified => {
            return Err(WireError::Invalid {
                field: "secagg.stage",
                reason: "must be keys, shares, masked or unmask".into(),
            });
        }
    };
    Ok(SecAggSubmission {
        step,
        round,
        message,
        privacy_spend,
    })
}
