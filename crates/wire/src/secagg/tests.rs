//! Tests of the secure-aggregation conversions: roster entries and the
//! masked lengths, sessions and kinds of each step.

use medfed_model::ModelKind;

use super::*;
use crate::limits::MAX_CERTIFICATE_BYTES;
use crate::message::{Instruction, SecAggMessage, SecAggSubmission, SecureAggregation};
use crate::pb;

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
        algorithm: crate::TrainingAlgorithm::Fedavg,
        baselines: false,
        evaluate_every: 1,
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

#[test]
fn consistency_and_unmask_requests_round_trip_and_are_bounded_by_the_roster() {
    use medfed_secure::secagg::{ConsistencyRequest, ConsistencySignature, UnmaskRequest};
    let mut t = task(ModelKind::Logistic);
    t.secure_aggregation = Some(SecureAggregation {
        threshold: 2,
        fixed_point_bits: 24,
    });
    let signature = |seen: Vec<u32>| ConsistencySignature {
        sender: 1,
        seen,
        signature: [5; 64],
    };
    let check = crate::Step {
        step: 9,
        instruction: Instruction::SecAggCheck {
            round: 2,
            request: ConsistencyRequest {
                survivors: vec![0, 1],
            },
        },
    };
    let unmask = crate::Step {
        step: 10,
        instruction: Instruction::SecAggUnmask {
            round: 2,
            request: UnmaskRequest {
                survivors: vec![0, 1],
                signatures: vec![signature(vec![0, 1])],
            },
        },
    };
    for step in [&check, &unmask] {
        let back = crate::convert::step_from_pb(crate::convert::step_to_pb(step), &t).unwrap();
        assert_eq!(&back, step);
    }
    // Lists longer than the roster of 2 are refused, naming the field.
    let too_long = [
        Instruction::SecAggCheck {
            round: 2,
            request: ConsistencyRequest {
                survivors: vec![0, 1, 2],
            },
        },
        Instruction::SecAggUnmask {
            round: 2,
            request: UnmaskRequest {
                survivors: vec![0, 1],
                signatures: vec![signature(vec![0, 1]); 3],
            },
        },
        Instruction::SecAggUnmask {
            round: 2,
            request: UnmaskRequest {
                survivors: vec![0, 1],
                signatures: vec![signature(vec![0, 1, 2])],
            },
        },
    ];
    let fields = [
        "secagg_check.request.survivors",
        "secagg_unmask.request.signatures",
        "secagg_unmask.request.signatures.seen",
    ];
    for (instruction, field) in too_long.into_iter().zip(fields) {
        let step = crate::Step {
            step: 11,
            instruction,
        };
        let err = crate::convert::step_from_pb(crate::convert::step_to_pb(&step), &t).unwrap_err();
        assert!(
            matches!(err, WireError::TooLarge { field: f, max: 2, got: 3 } if f == field),
            "{err}"
        );
    }
    // Garbage request bytes are a named error, not a panic.
    let garbage = pb::Instruction {
        step: 12,
        kind: Some(pb::instruction::Kind::SecaggCheck(pb::SecAggCheck {
            round: 2,
            request: vec![2, 8, 0xff, 0xff, 0xff, 0xff],
        })),
    };
    let err = crate::convert::step_from_pb(garbage, &t).unwrap_err();
    assert!(err.to_string().contains("secagg_check.request"), "{err}");
}

#[test]
fn consistency_signatures_and_complaints_are_bounded_by_the_roster() {
    use medfed_secure::secagg::{ConsistencySignature, MaskedInput};
    let mut t = task(ModelKind::Logistic);
    t.secure_aggregation = Some(SecureAggregation {
        threshold: 2,
        fixed_point_bits: 24,
    });
    let submit = |message: SecAggMessage| {
        let submission = SecAggSubmission {
            step: 4,
            round: 1,
            message,
            privacy_spend: None,
        };
        submission_from_pb(submission_to_pb(&submission, "t"), &t).map(|s| s.message)
    };
    let good = ConsistencySignature {
        sender: 0,
        seen: vec![0, 1],
        signature: [1; 64],
    };
    assert_eq!(
        submit(SecAggMessage::Consistency(good.clone())).unwrap(),
        SecAggMessage::Consistency(good.clone())
    );
    let err = submit(SecAggMessage::Consistency(ConsistencySignature {
        seen: vec![0, 1, 2],
        ..good
    }))
    .unwrap_err();
    assert!(err.to_string().contains("secagg.payload.seen"), "{err}");
    let err = submit(SecAggMessage::Masked(MaskedInput {
        sender: 0,
        values: vec![1],
        complaints: vec![1, 1, 1],
    }))
    .unwrap_err();
    assert!(
        err.to_string().contains("secagg.payload.complaints"),
        "{err}"
    );
}
