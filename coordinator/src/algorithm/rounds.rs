//! What every training algorithm shares: where training starts, what it
//! produces, the checkpoint hook the round loop calls after each round,
//! and the round's held-out scores.

use std::collections::BTreeMap;

use medfed_wire::EvaluationCounts;
use ndarray::Array1;

use crate::config::TaskConfig;
use crate::report::{Metrics, ModelScores};
use crate::run_error::RunError;
use crate::step::RoundRecord;

/// What training produced.
pub struct Trained {
    /// Final global parameters.
    pub global: Array1<f64>,
    /// One record per round run.
    pub rounds: Vec<RoundRecord>,
    /// Why training stopped.
    pub stop_reason: String,
}

/// Where training starts: from scratch (zeros, no rounds) or from a
/// checkpoint's model after its completed rounds.
pub struct Start {
    /// The global model to start from.
    pub global: Array1<f64>,
    /// Rounds already done.
    pub rounds: Vec<RoundRecord>,
}

/// Called after every completed round with the last step number, the global
/// model and the rounds so far, to checkpoint them.
pub type OnRound<'a> =
    dyn FnMut(u64, &Array1<f64>, &[RoundRecord]) -> Result<(), RunError> + Send + 'a;

/// Whether `round`'s model is also scored on the held-out rows.
pub(crate) fn evaluate_round(config: &TaskConfig, round: u32) -> bool {
    config.evaluate_every > 0 && round.is_multiple_of(config.evaluate_every)
}

/// Scores of a round's model from each member's held-out counts (none when
/// the round was not evaluated).
pub(crate) fn held_out(evaluations: &BTreeMap<String, EvaluationCounts>) -> Option<ModelScores> {
    (!evaluations.is_empty()).then(|| ModelScores::from_sites(evaluations))
}

/// Scores of a round's model from held-out counts summed under secure
/// aggregation: overall only, since no member's own counts are seen.
pub(crate) fn held_out_overall(counts: Option<&EvaluationCounts>) -> Option<ModelScores> {
    counts.map(|c| ModelScores {
        overall: Metrics::from_counts(c),
        per_site: Default::default(),
    })
}
