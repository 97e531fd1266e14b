//! The task every member takes part in, as the coordinator defines it and
//! every node receives it at join.

use medfed_model::{ColumnSpec, ModelKind};

use crate::privacy::DifferentialPrivacy;

/// The training task every member takes part in.
#[derive(Clone, Debug, PartialEq)]
pub struct Task {
    /// Identifier that every message of this task carries.
    pub task_id: String,
    /// Feature column names, in model order.
    pub features: Vec<String>,
    /// How each feature is preprocessed, one spec per feature, in order.
    pub columns: Vec<ColumnSpec>,
    /// Target column name.
    pub target: String,
    /// Logistic or linear regression.
    pub model: ModelKind,
    /// L2 penalty on the weights (never on the intercept).
    pub l2: f64,
    /// Local gradient steps per round.
    pub local_steps: u32,
    /// Step size of local gradient descent.
    pub learning_rate: f64,
    /// Fraction of each node's rows held out for evaluation.
    pub holdout_fraction: f64,
    /// Seed of the held-out split.
    pub split_seed: u64,
    /// Number of federated rounds.
    pub rounds: u32,
    /// Score-histogram bins for binary evaluation counts.
    pub score_bins: u32,
    /// Member identities, in a fixed order.
    pub members: Vec<String>,
    /// Secure aggregation of the training rounds (`None`: off).
    pub secure_aggregation: Option<SecureAggregation>,
    /// DP-FedAvg on the training rounds (`None`: off).
    pub differential_privacy: Option<DifferentialPrivacy>,
    /// How the model is trained: which instructions the rounds send.
    pub algorithm: TrainingAlgorithm,
    /// Whether each site is asked for a model trained on its rows alone.
    pub baselines: bool,
    /// Held-out counts of the round's model come with every n-th round
    /// (0: never during training).
    pub evaluate_every: u32,
}

/// How a task's model is trained, as the coordinator resolved it: it decides
/// which instructions the rounds send, so a node can tell an instruction the
/// task never announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrainingAlgorithm {
    /// Local gradient steps, updates averaged (`train` instructions).
    Fedavg,
    /// FedAvg with a proximal term (`train` instructions with `prox_mu`).
    Fedprox,
    /// Federated Newton (`newton-round` instructions).
    Newton,
    /// The closed form (one `normal-equations` instruction).
    ClosedForm,
}

impl TrainingAlgorithm {
    /// Every algorithm, in a fixed order.
    pub const ALL: [TrainingAlgorithm; 4] = [
        TrainingAlgorithm::Fedavg,
        TrainingAlgorithm::Fedprox,
        TrainingAlgorithm::Newton,
        TrainingAlgorithm::ClosedForm,
    ];

    /// The name a task file and a node's policy use for it.
    pub fn name(self) -> &'static str {
        match self {
            TrainingAlgorithm::Fedavg => "fedavg",
            TrainingAlgorithm::Fedprox => "fedprox",
            TrainingAlgorithm::Newton => "newton",
            TrainingAlgorithm::ClosedForm => "closed-form",
        }
    }

    /// The algorithm of that name.
    pub fn from_name(name: &str) -> Option<TrainingAlgorithm> {
        TrainingAlgorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name() == name)
    }

    /// Whether it exchanges exact sums (Hessians, normal equations) that
    /// DP-FedAvg neither clips nor noises.
    pub fn is_exact(self) -> bool {
        matches!(
            self,
            TrainingAlgorithm::Newton | TrainingAlgorithm::ClosedForm
        )
    }
}

impl std::fmt::Display for TrainingAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the training rounds of a task are securely aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecureAggregation {
    /// Shares that rebuild a secret, and the fewest members that must answer
    /// every stage: more than half the roster, at most all of it.
    pub threshold: u32,
    /// Fractional bits of the fixed-point encoding.
    pub fixed_point_bits: u32,
}

/// A member of a secure-aggregation roster, as the coordinator sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RosterMember {
    /// Certificate name.
    pub name: String,
    /// The DER certificate the consortium CA issued it; `None` when the
    /// coordinator already sent this certificate to the recipient since the
    /// recipient last joined (it then checks the digest against the one it
    /// holds).
    pub certificate: Option<Vec<u8>>,
    /// SHA-256 of the certificate's DER.
    pub certificate_sha256: [u8; 32],
}

impl Task {
    /// The validated DP-FedAvg configuration of the task with the least
    /// noise at the sites, or `None` without DP: with secure aggregation
    /// each member adds its share of the noise (σ·C/√t for threshold t);
    /// without, members that trust the coordinator only clip and the
    /// coordinator adds σ·C to the sum. It is what the coordinator must be
    /// ready to complete; each member applies
    /// [`Task::member_dp_config`] instead.
    pub fn dp_config(&self) -> Option<medfed_secure::dp::DpConfig> {
        self.member_dp_config(true)
    }

    /// The DP-FedAvg configuration a member applies, or `None` without DP.
    /// With secure aggregation the placement is
    /// [`LocalWithSecureAggregation`](medfed_secure::dp::NoisePlacement::LocalWithSecureAggregation)
    /// whatever the member trusts (only the sum is revealed). Without, it
    /// is the member's decision: a member that does not trust the
    /// coordinator's noise (`trust_coordinator_noise = false`, the
    /// default of a node's policy) adds the full σ·C itself
    /// ([`Local`](medfed_secure::dp::NoisePlacement::Local)), so every
    /// update the coordinator sees is itself a Gaussian mechanism with the
    /// charged σ; one that trusts it only clips
    /// ([`Central`](medfed_secure::dp::NoisePlacement::Central)). σ and C
    /// come from the task alone, never from a step.
    pub fn member_dp_config(
        &self,
        trust_coordinator_noise: bool,
    ) -> Option<medfed_secure::dp::DpConfig> {
        use medfed_secure::dp::NoisePlacement;
        let dp = self.differential_privacy?;
        let placement = match self.secure_aggregation {
            Some(settings) => NoisePlacement::LocalWithSecureAggregation {
                min_contributors: settings.threshold,
            },
            None if trust_coordinator_noise => NoisePlacement::Central,
            None => NoisePlacement::Local,
        };
        medfed_secure::dp::DpConfig::new(dp.clip_norm, dp.noise_multiplier, placement).ok()
    }

    /// Length of a parameter vector: the intercept plus one weight per
    /// column of the preprocessed design (a one-hot feature or a missing
    /// indicator adds columns).
    pub fn dimension(&self) -> usize {
        self.design_columns().len() + 1
    }

    /// Score-histogram bins of the held-out counts sent with every round:
    /// coarser than the final evaluation's (at most
    /// [`ROUND_SCORE_BINS`](crate::limits::ROUND_SCORE_BINS)), enough to follow
    /// training, and far less revealing and smaller on the wire.
    pub fn round_score_bins(&self) -> u32 {
        self.score_bins.min(crate::limits::ROUND_SCORE_BINS)
    }

    /// Names of the preprocessed design's columns, in model order.
    pub fn design_columns(&self) -> Vec<String> {
        self.columns
            .iter()
            .flat_map(ColumnSpec::output_names)
            .collect()
    }
}
