//! Tests of the secure-aggregation conversions: roster entries and the
//! masked lengths, sessions and kinds of each step.

use medfed_model::ModelKind;

use super::*;
use crate::limits::MAX_CERTIFICATE_BYTES;
use crate::message::{Instruction, SecureAggregation};
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
