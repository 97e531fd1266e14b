//! What every kind of evaluation counts can do ([`EvaluationKind`]), and
//! the counts of one model of a registered kind ([`EvaluationCounts`]),
//! whose methods delegate to the kind so that callers never match on it.

use std::fmt;

use ndarray::ArrayView1;

use crate::check;
use crate::counts::{BinaryCounts, CountCounts, RegressionCounts};
use crate::error::ModelError;
use crate::family::{Family, with_family};
use crate::kind::ModelKind;

/// A metric's key (as in the coordinator's `summary.json`, e.g. `"auc"`)
/// and its label in the operator's table (e.g. `"AUC"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricName {
    /// Machine-readable key.
    pub key: &'static str,
    /// Label for people.
    pub label: &'static str,
}

/// A metric's key and its value; `None` where the metric is undefined
/// (no rows, one class only, constant targets, …).
pub type Metric = (&'static str, Option<f64>);

/// Additive counts summarising a model's predictions on held-out rows: the
/// same operations for every kind, so that sites, the wire and the
/// coordinator handle them along one path.
///
/// The flat layout ([`EvaluationKind::write_flat`]) is a fixed-length
/// vector of `f64` whose element-wise sum over sites is the layout of the
/// merged counts; secure aggregation sums it without seeing any one site's
/// counts. Whole-number counts travel as exact `f64` integers.
pub trait EvaluationKind: Clone + fmt::Debug + PartialEq + Send + Sync + 'static {
    /// Name of the kind, e.g. `"binary"`, for messages.
    const KIND: &'static str;

    /// Counts of no rows. `score_bins` is the histogram resolution of kinds
    /// that bin scores; others ignore it.
    ///
    /// # Errors
    /// [`ModelError::InvalidBins`] for a kind that bins scores and an
    /// unsupported `score_bins`.
    fn empty(score_bins: usize) -> Result<Self, ModelError>;

    /// Counts of `predictions` (the inverse link of the linear predictor)
    /// against `labels`.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] for different lengths, and the kind's own
    /// errors for predictions or labels out of range.
    fn from_predictions(
        predictions: ArrayView1<'_, f64>,
        labels: ArrayView1<'_, f64>,
        score_bins: usize,
    ) -> Result<Self, ModelError>;

    /// Adds `other`'s rows to these. On error nothing is changed.
    ///
    /// # Errors
    /// Counts of another shape (histogram size), or a count overflowing.
    fn merge_counts(&mut self, other: &Self) -> Result<(), ModelError>;

    /// Checks that counts received from elsewhere could have come from real
    /// rows.
    ///
    /// # Errors
    /// The first rule broken.
    fn validate(&self) -> Result<(), ModelError>;

    /// Number of rows counted.
    fn rows(&self) -> u64;

    /// Length of the flat layout for `score_bins`.
    fn flat_len(score_bins: usize) -> usize;

    /// Appends the flat layout (exactly [`EvaluationKind::flat_len`]
    /// values) to `out`.
    fn write_flat(&self, out: &mut Vec<f64>);

    /// Reads counts back from their flat layout (or a sum of several),
    /// checking the length, that every value is finite, that counts are
    /// whole numbers, and [`EvaluationKind::validate`].
    ///
    /// # Errors
    /// [`ModelError::Dimension`], [`ModelError::InvalidValues`] or
    /// [`ModelError::InvalidAggregate`] for the first problem, or the
    /// kind's own check.
    fn read_flat(values: &[f64], score_bins: usize) -> Result<Self, ModelError>;

    /// Every metric of the counts, by key.
    fn metrics(&self) -> Vec<Metric>;

    /// The three metrics the operator's summary table shows, headline
    /// first.
    fn summary_metrics() -> [MetricName; 3];

    /// The headline metric and its value.
    fn headline(&self) -> (MetricName, Option<f64>) {
        let name = Self::summary_metrics()[0];
        let value = self
            .metrics()
            .into_iter()
            .find(|(key, _)| *key == name.key)
            .and_then(|(_, v)| v);
        (name, value)
    }
}

/// Checks a flat layout's length and finiteness.
pub(crate) fn check_flat(values: &[f64], expected: usize) -> Result<(), ModelError> {
    check::length("flat evaluation counts", expected, values.len())?;
    check::finite("flat evaluation counts", values)
}

/// A count read from a flat layout: a whole number `>= 0` below
/// `u64::MAX`.
pub(crate) fn whole(value: f64, what: &'static str) -> Result<u64, ModelError> {
    if value >= 0.0 && value < u64::MAX as f64 && value.fract() == 0.0 {
        // In range and whole, so the conversion is exact.
        Ok(value as u64)
    } else {
        Err(ModelError::InvalidAggregate {
            what,
            allowed: "a whole number >= 0",
        })
    }
}

