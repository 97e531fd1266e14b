//! What a finished run hands to the report and the charts.

use medfed_model::{CalibrationCounts, FittedPreprocessor};
use medfed_wire::EvaluationCounts;
use ndarray::Array1;

use crate::step::RoundRecord;

/// Everything a finished run produced.
pub struct Outcome {
    /// The global preprocessing every site applied.
    pub preprocessing: FittedPreprocessor,
    /// Features that were all missing or constant, by name.
    pub notes: Vec<String>,
    /// Final global parameters.
    pub global: Array1<f64>,
    /// Per-round records.
    pub rounds: Vec<RoundRecord>,
    /// Site-alone models, by member, in member order.
    pub baselines: Vec<(String, Array1<f64>)>,
    /// Evaluation counts: `evaluations[site][model]`, sites in member order;
    /// model 0 is the federated model, then the baselines.
    pub evaluations: Vec<(String, Vec<EvaluationCounts>)>,
    /// Training rows per member (empty under secure aggregation).
    pub train_rows: Vec<(String, u64)>,
    /// Training rows over all members.
    pub total_train_rows: u64,
    /// Evaluation counts of the federated model over all held-out rows,
    /// under secure aggregation (where `evaluations` is empty: no
    /// member's own counts are seen).
    pub pooled_evaluation: Option<EvaluationCounts>,
    /// DP tasks: the last spend each member reported, by member.
    pub privacy_spent: std::collections::BTreeMap<String, medfed_wire::PrivacySpend>,
    /// Members that refused the task or a step under their own policy and
    /// left, by member.
    pub refusals: std::collections::BTreeMap<String, medfed_wire::Refusal>,
    /// The algorithm that fitted the model.
    pub algorithm: String,
    /// Why training stopped.
    pub stop_reason: String,
    /// Calibration counts of the federated model over all held-out rows
    /// (logistic tasks).
    pub calibration: Option<CalibrationCounts>,
}
