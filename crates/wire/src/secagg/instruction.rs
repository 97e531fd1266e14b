//! Checked conversions of the secure-aggregation instructions: the keys
//! request with its roster, the key list, the routed shares, the
//! consistency request and the unmask request with its signatures.

use std::collections::{BTreeMap, BTreeSet};

use medfed_secure::secagg::{ConsistencyRequest, KeyList, RoutedShares, UnmaskRequest};

use super::settings::secagg_settings;
use super::{Result, check_ids, check_round, protocol};
use crate::WireError;
use crate::convert::step_from_pb;
use crate::limits::MAX_CERTIFICATE_BYTES;
use crate::message::{Instruction, RosterMember, Task};
use crate::pb;

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
            let mut keys = pb::SecAggKeys::default();
            match crate::convert::kind_to_pb(work, None) {
                Kind::Train(t) => keys.train = Some(t),
                Kind::Newton(n) => keys.newton = Some(n),
                Kind::Normal(n) => keys.normal = Some(n),
                Kind::Statistics(s) => keys.statistics = Some(s),
                Kind::Histograms(h) => keys.histograms = Some(h),
                Kind::Evaluate(e) => keys.evaluate = Some(e),
                _ => unreachable!("stage 0 carries a step that can be masked"),
            }
            Kind::SecaggKeys(pb::SecAggKeys {
                roster: roster
                    .iter()
                    .map(|m| pb::RosterMember {
                        name: m.name.clone(),
                        certificate: m.certificate.clone().unwrap_or_default(),
                        certificate_sha256: m.certificate_sha256.to_vec(),
                    })
                    .collect(),
                ..keys
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
        Instruction::SecAggCheck { round, request } => Kind::SecaggCheck(pb::SecAggCheck {
            round: *round,
            request: request.to_bytes(),
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
            statistics,
            histograms,
            evaluate,
        }) => {
            secagg_settings(task, "secagg_keys")?;
            let works = [
                train.map(Kind::Train),
                newton.map(Kind::Newton),
                normal.map(Kind::Normal),
                statistics.map(Kind::Statistics),
                histograms.map(Kind::Histograms),
                evaluate.map(Kind::Evaluate),
            ];
            let mut works = works.into_iter().flatten();
            let (Some(work), None) = (works.next(), works.next()) else {
                return Err(WireError::Invalid {
                    field: "secagg_keys",
                    reason: "expected exactly one of train, newton, normal, statistics, \
                             histograms and evaluate"
                        .into(),
                });
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
                .map(
                    |pb::RosterMember {
                         name,
                         certificate,
                         certificate_sha256,
                     }| {
                        check_member("secagg_keys.roster.name", &name, task)?;
                        if !seen.insert(name.clone()) {
                            return Err(WireError::Invalid {
                                field: "secagg_keys.roster.name",
                                reason: format!("{name:?} is listed twice"),
                            });
                        }
                        if certificate.len() > MAX_CERTIFICATE_BYTES {
                            return Err(WireError::TooLarge {
                                field: "secagg_keys.roster.certificate",
                                max: MAX_CERTIFICATE_BYTES as u64,
                                got: certificate.len() as u64,
                            });
                        }
                        let certificate_sha256 =
                            <[u8; 32]>::try_from(certificate_sha256.as_slice()).map_err(|_| {
                                WireError::Invalid {
                                    field: "secagg_keys.roster.certificate_sha256",
                                    reason: format!(
                                        "{} bytes, expected 32 (SHA-256)",
                                        certificate_sha256.len()
                                    ),
                                }
                            })?;
                        Ok(RosterMember {
                            name,
                            certificate: (!certificate.is_empty()).then_some(certificate),
                            certificate_sha256,
                        })
                    },
                )
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
        Kind::SecaggCheck(pb::SecAggCheck { round, request }) => {
            secagg_settings(task, "secagg_check")?;
            check_round("secagg_check.round", round, task)?;
            let request = ConsistencyRequest::from_bytes(&request)
                .map_err(|e| protocol("secagg_check.request", e))?;
            check_ids(
                "secagg_check.request.survivors",
                request.survivors.len(),
                task,
            )?;
            Instruction::SecAggCheck { round, request }
        }
        Kind::SecaggUnmask(pb::SecAggUnmask { round, request }) => {
            secagg_settings(task, "secagg_unmask")?;
            check_round("secagg_unmask.round", round, task)?;
            let request = UnmaskRequest::from_bytes(&request)
                .map_err(|e| protocol("secagg_unmask.request", e))?;
            check_ids(
                "secagg_unmask.request.survivors",
                request.survivors.len(),
                task,
            )?;
            check_ids(
                "secagg_unmask.request.signatures",
                request.signatures.len(),
                task,
            )?;
            for signature in &request.signatures {
                check_ids(
                    "secagg_unmask.request.signatures.seen",
                    signature.seen.len(),
                    task,
                )?;
            }
            Instruction::SecAggUnmask { round, request }
        }
        _ => {
            return Err(WireError::Invalid {
                field: "instruction.kind",
                reason: "not a secure-aggregation instruction".into(),
            });
        }
    })
}
