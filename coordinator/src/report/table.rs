//! The final table printed for the operator: the federated and site-alone
//! models on all held-out rows, on each site's rows, and calibration.

use super::{Metrics, Summary};

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