/// Aggregate evaluation counts of one model on some held-out rows, of the
/// kind its [`ModelKind`] reports.
#[derive(Clone, Debug, PartialEq)]
pub enum EvaluationCounts {
    /// Logistic models.
    Binary(BinaryCounts),
    /// Linear models.
    Regression(RegressionCounts),
    /// Poisson models.
    Count(CountCounts),
}

/// Runs `$body` with `$c` bound to the counts inside `$counts`.
macro_rules! each_kind {
    ($counts:expr, |$c:ident| $body:expr) => {
        match $counts {
            EvaluationCounts::Binary($c) => $body,
            EvaluationCounts::Regression($c) => $body,
            EvaluationCounts::Count($c) => $body,
        }
    };
}

impl From<BinaryCounts> for EvaluationCounts {
    fn from(counts: BinaryCounts) -> Self {
        EvaluationCounts::Binary(counts)
    }
}

impl From<RegressionCounts> for EvaluationCounts {
    fn from(counts: RegressionCounts) -> Self {
        EvaluationCounts::Regression(counts)
    }
}

impl From<CountCounts> for EvaluationCounts {
    fn from(counts: CountCounts) -> Self {
        EvaluationCounts::Count(counts)
    }
}

fn empty_of<F: Family>(_: F, score_bins: usize) -> Result<F::Counts, ModelError> {
    F::Counts::empty(score_bins)
}

fn flat_len_of<F: Family>(_: F, score_bins: usize) -> usize {
    F::Counts::flat_len(score_bins)
}

fn read_flat_of<F: Family>(
    _: F,
    values: &[f64],
    score_bins: usize,
) -> Result<F::Counts, ModelError> {
    F::Counts::read_flat(values, score_bins)
}

impl EvaluationCounts {
    /// The counts of no rows for a `kind` model.
    ///
    /// # Errors
    /// As [`EvaluationKind::empty`].
    pub fn empty(kind: ModelKind, score_bins: usize) -> Result<Self, ModelError> {
        with_family!(kind, |f| empty_of(f, score_bins).map(Self::from))
    }

    /// Length of the flat layout of a `kind` model's counts.
    pub fn flat_len(kind: ModelKind, score_bins: usize) -> usize {
        with_family!(kind, |f| flat_len_of(f, score_bins))
    }

    /// Reads a `kind` model's counts from their flat layout (or a sum of
    /// several), see [`EvaluationKind::read_flat`].
    ///
    /// # Errors
    /// As [`EvaluationKind::read_flat`].
    pub fn read_flat(
        kind: ModelKind,
        values: &[f64],
        score_bins: usize,
    ) -> Result<Self, ModelError> {
        with_family!(kind, |f| read_flat_of(f, values, score_bins)
            .map(Self::from))
    }

