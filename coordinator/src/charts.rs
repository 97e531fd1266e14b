//! The charts of a finished run: training curves for every model, and for
//! logistic models a ROC curve and a calibration plot, each as SVG and PNG
//! beside `summary.json` (which lists them).
//!
//! A chart that cannot be drawn is logged and left out: the model and the
//! summary matter more than a picture of them.

use std::path::Path;

use medfed_model::counts::BinaryCounts;
use medfed_plot::{
    CalibrationPlot, HeldOutMetric, PlotError, RocCurve, RocPlot, RoundPoint, TrainingCurves,
};
use medfed_wire::EvaluationCounts;

use crate::outcome::Outcome;
use crate::report::{Metrics, Summary};

/// Writes every chart of the run into `dir` and returns the file names
/// written (relative to `dir`), in a stable order.
pub fn write_all(dir: &Path, summary: &Summary, outcome: &Outcome) -> Vec<String> {
    let mut written = Vec::new();
    let mut keep = |what: &str, result: Result<Vec<std::path::PathBuf>, PlotError>| match result {
        Ok(paths) => written.extend(
            paths
                .iter()
                .filter_map(|p| p.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        ),
        Err(error) => tracing::warn!(%error, chart = what, "cannot draw a chart; left out"),
    };
    match training_curves(summary) {
        Some(curves) => keep(
            "training curves",
            medfed_plot::write_training_curves(dir, "training", &curves),
        ),
        None => tracing::warn!(
            chart = "training curves",
            "the plot has no axis for this model's headline metric; left out"
        ),
    }
    if summary.model.predicts_probabilities() {
        keep(
            "ROC",
            medfed_plot::write_roc(dir, "roc", &roc(summary, outcome)),
        );
        if let Some(bins) = &summary.calibration {
            let plot = CalibrationPlot {
                title: format!("{}: calibration on held-out rows", summary.task_id),
                label: "federated model".into(),
                bins: bins.clone(),
                expected_calibration_error: summary.expected_calibration_error,
            };
            keep(
                "calibration",
                medfed_plot::write_calibration(dir, "calibration", &plot),
            );
        }
    }
    written
}

/// Loss and the held-out headline metric per round, overall and per site;
/// `None` if the plot cannot draw the model's headline metric.
fn training_curves(summary: &Summary) -> Option<TrainingCurves> {
    // The curve follows the kind's headline metric.
    let key = summary.model.summary_metrics()[0].key;
    let metric = held_out_metric(key)?;
    let pick = |m: &Metrics| m.get(key);
    Some(TrainingCurves {
        title: format!("{}: training ({})", summary.task_id, summary.algorithm),
        metric,
        rounds: summary
            .rounds
            .iter()
            .map(|record| RoundPoint {
                round: record.round,
                train_loss: Some(record.train_loss),
                overall: record.held_out.as_ref().and_then(|h| pick(&h.overall)),
                per_site: record
                    .held_out
                    .as_ref()
                    .map(|h| {
                        h.per_site
                            .iter()
                            .map(|(site, m)| (site.clone(), pick(m)))
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect(),
    })
}

/// The plot's metric for the headline metric named `key`, if it has one.
fn held_out_metric(key: &str) -> Option<HeldOutMetric> {
    match key {
        "auc" => Some(HeldOutMetric::Auc),
        "r2" => Some(HeldOutMetric::R2),
        "rmse" => Some(HeldOutMetric::Rmse),
        _ => None,
    }
}

/// The federated model's ROC curve over all held-out rows and per site.
fn roc(summary: &Summary, outcome: &Outcome) -> RocPlot {
    let sites: Vec<(&str, &BinaryCounts)> = outcome
        .evaluations
        .iter()
        .filter_map(|(site, models)| {
            let counts = models.first()?.as_binary()?;
            Some((site.as_str(), counts))
        })
        .collect();
    let mut all: Option<BinaryCounts> = outcome
        .pooled_evaluation
        .as_ref()
        .and_then(EvaluationCounts::as_binary)
        .cloned();
    for (_, counts) in &sites {
        match &mut all {
            Some(total) => {
                // Every site scores into the same bins; a mismatch would be
                // refused at the wire, so this cannot fail in practice, and
                // then the overall curve is simply left out.
                if total.merge(counts).is_err() {
                    all = None;
                    break;
                }
            }
            None => all = Some((*counts).clone()),
        }
    }
    RocPlot {
        title: format!("{}: ROC on held-out rows", summary.task_id),
        overall: all
            .as_ref()
            .and_then(|c| RocCurve::from_counts("all sites", c)),
        per_site: sites
            .iter()
            .map(|(site, counts)| {
                RocCurve::from_counts(*site, counts).unwrap_or_else(|| RocCurve {
                    label: format!("{site} (one class only: no curve)"),
                    points: Vec::new(),
                    auc: None,
                })
            })
            .collect(),
    }
}
