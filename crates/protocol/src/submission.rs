//! What a member sends back: one [`Submission`] per answered step, of one
//! of a fixed set of kinds, each signed and logged on the way out.

use medfed_model::preprocess::{ColumnHistogram, ColumnSummary};
use medfed_model::{CalibrationCounts, NewtonTerms, NormalTerms};
use medfed_secure::secagg::{
    AdvertiseKeys, ConsistencySignature, MaskedInput, ShareKeys, UnmaskResponse,
};
use ndarray::Array1;

use crate::kinds;
use crate::privacy::{BudgetRefusal, PrivacySpend};
use crate::refusal::Refusal;

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
    /// Stage 2: its masked input (see `medfed_wire::secagg::MaskedKind`), held-out
    /// counts of the round's model included when asked.
    Masked(MaskedInput),
    /// Stage 3: its signature on the survivor set and its view of who
    /// shared keys with it.
    Consistency(ConsistencySignature),
    /// Stage 4: the shares that remove the masks.
    Unmask(UnmaskResponse),
}

impl SecAggMessage {
    /// The exchange-log kind of this message.
    pub fn kind(&self) -> &'static str {
        match self {
            SecAggMessage::Keys(_) => kinds::SECAGG_KEYS,
            SecAggMessage::Shares(_) => kinds::SECAGG_SHARES,
            SecAggMessage::Masked(_) => kinds::SECAGG_MASKED_INPUT,
            SecAggMessage::Consistency(_) => kinds::SECAGG_CONSISTENCY,
            SecAggMessage::Unmask(_) => kinds::SECAGG_UNMASK,
        }
    }

    /// The roster id the message names as its sender.
    pub fn sender(&self) -> u32 {
        match self {
            SecAggMessage::Keys(m) => m.sender,
            SecAggMessage::Shares(m) => m.sender,
            SecAggMessage::Masked(m) => m.sender,
            SecAggMessage::Consistency(m) => m.sender,
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

/// A node's answer to [`Instruction::CollectHistograms`](crate::Instruction::CollectHistograms).
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

/// A node's answer to [`Instruction::Newton`](crate::Instruction::Newton).
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

/// A node's answer to [`Instruction::Normal`](crate::Instruction::Normal).
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

pub use medfed_model::EvaluationCounts;

/// A node's answer to [`Instruction::Evaluate`](crate::Instruction::Evaluate).
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

/// Everything a member sends after joining: one signed submission, of one
/// kind, answering one step. Every value that leaves a node is one of
/// these, so a single path on the node (sign, log, submit) and a single
/// entry on the coordinator see all of them.
#[derive(Clone, Debug, PartialEq)]
pub enum Submission {
    /// Per-column summaries.
    Statistics(StatisticsReport),
    /// Per-column histograms.
    Histograms(HistogramReport),
    /// A training round's update (never under secure aggregation).
    Update(ModelUpdate),
    /// A Newton round's terms.
    Newton(NewtonReport),
    /// The normal-equation terms.
    Normal(NormalReport),
    /// A site-alone model.
    Baseline(BaselineModel),
    /// Evaluation counts.
    Evaluation(EvaluationReport),
    /// One secure-aggregation stage.
    SecAgg(SecAggSubmission),
    /// The member declines a DP task or round and leaves.
    BudgetRefusal(BudgetRefusal),
    /// The member refuses a task or step under its own policy (or for a
    /// data reason) and leaves.
    Refusal(Refusal),
}

impl Submission {
    /// The exchange-log kind of this submission (see [`kinds`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Submission::Statistics(_) => kinds::STATISTICS,
            Submission::Histograms(_) => kinds::HISTOGRAMS,
            Submission::Update(_) => kinds::UPDATE,
            Submission::Newton(_) => kinds::NEWTON_TERMS,
            Submission::Normal(_) => kinds::NORMAL_TERMS,
            Submission::Baseline(_) => kinds::BASELINE,
            Submission::Evaluation(_) => kinds::EVALUATION,
            Submission::SecAgg(_) => kinds::SECAGG,
            Submission::BudgetRefusal(_) => kinds::BUDGET_REFUSAL,
            Submission::Refusal(_) => kinds::REFUSAL,
        }
    }

    /// The step it answers (0 for a refusal before training).
    pub fn step(&self) -> u64 {
        match self {
            Submission::Statistics(r) => r.step,
            Submission::Histograms(r) => r.step,
            Submission::Update(u) => u.step,
            Submission::Newton(r) => r.step,
            Submission::Normal(r) => r.step,
            Submission::Baseline(m) => m.step,
            Submission::Evaluation(r) => r.step,
            Submission::SecAgg(s) => s.step,
            Submission::BudgetRefusal(r) => r.step,
            Submission::Refusal(r) => r.step,
        }
    }

    /// The training round it belongs to, as logged (0 outside rounds; the
    /// normal equations are round 1).
    pub fn round(&self) -> u32 {
        match self {
            Submission::Update(u) => u.round,
            Submission::Newton(r) => r.round,
            Submission::Normal(_) => 1,
            Submission::SecAgg(s) => s.round,
            Submission::BudgetRefusal(r) => r.round,
            Submission::Statistics(_)
            | Submission::Refusal(_)
            | Submission::Histograms(_)
            | Submission::Baseline(_)
            | Submission::Evaluation(_) => 0,
        }
    }
}
