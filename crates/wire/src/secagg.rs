//! Checked conversions of the secure-aggregation instructions and
//! submissions. The protocol's own messages travel as medfed-secure bytes
//! inside the protobuf ones; they are parsed here, once, with the sizes the
//! task allows, so the coordinator and nodes only see typed messages.

use std::collections::{BTreeMap, BTreeSet};

use medfed_model::preprocess::moments_len;
use medfed_protocol::Summed;
use medfed_protocol::summed::{
    ColumnMoments, FinalEvaluationShape, MomentsShape, NewtonShape, UpdateShape,
};
use medfed_secure::secagg::{
    AdvertiseKeys, FixedPoint, KeyList, MaskedInput, RoutedShares, SecAggError, ShareKeys,
    UnmaskRequest, UnmaskResponse,
};

use crate::WireError;
use crate::convert::{check_task_id, step_from_pb};
use crate::limits::MAX_CERTIFICATE_BYTES;
use crate::message::{
    EvaluationReport, Instruction, ModelUpdate, NewtonReport, NormalReport, RosterMember,
    SecAggMessage, SecAggSubmission, SecureAggregation, StatisticsReport, Task,
};
use crate::pb;

type Result<T> = std::result::Result<T, WireError>;

/// What the members of a securely aggregated step mask, and so how the
/// coordinator reads the sum: each kind's values are laid out by its
/// [`Summed`] implementation in `medfed_protocol::summed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MaskedKind {
    /// A FedAvg/FedProx round: a [`ModelUpdate`]'s layout
    /// ([`UpdateShape`]), its held-out counts included when asked.
    Update,
    /// A Newton round: a [`NewtonReport`]'s layout ([`NewtonShape`]).
    Newton,
    /// The normal equations: a [`NormalReport`]'s layout.
    Normal,
    /// The preprocessing's first pass: a [`StatisticsReport`]'s layout
    /// (row counts, non-missing and category counts, and coarse ranges as
    /// one-hot grid positions).
    Statistics,
    /// Its second pass over the pooled ranges: [`ColumnMoments`]
    /// (range-scaled sums and median histograms).
    Moments,
    /// The final held-out evaluation: an [`EvaluationReport`]'s layout
    /// ([`FinalEvaluationShape`]).
    Evaluation,
}

/// Sessions of the passes outside training start here, above any round
/// number, so no two securely aggregated steps of a task share a session
/// (each signs its keys for its own session).
const FIRST_OTHER_SESSION: u64 = 1 << 32;

impl MaskedKind {
    /// The kind a stage-0 `work` instruction masks (`None` for instructions
    /// that cannot be securely aggregated).
    pub fn of(work: &Instruction) -> Option<MaskedKind> {
        match work {
            Instruction::Train { .. } => Some(MaskedKind::Update),
            Instruction::Newton { .. } => Some(MaskedKind::Newton),
            Instruction::Normal { .. } => Some(MaskedKind::Normal),
            Instruction::CollectStatistics => Some(MaskedKind::Statistics),
            Instruction::CollectHistograms { .. } => Some(MaskedKind::Moments),
            Instruction::Evaluate { .. } => Some(MaskedKind::Evaluation),
            _ => None,
        }
    }

    /// Whether a stage-0 `work` instruction asks for held-out counts, which
    /// then follow the kind's values in the masked vector.
    pub fn evaluates(work: &Instruction) -> bool {
        matches!(
            work,
            Instruction::Train { evaluate: true, .. } | Instruction::Newton { evaluate: true, .. }
        )
    }

    /// The secure-aggregation session of a stage-0 `work` instruction, which
    /// members sign their keys for: a training step's round number, and
    /// for the preprocessing passes and the final evaluation fixed numbers
    /// above every round.
    pub fn session(work: &Instruction) -> u64 {
        match MaskedKind::of(work) {
            Some(MaskedKind::Statistics) => FIRST_OTHER_SESSION,
            Some(MaskedKind::Moments) => FIRST_OTHER_SESSION + 1,
            Some(MaskedKind::Evaluation) => FIRST_OTHER_SESSION + 2,
            _ => u64::from(work.round()),
        }
    }

