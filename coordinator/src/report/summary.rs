//! The run summary and the model file of a finished run (both written as
//! JSON), and their building from the run's outcome.

use std::collections::BTreeMap;

use medfed_model::ModelKind;
use medfed_wire::Task;
use serde::Serialize;

use super::metrics::merge;
use super::privacy::{PrivacySummary, privacy_summary};
use super::{Metrics, ModelScores};
use crate::outcome::Outcome;
use crate::step::RoundRecord;

fn scores(outcome: &Outcome, model: usize) -> ModelScores {
    if let Some(pooled) = &outcome.pooled_evaluation {
        // Under secure aggregation only the sum over the sites is known.
        return ModelScores {
            overall: if model == 0 {
                Metrics::from_counts(pooled)
            } else {
                Metrics::default()
            },
            per_site: BTreeMap::new(),
        };
    }
    let overall = merge(
        outcome
            .evaluations
            .iter()
            .filter_map(|(_, models)| models.get(model)),
    )
    .map(|c| Metrics::from_counts(&c))
    .unwrap_or_default();
    let per_site = outcome
        .evaluations
        .iter()
        .filter_map(|(site, models)| {
            models
                .get(model)
                .map(|c| (site.clone(), Metrics::from_counts(c)))
        })
        .collect();
    ModelScores { overall, per_site }
}

/// A site-alone model and its scores.
#[derive(Clone, Debug, Serialize)]
pub struct BaselineScores {
    /// The site that trained it.
    pub site: String,
    /// Its scores.
    #[serde(flatten)]
    pub scores: ModelScores,
}

/// The machine-readable run summary.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    /// Task id.
    pub task_id: String,
    /// Model kind.
    pub model: ModelKind,
    /// Fitting algorithm (newton, closed-form, fedavg, fedprox).
    pub algorithm: String,
    /// Aggregation strategy of update-based algorithms.
    pub strategy: String,
    /// Why training stopped.
    pub stop_reason: String,
    /// Members, in task order.
    pub members: Vec<String>,
    /// Members that refused the task or a step under their own policy and
    /// left, by step then site (empty when none did).
    pub refusals: Vec<SiteRefusal>,
    /// Training rows per member (empty under secure aggregation, where the
    /// coordinator sees only their total).
    pub train_rows: BTreeMap<String, u64>,
    /// Training rows over all members.
    pub total_train_rows: u64,
    /// Preprocessing notes (all-missing or constant features).
    pub notes: Vec<String>,
    /// Per-round records.
    pub rounds: Vec<RoundRecord>,
    /// Median round time, ms.
    pub median_round_ms: f64,
    /// The federated model's scores.
    pub federated: ModelScores,
    /// Site-alone models' scores (when the task asked for them).
    pub baselines: Vec<BaselineScores>,
    /// Mean over sites of the site-alone models' headline figure (AUC or R²)
    /// on all held-out rows together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean_single_site_headline: Option<f64>,
    /// TLS handshakes refused (bad CA, no certificate, wrong version).
    pub refused_handshakes: u64,
    /// Calls refused because the certificate is not on the member list.
    pub refused_calls: u64,
    /// Wall time from start to the end of evaluation, seconds.
    pub wall_seconds: f64,
    /// The exchange log of this run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange_log: Option<ExchangeLogSummary>,
    /// Logistic tasks: the federated model's mean predicted probability
    /// against the observed rate, per decile of prediction, over all
    /// held-out rows (from per-site counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Vec<medfed_model::counts::CalibrationBin>>,
    /// Expected calibration error: the row-weighted mean gap between
    /// predicted and observed per decile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_calibration_error: Option<f64>,
    /// Charts written beside the summary (training curves; ROC and
    /// calibration for logistic models), as SVG and PNG file names.
    pub charts: Vec<String>,
    /// The privacy in force beyond TLS (absent: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacySummary>,
}

/// A member's refusal, as the summary states it: no record value, only
/// the rule and the member's reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteRefusal {
    /// The member that refused.
    pub site: String,
    /// The step it refused (0: the task itself, before any step).
    pub step: u64,
    /// The rule that refused it (`min_rows`, `columns`, ...).
    pub rule: String,
    /// Why, in the member's words.
    pub reason: String,
}

