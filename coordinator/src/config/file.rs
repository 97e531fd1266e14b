//! The task file's TOML tables as serde reads them, with their defaults;
//! unknown keys are refused here. The checks of the values are in the
//! other files of `config`.

use medfed_model::{DEFAULT_SCORE_BINS, ModelKind};
use serde::Deserialize;

use super::{Aggregation, Algorithm, FailedRound};

/// The task file as written by the operator.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskFile {
    pub(super) task: TaskSection,
    /// Per-feature preprocessing; features not listed are standardised and
    /// their missing values filled with the global mean.
    #[serde(default)]
    pub(super) columns: Vec<medfed_model::ColumnSpec>,
    #[serde(default)]
    pub(super) training: TrainingSection,
    #[serde(default)]
    pub(super) evaluation: EvaluationSection,
    #[serde(default)]
    pub(super) timeouts: TimeoutSection,
    #[serde(default)]
    pub(super) privacy: PrivacySection,
}

/// `[privacy]`: how members' contributions are protected beyond TLS.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct PrivacySection {
    /// Mask every training update so the coordinator learns only the sum
    /// (Bonawitz et al., CCS 2017).
    pub(super) secure_aggregation: bool,
    /// Shares that rebuild a secret and the fewest members every stage
    /// needs; default ⌊n/2⌋ + 1.
    pub(super) threshold: Option<u32>,
    /// Fractional bits of the fixed-point encoding; default 24.
    pub(super) fixed_point_bits: Option<u32>,
    /// What a training round that cannot be summed does: `"stop"` the run
    /// (default) or `"skip"` the round, keeping the model, and go on.
    pub(super) failed_round: Option<FailedRound>,
    /// `[privacy.dp]`: DP-FedAvg on the training rounds.
    pub(super) dp: Option<DpSection>,
}

/// `[privacy.dp]`: DP-FedAvg (McMahan et al., ICLR 2018).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DpSection {
    /// The noise multiplier σ: noise of standard deviation σ·C protects the
    /// sum of clipped updates.
    pub(super) noise_multiplier: f64,
    /// The L2 norm C every site clips its round update to.
    pub(super) clip_norm: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskSection {
    pub(super) id: String,
    pub(super) members: Vec<String>,
    pub(super) model: ModelKind,
    pub(super) features: Vec<String>,
    pub(super) target: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TrainingSection {
    pub(super) rounds: u32,
    pub(super) local_steps: u32,
    pub(super) learning_rate: f64,
    pub(super) l2: f64,
    pub(super) algorithm: Algorithm,
    pub(super) prox_mu: f64,
    pub(super) tolerance: f64,
    pub(super) aggregation: Aggregation,
    pub(super) trim_fraction: f64,
    pub(super) clip_norm: Option<f64>,
    pub(super) max_update_norm: Option<f64>,
    pub(super) quorum: Option<usize>,
}

impl Default for TrainingSection {
    fn default() -> Self {
        TrainingSection {
            rounds: 20,
            local_steps: 5,
            learning_rate: 0.5,
            l2: 0.0,
            algorithm: Algorithm::Auto,
            prox_mu: 0.01,
            tolerance: 1e-8,
            aggregation: Aggregation::Fedavg,
            trim_fraction: 0.1,
            clip_norm: None,
            max_update_norm: None,
            quorum: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct EvaluationSection {
    pub(super) holdout_fraction: f64,
    pub(super) split_seed: u64,
    pub(super) score_bins: u32,
    pub(super) baselines: bool,
    pub(super) every_rounds: u32,
}

impl Default for EvaluationSection {
    fn default() -> Self {
        EvaluationSection {
            holdout_fraction: 0.25,
            split_seed: 1,
            score_bins: DEFAULT_SCORE_BINS as u32,
            baselines: false,
            every_rounds: 1,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct TimeoutSection {
    pub(super) join_seconds: u64,
    pub(super) step_seconds: u64,
}

impl Default for TimeoutSection {
    fn default() -> Self {
        TimeoutSection {
            join_seconds: 300,
            step_seconds: 300,
        }
    }
}
