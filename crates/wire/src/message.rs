//! Domain types exchanged between coordinator and nodes. They hold no prost
//! types; [`crate::convert`] builds them from validated wire messages.

use medfed_model::preprocess::{ColumnHistogram, ColumnSummary, HistogramPlan};
use medfed_model::{
    CalibrationCounts, ColumnSpec, FittedPreprocessor, ModelKind, NewtonTerms, NormalTerms,
};
use std::collections::BTreeMap;

use medfed_secure::secagg::{
    AdvertiseKeys, KeyList, MaskedInput, RoutedShares, ShareKeys, UnmaskRequest, UnmaskResponse,
};
use ndarray::Array1;

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
}

/// DP-FedAvg settings of a task: every member clips its round update to
/// `clip_norm`; noise of standard deviation `noise_multiplier x clip_norm`
/// protects the sum (see [`Task::dp_config`] for who adds it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DifferentialPrivacy {
    /// The noise multiplier σ each round is charged at.
    pub noise_multiplier: f64,
    /// The clip norm C (the sensitivity of the sum).
    pub clip_norm: f64,
}

/// What a member has spent of its own privacy budget, as it reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrivacySpend {
    /// The round charged.
    pub round: u32,
    /// The noise multiplier it was charged at.
    pub noise_multiplier: f64,
    /// Total ε after the round (Rényi-DP accountant).
    pub epsilon: f64,
    /// The δ at which `epsilon` holds.
    pub delta: f64,
    /// Rounds charged in total.
    pub rounds: u64,
    /// The member's ε budget.
    pub budget_epsilon: f64,
}

/// A member declines a DP round its own budget cannot pay for, or a DP task
/// it has no budget for at all, and leaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetRefusal {
    /// The step declined (0 before training).
    pub step: u64,
    /// The round declined (0 before training).
    pub round: u32,
    /// ε spent so far.
    pub spent_epsilon: f64,
    /// The δ at which the ε values hold.
    pub delta: f64,
    /// The total ε the round would have taken the member to.
    pub epsilon_after_round: f64,
    /// The member's ε budget.
    pub budget_epsilon: f64,
    /// Rounds charged so far.
    pub rounds_spent: u64,
    /// Why it declines. With [`RefusalReason::NoBudget`] every other field
    /// is 0.
    pub reason: RefusalReason,
}

/// Why a member declines a DP task or round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    /// One more round at the task's noise multiplier would take the member
    /// past its budget.
    BudgetSpent,
    /// The member has no privacy budget set, so it takes part in no DP task.
    NoBudget,
}

impl BudgetRefusal {
    /// The notice of a member that has no privacy budget set: it declines
    /// the task before training and says nothing else.
    pub fn no_budget() -> BudgetRefusal {
        BudgetRefusal {
            step: 0,
            round: 0,
            spent_epsilon: 0.0,
            delta: 0.0,
            epsilon_after_round: 0.0,
            budget_epsilon: 0.0,
            rounds_spent: 0,
            reason: RefusalReason::NoBudget,
        }
    }
}

impl std::fmt::Display for BudgetRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason {
            RefusalReason::BudgetSpent => write!(
                f,
                "its privacy budget ε = {} (δ = {:e}) is spent: ε = {:.4} after {} round{}, and \
                 one more round would take it to ε = {:.4}",
                self.budget_epsilon,
                self.delta,
                self.spent_epsilon,
                self.rounds_spent,
                if self.rounds_spent == 1 { "" } else { "s" },
                self.epsilon_after_round
            ),
            RefusalReason::NoBudget => f.write_str(
                "it has no privacy budget set, and a site takes part in a differential-privacy \
                 task only with an (ε, δ) budget of its own: the hospital sets one as `epsilon` \
                 and `delta` in the [privacy] table of its node file, or with `node run \
                 --dp-epsilon E --dp-delta D`",
            ),
        }
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
    /// The validated DP-FedAvg configuration of the task, or `None` without
    /// DP. With secure aggregation each member adds its share of the noise
    /// (σ·C/√t for threshold t); without, the coordinator adds σ·C to the
    /// sum.
    pub fn dp_config(&self) -> Option<medfed_secure::dp::DpConfig> {
        let dp = self.differential_privacy?;
        let placement = match self.secure_aggregation {
            Some(settings) => medfed_secure::dp::NoisePlacement::LocalWithSecureAggregation {
                min_contributors: settings.threshold,
            },
            None => medfed_secure::dp::NoisePlacement::Central,
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

/// One numbered instruction from the coordinator.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Strictly increasing step number; answers name it.
    pub step: u64,
    /// What to do.
    pub instruction: Instruction,
}

impl Step {
    /// The exchange-log kind of this instruction (`train`, `newton-round`,
    /// ...), as `medfed-audit` decodes it.
    pub fn kind(&self) -> &'static str {
        match self.instruction {
            Instruction::CollectStatistics => "collect-statistics",
            Instruction::CollectHistograms { .. } => "collect-histograms",
            Instruction::Train { .. } => "train",
            Instruction::Newton { .. } => "newton-round",
            Instruction::Normal { .. } => "normal-equations",
            Instruction::Baseline { .. } => "train-baseline",
            Instruction::Evaluate { .. } => "evaluate",
            Instruction::Finished { .. } => "finished",
            Instruction::Wait => "wait",
            Instruction::SecAggKeys { .. } => "secagg-keys-request",
            Instruction::SecAggShares { .. } => "secagg-key-list",
            Instruction::SecAggMask { .. } => "secagg-routed-shares",
            Instruction::SecAggUnmask { .. } => "secagg-unmask-request",
        }
    }

    /// The training round this instruction belongs to (0 outside rounds).
    pub fn round(&self) -> u32 {
        self.instruction.round()
    }
}

