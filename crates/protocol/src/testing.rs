//! Small tasks for the unit tests.

use medfed_model::ModelKind;

use crate::privacy::DifferentialPrivacy;
use crate::task::Task;

/// A task of one numeric column (two parameters) and two members.
pub(crate) fn task(model: ModelKind) -> Task {
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
        algorithm: crate::task::TrainingAlgorithm::Fedavg,
        baselines: false,
        evaluate_every: 1,
    }
}

/// Differential-privacy settings.
pub(crate) fn dp() -> DifferentialPrivacy {
    DifferentialPrivacy {
        noise_multiplier: 1.0,
        clip_norm: 1.0,
    }
}
