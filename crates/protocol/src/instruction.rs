//! What the coordinator asks of the nodes: numbered steps.

use std::collections::BTreeMap;

use medfed_model::FittedPreprocessor;
use medfed_model::preprocess::HistogramPlan;
use medfed_secure::secagg::{ConsistencyRequest, KeyList, RoutedShares, UnmaskRequest};
use ndarray::Array1;

use crate::kinds;
use crate::task::RosterMember;

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
            Instruction::CollectStatistics => kinds::COLLECT_STATISTICS,
            Instruction::CollectHistograms { .. } => kinds::COLLECT_HISTOGRAMS,
            Instruction::Train { .. } => kinds::TRAIN,
            Instruction::Newton { .. } => kinds::NEWTON_ROUND,
            Instruction::Normal { .. } => kinds::NORMAL_EQUATIONS,
            Instruction::Baseline { .. } => kinds::TRAIN_BASELINE,
            Instruction::Evaluate { .. } => kinds::EVALUATE,
            Instruction::Finished { .. } => kinds::FINISHED,
            Instruction::Wait => kinds::WAIT,
            Instruction::SecAggKeys { .. } => kinds::SECAGG_KEYS_REQUEST,
            Instruction::SecAggShares { .. } => kinds::SECAGG_KEY_LIST,
            Instruction::SecAggMask { .. } => kinds::SECAGG_ROUTED_SHARES,
            Instruction::SecAggCheck { .. } => kinds::SECAGG_CONSISTENCY_REQUEST,
            Instruction::SecAggUnmask { .. } => kinds::SECAGG_UNMASK_REQUEST,
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
            | Instruction::SecAggCheck { round, .. }
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
        /// the vector masked at stage 2 (see `medfed_wire::secagg::MaskedKind`).
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
    /// Stage 3: the survivors (members whose masked input is in the sum);
    /// check the set and sign it.
    SecAggCheck {
        /// 1-based round number.
        round: u32,
        /// The survivor set to sign.
        request: ConsistencyRequest,
    },
    /// Stage 4: the survivors again, with their signatures on the set;
    /// reveal the shares that remove the masks.
    SecAggUnmask {
        /// 1-based round number.
        round: u32,
        /// The survivor set and the signatures on it.
        request: UnmaskRequest,
    },
}