impl Instruction {
    /// The training round this instruction belongs to (0 outside rounds).
    pub fn round(&self) -> u32 {
        match self {
            Instruction::Train { round, .. }
            | Instruction::Newton { round, .. }
            | Instruction::SecAggShares { round, .. }
            | Instruction::SecAggMask { round, .. }
            | Instruction::SecAggUnmask { round, .. } => *round,
            Instruction::Normal { .. } => 1,
            Instruction::SecAggKeys { work, .. } => work.round(),
            _ => 0,
        }
    }
}

/// What the coordinator asks of the nodes.
#[derive(Clone, Debug, PartialEq)]
pub enum Instruction {
    /// Send per-column summaries of the training rows.
    CollectStatistics,
    /// Send per-column histograms of the training rows over these ranges.
    CollectHistograms {
        /// Bins and one range per column (none where no histogram is needed).
        plan: HistogramPlan,
    },
    /// Train from the global parameters and send the delta.
    Train {
        /// 1-based round number.
        round: u32,
        /// Global parameters (intercept first).
        global: Array1<f64>,
        /// The global preprocessing.
        preprocessing: FittedPreprocessor,
        /// FedProx proximal weight (0 for FedAvg).
        prox_mu: f64,
        /// Also send evaluation counts of `global` on the held-out rows.
        evaluate: bool,
    },
    /// Federated Newton: send loss, gradient and Hessian sums at `params`.
    Newton {
        /// 1-based round number.
        round: u32,
        /// The parameters to evaluate the terms at (intercept first).
        params: Array1<f64>,
        /// The global preprocessing.
        preprocessing: FittedPreprocessor,
        /// Also send evaluation counts of `params` on the held-out rows.
        evaluate: bool,
    },
    /// Closed-form linear regression: send the normal-equation terms.
    Normal {
        /// The global preprocessing.
        preprocessing: FittedPreprocessor,
    },
    /// Train a model on local rows alone and send it.
    Baseline {
        /// The global preprocessing.
        preprocessing: FittedPreprocessor,
        /// Total gradient steps.
        steps: u32,
    },
    /// Score the given models on the held-out rows and send aggregate counts.
    Evaluate {
        /// The global preprocessing.
        preprocessing: FittedPreprocessor,
        /// Models to score; the first is the federated model.
        models: Vec<Array1<f64>>,
    },
    /// The task is over.
    Finished {
        /// Why it ended.
        reason: String,
    },
    /// Nothing new yet: ask again.
    Wait,
    /// Secure aggregation, stage 0: compute what `work` asks for, keep it
    /// for masking, and advertise fresh keys.
    SecAggKeys {
        /// What to compute: an [`Instruction::Train`], [`Instruction::Newton`]
        /// or [`Instruction::Normal`] (checked at the wire); its result is
        /// the vector masked at stage 2 (see [`crate::secagg::MaskedKind`]).
        work: Box<Instruction>,
        /// The round's roster; member ids are indexes into it.
        roster: Vec<RosterMember>,
    },
    /// Stage 1: every advertised key; check them and send shares.
    SecAggShares {
        /// 1-based round number.
        round: u32,
        /// The signed keys.
        key_list: KeyList,
    },
    /// Stage 2: the shares encrypted for each member, by member name (a
    /// node receives only its own entry); mask the update and send it.
    SecAggMask {
        /// 1-based round number.
        round: u32,
        /// Shares by recipient.
        routed: BTreeMap<String, RoutedShares>,
    },
    /// Stage 3: survivors and dropped members; reveal the shares that
    /// remove the masks.
    SecAggUnmask {
        /// 1-based round number.
        round: u32,
        /// Whose masks to remove, and how.
        request: UnmaskRequest,
    },
}

