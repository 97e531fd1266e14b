//! What a run leaves behind: the model file, the run summary (both JSON), and
//! the final table printed for the operator. Every figure comes from the
//! aggregate counts the nodes returned; no per-row value exists here.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use medfed_model::ModelKind;
use medfed_wire::{EvaluationCounts, Task};
use serde::Serialize;

use crate::outcome::Outcome;
use crate::step::RoundRecord;

/// Metrics of one model on some held-out rows: the row count and every
/// metric the counts' kind names that is defined, in the kind's order (in
/// `summary.json`: `rows` then each metric by its key, e.g. `auc` or `r2`).
/// Nothing here names a model kind: a new family brings its own metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics {
    /// Held-out rows scored.
    pub rows: u64,
    /// Each defined metric by key, in the order of the kind's metrics.
    pub values: Vec<(String, f64)>,
}

impl Metrics {
    /// Metrics from aggregate counts: every metric the counts' kind names.
    pub fn from_counts(counts: &EvaluationCounts) -> Metrics {
        Metrics {
            rows: counts.rows(),
            values: counts
                .metrics()
                .into_iter()
                .filter_map(|(key, value)| value.map(|v| (key.to_owned(), v)))
                .collect(),
        }
    }

    /// The metric named `key` (as in `summary.json`); `None` if it is
    /// unknown or undefined.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// The headline figure of a `kind` model: AUC for logistic models, R²
    /// for linear ones, the mean deviance for Poisson ones.
    pub fn headline(&self, kind: ModelKind) -> Option<f64> {
        self.get(kind.summary_metrics()[0].key)
    }
}

impl Serialize for Metrics {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1 + self.values.len()))?;
        map.serialize_entry("rows", &self.rows)?;
        for (key, value) in &self.values {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Metrics {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        struct Raw {
            rows: u64,
            #[serde(flatten)]
            values: BTreeMap<String, f64>,
        }
        let Raw { rows, values } = Raw::deserialize(deserializer)?;
        Ok(Metrics {
            rows,
            values: values.into_iter().collect(),
        })
    }
}

/// Merges counts of the same model from several sites.
fn merge<'a>(mut counts: impl Iterator<Item = &'a EvaluationCounts>) -> Option<EvaluationCounts> {
    let mut total = counts.next()?.clone();
    for c in counts {
        total.merge(c).ok()?;
    }
    Some(total)
}

/// One model scored overall and per site.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ModelScores {
    /// Over all sites' held-out rows together.
    pub overall: Metrics,
    /// On each site's held-out rows.
    pub per_site: BTreeMap<String, Metrics>,
}

impl ModelScores {
    /// Scores from each site's counts of one model.
    pub fn from_sites(counts: &BTreeMap<String, EvaluationCounts>) -> ModelScores {
        ModelScores {
            overall: merge(counts.values())
                .map(|c| Metrics::from_counts(&c))
                .unwrap_or_default(),
            per_site: counts
                .iter()
                .map(|(site, c)| (site.clone(), Metrics::from_counts(c)))
                .collect(),
        }
    }
}

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

/// The privacy protections a run had.
#[derive(Clone, Debug, Serialize)]
pub struct PrivacySummary {
    /// Secure aggregation: the coordinator saw only the sum of the
    /// surviving members' masked inputs.
    pub secure_aggregation: bool,
    /// Shares that rebuild a secret, and the fewest members every stage
    /// needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u32>,
    /// Fractional bits of the fixed-point encoding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_point_bits: Option<u32>,
    /// Largest encoding error of one summed value: n x 2^-(bits+1) for n
    /// members (divided by the round's rows, or contributors under DP, in
    /// the mean update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum_error_bound: Option<f64>,
    /// What the per-round held-out scores cover under secure aggregation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub round_held_out: Option<&'static str>,
    /// What travels masked under secure aggregation, and what the
    /// coordinator learns instead of each member's figures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub masked: Option<&'static str>,
    /// DP-FedAvg on the training rounds (absent: off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub differential_privacy: Option<DpSummary>,
}

