//! Held-out scores: the metrics of one model on some rows, from the
//! aggregate counts the nodes return, and one model's scores overall and
//! per site.

use std::collections::BTreeMap;

use medfed_model::ModelKind;
use medfed_wire::EvaluationCounts;
use serde::Serialize;

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
pub(super) fn merge<'a>(
    mut counts: impl Iterator<Item = &'a EvaluationCounts>,
) -> Option<EvaluationCounts> {
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