/// A member's secure-aggregation message for one stage of a round.
#[derive(Clone, Debug, PartialEq)]
pub struct SecAggSubmission {
    /// Step being answered.
    pub step: u64,
    /// Round being answered.
    pub round: u32,
    /// The stage's message.
    pub message: SecAggMessage,
    /// DP tasks, with the keys only: the member's spend including this
    /// round.
    pub privacy_spend: Option<PrivacySpend>,
}

/// The message of one secure-aggregation stage.
#[derive(Clone, Debug, PartialEq)]
pub enum SecAggMessage {
    /// Stage 0: the member's signed public keys.
    Keys(AdvertiseKeys),
    /// Stage 1: its shares, encrypted to each other member.
    Shares(ShareKeys),
    /// Stage 2: its masked input (see [`crate::secagg::MaskedKind`]), held-out
    /// counts of the round's model included when asked.
    Masked(MaskedInput),
    /// Stage 3: the shares that remove the masks.
    Unmask(UnmaskResponse),
}

impl SecAggMessage {
    /// The exchange-log kind of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            SecAggMessage::Keys(_) => "secagg-keys",
            SecAggMessage::Shares(_) => "secagg-shares",
            SecAggMessage::Masked(_) => "secagg-masked-input",
            SecAggMessage::Unmask(_) => "secagg-unmask",
        }
    }

    /// The roster id the message names as its sender.
    pub fn sender(&self) -> u32 {
        match self {
            SecAggMessage::Keys(m) => m.sender,
            SecAggMessage::Shares(m) => m.sender,
            SecAggMessage::Masked(m) => m.sender,
            SecAggMessage::Unmask(m) => m.sender,
        }
    }
}

/// A node's per-column summaries of its training rows.
#[derive(Clone, Debug, PartialEq)]
pub struct StatisticsReport {
    /// Step being answered.
    pub step: u64,
    /// One summary per task column, in task order.
    pub summaries: Vec<ColumnSummary>,
    /// Rows used for training.
    pub train_rows: u64,
    /// Rows held out for evaluation.
    pub holdout_rows: u64,
    /// Rows left out because their target is missing.
    pub rows_missing_target: u64,
}

/// A node's answer to [`Instruction::CollectHistograms`].
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramReport {
    /// Step being answered.
    pub step: u64,
    /// One histogram per column where the plan has a range, else `None`.
    pub histograms: Vec<Option<ColumnHistogram>>,
}

/// A node's contribution to one training round.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelUpdate {
    /// Step being answered.
    pub step: u64,
    /// Round being answered.
    pub round: u32,
    /// Local parameters minus global parameters.
    pub delta: Array1<f64>,
    /// Training rows behind the update (its FedAvg weight).
    pub num_rows: u64,
    /// Mean training loss of the global parameters on those rows.
    pub train_loss: f64,
    /// Counts of the global parameters on the held-out rows, when asked.
    pub evaluation: Option<EvaluationCounts>,
    /// DP tasks: the member's spend including this round (then `num_rows`
    /// and `train_loss` are 0).
    pub privacy_spend: Option<PrivacySpend>,
}

/// A node's answer to [`Instruction::Newton`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewtonReport {
    /// Step being answered.
    pub step: u64,
    /// Round being answered.
    pub round: u32,
    /// Sums over the node's training rows at the round's parameters.
    pub terms: NewtonTerms,
    /// Counts of the round's parameters on the held-out rows, when asked.
    pub evaluation: Option<EvaluationCounts>,
}

/// A node's answer to [`Instruction::Normal`].
#[derive(Clone, Debug, PartialEq)]
pub struct NormalReport {
    /// Step being answered.
    pub step: u64,
    /// XᵀX, Xᵀy, yᵀy and the sum of y over the node's training rows.
    pub terms: NormalTerms,
}

/// A model trained on one node's rows alone.
#[derive(Clone, Debug, PartialEq)]
pub struct BaselineModel {
    /// Step being answered.
    pub step: u64,
    /// Parameters (intercept first).
    pub model: Array1<f64>,
    /// Training rows behind it.
    pub num_rows: u64,
}

/// Aggregate evaluation counts of one model on a node's held-out rows
/// (defined beside the counts themselves, in the model library).
pub use medfed_model::EvaluationCounts;

/// A node's answer to [`Instruction::Evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct EvaluationReport {
    /// Step being answered.
    pub step: u64,
    /// One entry per requested model, in the same order.
    pub models: Vec<EvaluationCounts>,
    /// Logistic tasks: calibration counts per requested model, in the same
    /// order (empty for linear tasks).
    pub calibration: Vec<CalibrationCounts>,
}