/// DP-FedAvg as a run applied it, and what each site reported spending.
#[derive(Clone, Debug, Serialize)]
pub struct DpSummary {
    /// `local` (each site adds its share of the noise under secure
    /// aggregation) or `central` (the coordinator adds it to the sum).
    pub placement: String,
    /// Whether the guarantee needs the coordinator to be trusted (central
    /// noise: it sees the sum, and each clipped update, before noising).
    pub coordinator_trusted: bool,
    /// The noise multiplier σ.
    pub noise_multiplier: f64,
    /// The clip norm C.
    pub clip_norm: f64,
    /// The standard deviation each site added per coordinate (local), or
    /// the coordinator added to the sum (central).
    pub noise_std: f64,
    /// The privacy model in a paragraph.
    pub description: String,
    /// Members are weighted equally, and no row counts or training loss
    /// are released in DP rounds.
    pub weighting: &'static str,
    /// Each site's spend as it reported it with its last update.
    pub sites: Vec<SiteSpend>,
}

/// One site's reported spend.
#[derive(Clone, Debug, Serialize)]
pub struct SiteSpend {
    /// The site.
    pub site: String,
    /// Rounds its accountant has charged (over every task on its vault).
    pub rounds: u64,
    /// ε it reports, by its Rényi-DP accountant.
    pub epsilon: f64,
    /// The δ it holds at.
    pub delta: f64,
    /// Its ε budget.
    pub budget_epsilon: f64,
    /// For comparison: the exact ε of the same rounds at the task's σ
    /// (Balle & Wang 2018), assuming every round was at that σ.
    pub analytic_epsilon: Option<f64>,
}

/// The summary of `task`'s privacy, with the spends the sites reported.
fn privacy_summary(
    task: &medfed_wire::Task,
    spent: &std::collections::BTreeMap<String, medfed_wire::PrivacySpend>,
) -> Option<PrivacySummary> {
    let secure = task.secure_aggregation;
    let dp = task.dp_config();
    if secure.is_none() && dp.is_none() {
        return None;
    }
    let differential_privacy = dp.map(|dp| {
        let central = dp.placement() == medfed_secure::dp::NoisePlacement::Central;
        let sites = spent
            .iter()
            .map(|(site, s)| SiteSpend {
                site: site.clone(),
                rounds: s.rounds,
                epsilon: s.epsilon,
                delta: s.delta,
                budget_epsilon: s.budget_epsilon,
                analytic_epsilon: medfed_secure::dp::analytic_gaussian_epsilon(
                    s.noise_multiplier / (s.rounds as f64).sqrt(),
                    s.delta,
                )
                .ok(),
            })
            .collect();
        DpSummary {
            placement: if central { "central" } else { "local" }.to_owned(),
            coordinator_trusted: central,
            noise_multiplier: dp.noise_multiplier(),
            clip_norm: dp.clip_norm(),
            noise_std: dp
                .site_noise_std()
                .or(dp.central_noise_std())
                .unwrap_or(f64::NAN),
            description: dp.describe(),
            weighting: "every contributing site weighs the same (sum of clipped updates / \
                        number of contributors); row counts and the training loss are not \
                        released in DP rounds",
            sites,
        }
    });
    Some(PrivacySummary {
        secure_aggregation: secure.is_some(),
        threshold: secure.map(|s| s.threshold),
        fixed_point_bits: secure.map(|s| s.fixed_point_bits),
        sum_error_bound: secure.map(|s| {
            medfed_secure::secagg::FixedPoint::new(s.fixed_point_bits)
                .map_or(f64::NAN, |f| f.sum_error_bound(task.members.len() as u32))
        }),
        round_held_out: secure.map(|_| {
            "overall only: each round's held-out counts are summed masked, so no site's own \
             per-round scores are seen"
        }),
        masked: secure.map(|_| {
            "everything the members send is summed masked: the preprocessing statistics (row \
             and category counts, coarse ranges as counts of sites per 1-2-5 grid value, \
             range-scaled sums and median histograms), every training round's update or terms \
             with its held-out counts, and the final evaluation; per-site rows, notes and \
             scores are not seen, only totals"
        }),
        differential_privacy,
    })
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

/// Writes `value` as pretty JSON to `path` atomically (temp file, fsync,
/// rename), so a reader never sees half a file.
///
/// # Errors
/// Any I/O error, with the path.
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    use anyhow::Context;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot create a file in {}", dir.display()))?;
    // Buffered: serde writes token by token, which unbuffered is one
    // system call each (thousands for a checkpoint).
    let mut buffered = std::io::BufWriter::new(&mut tmp);
    serde_json::to_writer_pretty(&mut buffered, value)?;
    buffered.write_all(b"\n")?;
    buffered.flush()?;
    drop(buffered);
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn fmt(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.4}"))
}