/// The refusals of `outcome`, by step then site.
fn refusals(outcome: &Outcome) -> Vec<SiteRefusal> {
    let mut refusals: Vec<SiteRefusal> = outcome
        .refusals
        .iter()
        .map(|(site, refusal)| SiteRefusal {
            site: site.clone(),
            step: refusal.step,
            rule: refusal.rule.clone(),
            reason: refusal.reason.clone(),
        })
        .collect();
    refusals.sort_by(|a, b| (a.step, &a.site).cmp(&(b.step, &b.site)));
    refusals
}

/// Where the run's exchange log is and how it ended.
#[derive(Clone, Debug, Serialize)]
pub struct ExchangeLogSummary {
    /// The log file.
    pub path: String,
    /// Entries this run appended.
    pub entries_written: u64,
    /// Hash of the last entry: with it, an auditor can tell that no entry
    /// was cut from the end of the log.
    pub last_hash: String,
}

/// The published model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelFile {
    /// Format tag.
    pub format: &'static str,
    /// Task id.
    pub task_id: String,
    /// Model kind.
    pub model: ModelKind,
    /// Target column.
    pub target: String,
    /// Raw feature columns, as read from a site's records.
    pub features: Vec<String>,
    /// The preprocessing applied before the model, fitted from all sites'
    /// aggregates: per column, unknown-value codes (treated as missing), the
    /// fill for a missing value, then (x - center) / scale, or one-hot
    /// dummies, and an optional missing indicator.
    pub preprocessing: medfed_model::FittedPreprocessor,
    /// The columns of the preprocessed design, one per coefficient.
    pub design_columns: Vec<String>,
    /// Intercept on the preprocessed scale.
    pub intercept: f64,
    /// One weight per design column, on the preprocessed scale.
    pub coefficients: Vec<f64>,
    /// Fitting algorithm.
    pub algorithm: String,
    /// Why training stopped.
    pub stop_reason: String,
    /// Per-round training loss.
    pub rounds: Vec<RoundRecord>,
    /// Held-out metrics of this model.
    pub metrics: ModelScores,
}

/// Builds the summary and model file of a finished run.
pub fn build(
    task: &Task,
    strategy: &str,
    outcome: &Outcome,
    refused_handshakes: u64,
    refused_calls: u64,
    wall_seconds: f64,
) -> (Summary, ModelFile) {
    let federated = scores(outcome, 0);
    let baselines: Vec<BaselineScores> = outcome
        .baselines
        .iter()
        .enumerate()
        .map(|(i, (site, _))| BaselineScores {
            site: site.clone(),
            scores: scores(outcome, i + 1),
        })
        .collect();
    let headlines: Vec<f64> = baselines
        .iter()
        .filter_map(|b| b.scores.overall.headline(task.model))
        .collect();
    let mean_single_site_headline =
        (!headlines.is_empty()).then(|| headlines.iter().sum::<f64>() / headlines.len() as f64);
    let mut times: Vec<f64> = outcome.rounds.iter().map(|r| r.millis).collect();
    times.sort_by(f64::total_cmp);
    let median_round_ms = times.get(times.len() / 2).copied().unwrap_or(0.0);
    let summary = Summary {
        task_id: task.task_id.clone(),
        model: task.model,
        algorithm: outcome.algorithm.clone(),
        strategy: strategy.to_owned(),
        stop_reason: outcome.stop_reason.clone(),
        members: task.members.clone(),
        refusals: refusals(outcome),
        train_rows: outcome.train_rows.iter().cloned().collect(),
        total_train_rows: outcome.total_train_rows,
        notes: outcome.notes.clone(),
        rounds: outcome.rounds.clone(),
        median_round_ms,
        federated: federated.clone(),
        baselines,
        mean_single_site_headline,
        refused_handshakes,
        refused_calls,
        wall_seconds,
        exchange_log: None,
        calibration: outcome.calibration.as_ref().map(|c| c.summary()),
        expected_calibration_error: outcome
            .calibration
            .as_ref()
            .and_then(|c| c.expected_calibration_error()),
        charts: Vec::new(),
        privacy: privacy_summary(task, &outcome.privacy_spent),
    };
    let model = ModelFile {
        format: "medfed-model/1",
        task_id: task.task_id.clone(),
        model: task.model,
        target: task.target.clone(),
        features: task.features.clone(),
        preprocessing: outcome.preprocessing.clone(),
        design_columns: outcome.preprocessing.output_names(),
        intercept: outcome.global[0],
        coefficients: outcome.global.iter().skip(1).copied().collect(),
        algorithm: outcome.algorithm.clone(),
        stop_reason: outcome.stop_reason.clone(),
        rounds: outcome.rounds.clone(),
        metrics: federated,
    };
    (summary, model)
}