    /// Length of the vector each member masks for stage-0 `work` (`None`
    /// for instructions that cannot be securely aggregated, or a plan that
    /// does not fit the task's columns).
    pub fn vector_len(work: &Instruction, task: &Task) -> Option<usize> {
        let evaluate = MaskedKind::evaluates(work);
        Some(match work {
            Instruction::Train { .. } => ModelUpdate::len(&UpdateShape::new(task, evaluate)),
            Instruction::Newton { .. } => NewtonReport::len(&NewtonShape::new(task, evaluate)),
            Instruction::Normal { .. } => NormalReport::len(&task.dimension()),
            Instruction::CollectStatistics => StatisticsReport::len(&task.columns),
            Instruction::CollectHistograms { plan } => {
                moments_len(&task.columns, plan).ok()?;
                ColumnMoments::len(&MomentsShape {
                    columns: task.columns.clone(),
                    plan: plan.clone(),
                })
            }
            Instruction::Evaluate { models, .. } => {
                EvaluationReport::len(&FinalEvaluationShape::new(task, models.len()))
            }
            _ => return None,
        })
    }

    /// The longest vector any securely aggregated step of `task` masks,
    /// with the second preprocessing pass at
    /// [`DEFAULT_MEDIAN_BINS`](medfed_model::preprocess::DEFAULT_MEDIAN_BINS)
    /// and the final evaluation of one model (what the coordinator asks).
    pub fn longest(task: &Task) -> usize {
        let every_column = medfed_model::preprocess::HistogramPlan {
            bins: medfed_model::preprocess::DEFAULT_MEDIAN_BINS,
            ranges: vec![
                Some(medfed_model::preprocess::ValueRange { min: 0.0, max: 1.0 });
                task.columns.len()
            ],
        };
        [
            ModelUpdate::len(&UpdateShape::new(task, true)),
            NewtonReport::len(&NewtonShape::new(task, true)),
            StatisticsReport::len(&task.columns),
            moments_len(&task.columns, &every_column).unwrap_or(0),
            EvaluationReport::len(&FinalEvaluationShape::new(task, 1)),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
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

/// A training round in range, or 0 for the steps outside training (the
/// preprocessing passes and the final evaluation).
fn check_round(field: &'static str, round: u32, task: &Task) -> Result<()> {
    if round > task.rounds {
        return Err(WireError::Invalid {
            field,
            reason: format!("round {round} is outside 0..={}", task.rounds),
        });
    }
    Ok(())
}

/// Converts a secure-aggregation submission for the wire.
pub fn submission_to_pb(submission: &SecAggSubmission, task_id: &str) -> pb::SecAggSubmission {
    let (stage, payload, evaluation) = match &submission.message {
        SecAggMessage::Keys(m) => (pb::SecAggStage::Keys, m.to_bytes(), None),
        SecAggMessage::Shares(m) => (pb::SecAggStage::Shares, m.to_bytes(), None),
        SecAggMessage::Masked(m) => (pb::SecAggStage::Masked, m.to_bytes(), None),
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
/// no evaluation counts travel in clear.
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
    // In a DP task the keys of a training round carry the spend the round
    // cost the member (charged before its noised update was kept for
    // masking); the steps outside training (round 0) spend nothing.
    let spend_expected =
        task.differential_privacy.is_some() && stage == pb::SecAggStage::Keys && round > 0;
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
                reason: "only the keys of a DP task's training rounds carry a privacy spend".into(),
            });
        }
    };
    if evaluation.is_some() {
        return Err(WireError::Invalid {
            field: "secagg.evaluation",
            reason: "held-out counts travel masked, inside the masked input, never in clear".into(),
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
            // The step's kind is not known here: any length up to the
            // longest step of the task passes, and the step's
            // secure-aggregation server holds the input to the exact one.
            let longest = MaskedKind::longest(task);
            let got = input.values.len();
            if got == 0 || got > longest {
                return Err(WireError::Invalid {
                    field,
                    reason: format!(
                        "the masked vector has {got} values, expected 1 to {longest} (the \
                         longest vector this task masks)"
                    ),
                });
            }
            SecAggMessage::Masked(input)
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

#[cfg(test)]
mod tests {
    use super::*;
    use medfed_model::ModelKind;

    fn task(model: ModelKind) -> Task {
        Task {
            task_id: "t".into(),
            features: vec!["a".into()],
            columns: vec![medfed_model::ColumnSpec::numeric("a")],
            target: "y".into(),
            model,
            l2: 0.0,
            local_steps: 1,
            learning_rate: 0.1,
            holdout_fraction: 0.2,
            split_seed: 1,
            rounds: 5,
            score_bins: 4,
            members: vec!["h".into(), "k".into()],
            secure_aggregation: None,
            differential_privacy: None,
        }
    }

    #[test]
    fn roster_entries_carry_a_32_byte_digest_and_the_certificate_or_not() {
        let mut t = task(ModelKind::Logistic);
        t.secure_aggregation = Some(SecureAggregation {
            threshold: 2,
            fixed_point_bits: 24,
        });
        let keys = |certificate: Vec<u8>, digest: Vec<u8>| pb::Instruction {
            step: 3,
            kind: Some(pb::instruction::Kind::SecaggKeys(pb::SecAggKeys {
                statistics: Some(pb::CollectStatistics {}),
                roster: vec![pb::RosterMember {
                    name: "h".into(),
                    certificate,
                    certificate_sha256: digest,
                }],
                ..Default::default()
            })),
        };
        let roster = |i: pb::Instruction| match crate::convert::step_from_pb(i, &t) {
            Ok(crate::Step {
                instruction: Instruction::SecAggKeys { roster, .. },
                ..
            }) => Ok(roster),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e),
        };
        let full = roster(keys(vec![1, 2, 3], vec![7; 32])).unwrap();
        assert_eq!(full[0].certificate.as_deref(), Some(&[1u8, 2, 3][..]));
        assert_eq!(full[0].certificate_sha256, [7; 32]);
        let by_digest = roster(keys(Vec::new(), vec![7; 32])).unwrap();
        assert_eq!(by_digest[0].certificate, None);
        assert!(roster(keys(vec![1, 2, 3], vec![7; 31])).is_err());
        assert!(roster(keys(vec![0; MAX_CERTIFICATE_BYTES + 1], vec![7; 32])).is_err());
    }

    #[test]
    fn masked_lengths_follow_the_kind_and_the_held_out_counts() {
        let t = task(ModelKind::Logistic);
        let global = ndarray::Array1::zeros(t.dimension());
        let preprocessing = medfed_model::FittedPreprocessor::fit(
            &t.columns,
            &[medfed_model::preprocess::ColumnSummary::empty(
                &t.columns[0],
            )],
            None,
        )
        .unwrap()
        .0;
        let train = |evaluate| Instruction::Train {
            round: 2,
            global: global.clone(),
            preprocessing: preprocessing.clone(),
            prox_mu: 0.0,
            evaluate,
        };
        // d = 2 parameters: intercept and one feature.
        assert_eq!(MaskedKind::vector_len(&train(false), &t), Some(4));
        assert_eq!(
            MaskedKind::vector_len(&train(true), &t),
            Some(4 + 6 + 2 * t.round_score_bins() as usize)
        );
        assert_eq!(
            MaskedKind::vector_len(&Instruction::CollectStatistics, &t),
            Some(3 + 1 + 2 * medfed_model::preprocess::range_grid().len())
        );
        let evaluate = Instruction::Evaluate {
            preprocessing: preprocessing.clone(),
            models: vec![global.clone(), global.clone()],
        };
        assert_eq!(
            MaskedKind::vector_len(&evaluate, &t),
            Some(2 * (6 + 2 * t.score_bins as usize + 30))
        );
        // Every step has its own session: rounds by number, the others
        // above every round.
        assert_eq!(MaskedKind::session(&train(false)), 2);
        let others = [
            MaskedKind::session(&Instruction::CollectStatistics),
            MaskedKind::session(&evaluate),
        ];
        assert!(others.iter().all(|&s| s > u64::from(u32::MAX)));
        assert_ne!(others[0], others[1]);
        assert!(MaskedKind::longest(&t) >= MaskedKind::vector_len(&evaluate, &t).unwrap() / 2);
        assert_eq!(MaskedKind::of(&Instruction::Wait), None);
        assert_eq!(MaskedKind::vector_len(&Instruction::Wait, &t), None);
        assert!(!MaskedKind::evaluates(&Instruction::Wait));
    }
}