/// The final table for the operator.
pub fn render_table(summary: &Summary) -> String {
    // The model's kind says which three metrics to show, headline first.
    let columns = summary.model.summary_metrics();
    let [h1, h2, h3] = columns.map(|c| c.label);
    let pick = |m: &Metrics| columns.map(|c| m.get(c.key));
    let mut out = String::new();
    let rows = summary.federated.overall.rows;
    out.push_str(&format!(
        "\nAll sites' held-out rows together ({rows} rows):\n  {:<28} {h1:>9} {h2:>9} {h3:>9}\n",
        "model"
    ));
    let mut line = |name: &str, m: &Metrics| {
        let [a, b, c] = pick(m);
        out.push_str(&format!(
            "  {name:<28} {:>9} {:>9} {:>9}\n",
            fmt(a),
            fmt(b),
            fmt(c)
        ));
    };
    line("federated", &summary.federated.overall);
    for b in &summary.baselines {
        line(&format!("{} alone", b.site), &b.scores.overall);
    }
    if let Some(mean) = summary.mean_single_site_headline {
        out.push_str(&format!(
            "  {:<28} {:>9}\n",
            format!("mean of site-alone {h1}"),
            fmt(Some(mean))
        ));
    }
    if summary.federated.per_site.is_empty() {
        out.push_str(
            "\nEach site's own held-out rows: not known (secure aggregation: the coordinator \
             sees only the sum over the sites).\n",
        );
    } else {
        out.push_str(&format!(
            "\nEach site's own held-out rows ({h1}):\n  {:<16} {:>6} {:>10} {:>12}\n",
            "site", "rows", "federated", "site alone"
        ));
    }
    for (site, m) in &summary.federated.per_site {
        let alone = summary
            .baselines
            .iter()
            .find(|b| &b.site == site)
            .and_then(|b| b.scores.per_site.get(site))
            .and_then(|m| m.headline(summary.model));
        out.push_str(&format!(
            "  {site:<16} {:>6} {:>10} {:>12}\n",
            m.rows,
            fmt(m.headline(summary.model)),
            fmt(alone)
        ));
    }
    if let Some(bins) = &summary.calibration {
        out.push_str(&format!(
            "\nCalibration of the federated model (all held-out rows; expected calibration \
             error {}):\n  {:<14} {:>6} {:>15} {:>14}\n",
            fmt(summary.expected_calibration_error),
            "predicted",
            "rows",
            "mean predicted",
            "observed rate"
        ));
        for bin in bins {
            out.push_str(&format!(
                "  {:<14} {:>6} {:>15.3} {:>14.3}\n",
                format!("{:.1}-{:.1}", bin.lower, bin.upper),
                bin.count,
                bin.mean_predicted,
                bin.observed_rate
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use medfed_model::{BinaryCounts, CountCounts, RegressionCounts};
    use ndarray::aview1;

    use super::*;

    #[test]
    fn metrics_keep_every_defined_value_of_the_kind_in_order() {
        let binary =
            BinaryCounts::from_scores(aview1(&[0.2, 0.7, 0.6]), aview1(&[0.0, 1.0, 0.0]), 10)
                .unwrap();
        let regression =
            RegressionCounts::from_predictions(aview1(&[1.0, 2.5, 2.0]), aview1(&[1.5, 2.0, 3.0]))
                .unwrap();
        let count =
            CountCounts::from_predictions(aview1(&[1.0, 2.5, 2.0]), aview1(&[1.0, 2.0, 3.0]))
                .unwrap();
        for counts in [
            EvaluationCounts::from(binary),
            regression.into(),
            count.into(),
        ] {
            let metrics = Metrics::from_counts(&counts);
            assert_eq!(metrics.rows, 3);
            for (key, value) in counts.metrics() {
                assert!(value.is_some(), "{key}");
                assert_eq!(metrics.get(key), value, "{key}");
            }
            let json = serde_json::to_string(&metrics).unwrap();
            assert!(json.starts_with(r#"{"rows":3,"#), "{json}");
            let back: Metrics = serde_json::from_str(&json).unwrap();
            // serde_json parses to within an ulp (no float_roundtrip).
            for (key, value) in &metrics.values {
                let read = back.get(key).unwrap_or(f64::NAN);
                assert!((read - value).abs() <= 1e-15 * value.abs(), "{key}");
            }
        }
        let auc = Metrics::from_counts(&EvaluationCounts::from(
            BinaryCounts::from_scores(aview1(&[0.2, 0.7]), aview1(&[0.0, 1.0]), 10).unwrap(),
        ));
        assert_eq!(auc.headline(ModelKind::Logistic), auc.get("auc"));
        assert_eq!(auc.headline(ModelKind::Linear), None);
    }
}
