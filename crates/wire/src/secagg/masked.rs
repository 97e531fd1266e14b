//! Which vector a securely aggregated step masks: its kind, its session
//! and its length.

use medfed_model::preprocess::moments_len;
use medfed_protocol::Summed;
use medfed_protocol::summed::{
    ColumnMoments, FinalEvaluationShape, MomentsShape, NewtonShape, UpdateShape,
};

use crate::message::{
    EvaluationReport, Instruction, ModelUpdate, NewtonReport, NormalReport, StatisticsReport, Task,
};

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