    /// Name of the kind of counts a `kind` model reports, e.g. `"binary"`
    /// (what [`EvaluationCounts::kind_name`] says of its counts).
    pub fn kind_name_of(kind: ModelKind) -> &'static str {
        fn name<F: Family>(_: F) -> &'static str {
            <F::Counts as EvaluationKind>::KIND
        }
        with_family!(kind, |f| name(f))
    }

    /// Name of the kind of counts, e.g. `"binary"`.
    pub fn kind_name(&self) -> &'static str {
        fn name<C: EvaluationKind>(_: &C) -> &'static str {
            C::KIND
        }
        each_kind!(self, |c| name(c))
    }

    /// Adds `other`'s rows to these. On error nothing is changed.
    ///
    /// # Errors
    /// [`ModelError::InvalidAggregate`] for counts of another kind, and as
    /// [`EvaluationKind::merge_counts`].
    pub fn merge(&mut self, other: &EvaluationCounts) -> Result<(), ModelError> {
        match (self, other) {
            (EvaluationCounts::Binary(a), EvaluationCounts::Binary(b)) => a.merge_counts(b),
            (EvaluationCounts::Regression(a), EvaluationCounts::Regression(b)) => a.merge_counts(b),
            (EvaluationCounts::Count(a), EvaluationCounts::Count(b)) => a.merge_counts(b),
            _ => Err(ModelError::InvalidAggregate {
                what: "merged evaluation counts",
                allowed: "counts of the same kind",
            }),
        }
    }

    /// Checks that the counts could have come from real rows.
    ///
    /// # Errors
    /// As [`EvaluationKind::validate`].
    pub fn validate(&self) -> Result<(), ModelError> {
        each_kind!(self, |c| EvaluationKind::validate(c))
    }

    /// Number of rows counted.
    pub fn rows(&self) -> u64 {
        each_kind!(self, |c| c.rows())
    }

    /// Appends the flat layout to `out`.
    pub fn write_flat(&self, out: &mut Vec<f64>) {
        each_kind!(self, |c| c.write_flat(out))
    }

    /// Every metric of the counts, by key.
    pub fn metrics(&self) -> Vec<Metric> {
        each_kind!(self, |c| c.metrics())
    }

    /// The headline metric and its value.
    pub fn headline(&self) -> (MetricName, Option<f64>) {
        each_kind!(self, |c| c.headline())
    }

    /// The binary counts inside, for what only classifiers have (ROC
    /// curves).
    pub fn as_binary(&self) -> Option<&BinaryCounts> {
        match self {
            EvaluationCounts::Binary(c) => Some(c),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use ndarray::aview1;

    use super::*;

    #[test]
    fn the_kind_name_of_a_model_kind_is_that_of_its_counts() {
        for kind in [ModelKind::Logistic, ModelKind::Linear, ModelKind::Poisson] {
            let counts = EvaluationCounts::empty(kind, 10).unwrap();
            assert_eq!(EvaluationCounts::kind_name_of(kind), counts.kind_name());
        }
        assert_ne!(
            EvaluationCounts::kind_name_of(ModelKind::Logistic),
            EvaluationCounts::kind_name_of(ModelKind::Poisson)
        );
    }

    fn binary() -> EvaluationCounts {
        BinaryCounts::from_scores(aview1(&[0.2, 0.9, 0.6]), aview1(&[0.0, 1.0, 0.0]), 4)
            .unwrap()
            .into()
    }

    fn regression() -> EvaluationCounts {
        RegressionCounts::from_predictions(aview1(&[1.0, 2.0]), aview1(&[1.5, 1.0]))
            .unwrap()
            .into()
    }

    #[test]
    fn flat_layouts_round_trip_and_sum() {
        for (kind, counts) in [
            (ModelKind::Logistic, binary()),
            (ModelKind::Linear, regression()),
        ] {
            let mut flat = Vec::new();
            counts.write_flat(&mut flat);
            assert_eq!(flat.len(), EvaluationCounts::flat_len(kind, 4));
            assert_eq!(
                EvaluationCounts::read_flat(kind, &flat, 4),
                Ok(counts.clone())
            );
            // The element-wise sum of two layouts is the merged counts'.
            let doubled: Vec<f64> = flat.iter().map(|v| 2.0 * v).collect();
            let mut merged = counts.clone();
            merged.merge(&counts).unwrap();
            assert_eq!(EvaluationCounts::read_flat(kind, &doubled, 4), Ok(merged));
        }
    }

    #[test]
    fn read_flat_refuses_bad_layouts() {
        let mut flat = Vec::new();
        binary().write_flat(&mut flat);
        assert!(matches!(
            EvaluationCounts::read_flat(ModelKind::Logistic, &flat[1..], 4),
            Err(ModelError::Dimension { .. })
        ));
        let mut bad = flat.clone();
        bad[1] = 0.5;
        assert_eq!(
            EvaluationCounts::read_flat(ModelKind::Logistic, &bad, 4),
            Err(ModelError::InvalidAggregate {
                what: "tp",
                allowed: "a whole number >= 0"
            })
        );
        let mut bad = flat.clone();
        bad[5] = f64::NAN;
        assert!(matches!(
            EvaluationCounts::read_flat(ModelKind::Logistic, &bad, 4),
            Err(ModelError::InvalidValues { first: 5, .. })
        ));
        let mut bad = flat;
        bad[0] += 1.0;
        assert!(matches!(
            EvaluationCounts::read_flat(ModelKind::Logistic, &bad, 4),
            Err(ModelError::InconsistentCounts { .. })
        ));
    }

    #[test]
    fn enum_methods_delegate_to_the_kinds() {
        let b = binary();
        assert_eq!(b.kind_name(), "binary");
        assert_eq!(b.rows(), 3);
        assert_eq!(b.headline().0.key, "auc");
        assert_eq!(b.headline().1, b.as_binary().unwrap().auc());
        assert_eq!(b.validate(), Ok(()));
        let r = regression();
        assert_eq!(r.kind_name(), "regression");
        assert_eq!(r.headline().0.key, "r2");
        assert!(r.as_binary().is_none());
        let mut mixed = b.clone();
        assert!(matches!(
            mixed.merge(&r),
            Err(ModelError::InvalidAggregate { .. })
        ));
        assert_eq!(mixed, b);
        assert_eq!(
            EvaluationCounts::empty(ModelKind::Linear, 4),
            Ok(RegressionCounts::default().into())
        );
        assert_eq!(
            EvaluationCounts::empty(ModelKind::Logistic, 4),
            Ok(BinaryCounts::new(4).unwrap().into())
        );
    }
}
