//! Confusion counts, log-loss and score histograms of a binary classifier.

use ndarray::ArrayView1;
use serde::{Deserialize, Serialize};

use crate::check;
use crate::counts::evaluation::{EvaluationKind, Metric, MetricName, check_flat, whole};
use crate::error::ModelError;
use crate::family::{Family, Logistic};
use crate::glm::check_labels;
use crate::numeric::clamped_log_loss;

/// Histogram resolution used unless a task says otherwise; it keeps the AUC
/// error bound below about 0.001 for a few hundred rows of continuous scores.
pub const DEFAULT_SCORE_BINS: usize = 10_000;
/// Fewest histogram bins allowed.
pub const MIN_SCORE_BINS: usize = 2;
/// Most histogram bins allowed; bounds the memory and wire size of a report.
pub const MAX_SCORE_BINS: usize = 1_000_000;

/// Probability at or above which a row is predicted positive.
pub(crate) const THRESHOLD: f64 = 0.5;

/// Additive summary of a logistic model's predictions on held-out rows.
///
/// Bin `b` of the histograms holds probabilities `p` with
/// `floor(p * bins) == b` (`p == 1` goes to the last bin), so bins are
/// ordered by score and every pair of rows in different bins is ordered
/// correctly; only pairs sharing a bin make the AUC approximate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BinaryCounts {
    /// Number of rows.
    pub n: u64,
    /// Positives predicted positive (probability >= 0.5).
    pub tp: u64,
    /// Negatives predicted positive.
    pub fp: u64,
    /// Negatives predicted negative.
    pub tn: u64,
    /// Positives predicted negative.
    pub fn_: u64,
    /// Sum over rows of the log-loss, probabilities clamped to
    /// `[1e-15, 1 - 1e-15]`.
    pub log_loss_sum: f64,
    /// Per-bin count of positive rows.
    pub pos_hist: Vec<u64>,
    /// Per-bin count of negative rows.
    pub neg_hist: Vec<u64>,
}

impl BinaryCounts {
    /// Empty counts with `bins` histogram bins.
    ///
    /// # Errors
    /// [`ModelError::InvalidBins`] unless `bins` is in
    /// [`MIN_SCORE_BINS`]`..=`[`MAX_SCORE_BINS`].
    pub fn new(bins: usize) -> Result<Self, ModelError> {
        check_bins(bins)?;
        Ok(BinaryCounts {
            n: 0,
            tp: 0,
            fp: 0,
            tn: 0,
            fn_: 0,
            log_loss_sum: 0.0,
            pos_hist: vec![0; bins],
            neg_hist: vec![0; bins],
        })
    }

    /// Adds one row. On error nothing is changed.
    ///
    /// # Errors
    /// [`ModelError::InvalidValues`] if `probability` is not in `[0, 1]`,
    /// [`ModelError::InvalidLabels`] if `label` is not 0 or 1, and
    /// [`ModelError::Overflow`] if the row count would pass `u64::MAX`.
    pub fn add(&mut self, probability: f64, label: f64) -> Result<(), ModelError> {
        check::probabilities("probability", &[probability])?;
        if !Logistic.is_valid_label(label) {
            return Err(Logistic.label_error(1, 1));
        }
        self.add_unchecked(probability, label == 1.0)
    }

    /// Counts of `probabilities` against 0/1 `labels`. No rows gives empty
    /// counts.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if the lengths differ,
    /// [`ModelError::InvalidBins`] for an unsupported `bins`,
    /// [`ModelError::InvalidValues`] for probabilities outside `[0, 1]` and
    /// [`ModelError::InvalidLabels`] for labels other than 0 or 1.
    pub fn from_scores(
        probabilities: ArrayView1<'_, f64>,
        labels: ArrayView1<'_, f64>,
        bins: usize,
    ) -> Result<Self, ModelError> {
        check::length("labels", probabilities.len(), labels.len())?;
        let mut counts = BinaryCounts::new(bins)?;
        // Checking everything first reports how many rows are bad, not just
        // the first.
        check::probabilities("probabilities", probabilities)?;
        check_labels(Logistic, labels)?;
        for (&p, &y) in probabilities.iter().zip(labels) {
            counts.add_unchecked(p, y == 1.0)?;
        }
        Ok(counts)
    }

    /// Adds `other`'s rows to these. On error nothing is changed.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] if the bin counts differ and
    /// [`ModelError::Overflow`] if a count would pass `u64::MAX`.
    pub fn merge(&mut self, other: &BinaryCounts) -> Result<(), ModelError> {
        check::length(
            "merged score histogram",
            self.pos_hist.len(),
            other.pos_hist.len(),
        )?;
        check::length(
            "merged score histogram",
            self.neg_hist.len(),
            other.neg_hist.len(),
        )?;
        let overflow = ModelError::Overflow {
            what: "merged binary counts",
        };
        let sum = |a: u64, b: u64| a.checked_add(b).ok_or(overflow.clone());
        let (n, tp, fp, tn, fn_) = (
            sum(self.n, other.n)?,
            sum(self.tp, other.tp)?,
            sum(self.fp, other.fp)?,
            sum(self.tn, other.tn)?,
            sum(self.fn_, other.fn_)?,
        );
        // Check every bin before touching any, so a failed merge changes
        // nothing.
        let hist_pairs = || {
            self.pos_hist
                .iter()
                .zip(&other.pos_hist)
                .chain(self.neg_hist.iter().zip(&other.neg_hist))
        };
        if hist_pairs().any(|(a, b)| a.checked_add(*b).is_none()) {
            return Err(overflow);
        }
        for (a, b) in self
            .pos_hist
            .iter_mut()
            .zip(&other.pos_hist)
            .chain(self.neg_hist.iter_mut().zip(&other.neg_hist))
        {
            *a += b;
        }
        (self.n, self.tp, self.fp, self.tn, self.fn_) = (n, tp, fp, tn, fn_);
        self.log_loss_sum += other.log_loss_sum;
        Ok(())
    }

    /// Checks that the counts could have come from [`BinaryCounts::add`]:
    /// a supported bin count with equal-length histograms,
    /// `tp + fp + tn + fn_ == n == sum(pos_hist) + sum(neg_hist)`,
    /// `tp + fn_ == sum(pos_hist)`, and a finite, non-negative
    /// `log_loss_sum` that is 0 when there are no rows.
    ///
    /// # Errors
    /// [`ModelError::InvalidBins`], [`ModelError::Dimension`],
    /// [`ModelError::InconsistentCounts`] or [`ModelError::InvalidAggregate`]
    /// for the first rule broken.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_bins(self.pos_hist.len())?;
        check::length(
            "negative score histogram",
            self.pos_hist.len(),
            self.neg_hist.len(),
        )?;
        // u128 sums cannot overflow for any u64 inputs of this size.
        let confusion = [self.tp, self.fp, self.tn, self.fn_]
            .iter()
            .map(|&c| u128::from(c))
            .sum::<u128>();
        let pos: u128 = self.pos_hist.iter().map(|&c| u128::from(c)).sum();
        let neg: u128 = self.neg_hist.iter().map(|&c| u128::from(c)).sum();
        let n = u128::from(self.n);
        consistent("tp + fp + tn + fn_", n, confusion)?;
        consistent("sum(pos_hist) + sum(neg_hist)", n, pos + neg)?;
        consistent("tp + fn_", pos, u128::from(self.tp) + u128::from(self.fn_))?;
        let loss_ok = self.log_loss_sum.is_finite()
            && self.log_loss_sum >= 0.0
            && (self.n > 0 || self.log_loss_sum == 0.0);
        if !loss_ok {
            return Err(ModelError::InvalidAggregate {
                what: "log_loss_sum",
                allowed: "a finite number >= 0, and 0 when there are no rows",
            });
        }
        Ok(())
    }

    /// Number of histogram bins.
    pub fn bins(&self) -> usize {
        self.pos_hist.len()
    }

    /// Number of positive rows.
    pub fn positives(&self) -> u64 {
        saturating_total(&self.pos_hist)
    }

    /// Number of negative rows.
    pub fn negatives(&self) -> u64 {
        saturating_total(&self.neg_hist)
    }

    /// Fraction of rows classified correctly at threshold 0.5; `None` with
    /// no rows.
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.tp as f64 + self.tn as f64, self.n as f64)
    }

    /// True positive rate `tp / (tp + fn_)`; `None` without positives.
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(self.tp as f64, self.tp as f64 + self.fn_ as f64)
    }

    /// True negative rate `tn / (tn + fp)`; `None` without negatives.
    pub fn specificity(&self) -> Option<f64> {
        ratio(self.tn as f64, self.tn as f64 + self.fp as f64)
    }

    /// Mean clamped log-loss; `None` with no rows.
    pub fn log_loss(&self) -> Option<f64> {
        ratio(self.log_loss_sum, self.n as f64)
    }

    /// AUC from the histograms: pairs in different bins count as ordered by
    /// their bins, pairs in the same bin count 1/2. `None` if a class is
    /// absent. Within [`BinaryCounts::auc_error_bound`] of the exact AUC of
    /// the same scores.
    pub fn auc(&self) -> Option<f64> {
        let (pos, neg) = self.class_totals()?;
        // f64 rather than integers: the fields are public and may hold
        // counts whose products overflow any integer type, and relative
        // rounding of 1e-16 is irrelevant for an AUC.
        let mut concordant = 0.0;
        let mut negatives_below = 0.0;
        for (&p, &q) in self.pos_hist.iter().zip(&self.neg_hist) {
            let (p, q) = (p as f64, q as f64);
            concordant += p * (negatives_below + 0.5 * q);
            negatives_below += q;
        }
        Some(concordant / (pos * neg))
    }

    /// Upper bound on `|auc() - exact AUC|`: `0.5 * sum_b pos_b * neg_b /
    /// (P * N)`, since only pairs sharing a bin can be misjudged, each by at
    /// most 1/2. `None` if a class is absent.
    pub fn auc_error_bound(&self) -> Option<f64> {
        let (pos, neg) = self.class_totals()?;
        let same_bin: f64 = self
            .pos_hist
            .iter()
            .zip(&self.neg_hist)
            .map(|(&p, &q)| p as f64 * q as f64)
            .sum();
        Some(0.5 * same_bin / (pos * neg))
    }

    /// The ROC curve of the histograms, as `(false positive rate, true
    /// positive rate)` points with the threshold moving from the top bin
    /// down: `(0, 0)` first, then one point after each bin that holds a row,
    /// ending at `(1, 1)`. At most `bins + 1` points, and at most one more
    /// than the number of rows.
    ///
    /// Rows sharing a bin enter together, so a bin with both classes makes a
    /// diagonal step; the trapezoid area under these points is therefore
    /// [`BinaryCounts::auc`], ties counted 1/2. `None` if a class is absent
    /// or the two histograms differ in length.
    pub fn roc_points(&self) -> Option<Vec<(f64, f64)>> {
        if self.pos_hist.len() != self.neg_hist.len() {
            return None;
        }
        let (pos, neg) = self.class_totals()?;
        let mut points = vec![(0.0, 0.0)];
        let (mut true_pos, mut false_pos) = (0.0, 0.0);
        for (&p, &q) in self.pos_hist.iter().zip(&self.neg_hist).rev() {
            if p == 0 && q == 0 {
                continue;
            }
            true_pos += p as f64;
            false_pos += q as f64;
            points.push((false_pos / neg, true_pos / pos));
        }
        Some(points)
    }

    /// Totals of positives and negatives, if both classes are present.
    fn class_totals(&self) -> Option<(f64, f64)> {
        let pos: f64 = self.pos_hist.iter().map(|&c| c as f64).sum();
        let neg: f64 = self.neg_hist.iter().map(|&c| c as f64).sum();
        (pos > 0.0 && neg > 0.0).then_some((pos, neg))
    }

    /// Adds a row whose probability and label are known to be valid. The
    /// fields are public and may have been set by hand, so nothing about
    /// their consistency is assumed: every increment is checked.
    fn add_unchecked(&mut self, probability: f64, positive: bool) -> Result<(), ModelError> {
        let overflow = || ModelError::Overflow {
            what: "binary counts",
        };
        let n = self.n.checked_add(1).ok_or_else(overflow)?;
        let bins = self.pos_hist.len();
        // p in [0, 1] makes this in [0, bins]; only p == 1 needs clamping.
        let bin = ((probability * bins as f64) as usize).min(bins.saturating_sub(1));
        let predicted = probability >= THRESHOLD;
        let (hist, confusion) = match (positive, predicted) {
            (true, true) => (&mut self.pos_hist, &mut self.tp),
            (true, false) => (&mut self.pos_hist, &mut self.fn_),
            (false, true) => (&mut self.neg_hist, &mut self.fp),
            (false, false) => (&mut self.neg_hist, &mut self.tn),
        };
        let slot = hist.get_mut(bin).ok_or(ModelError::InvalidBins {
            got: bins,
            min: MIN_SCORE_BINS,
            max: MAX_SCORE_BINS,
        })?;
        let new_slot = slot.checked_add(1).ok_or_else(overflow)?;
        let new_confusion = confusion.checked_add(1).ok_or_else(overflow)?;
        *slot = new_slot;
        *confusion = new_confusion;
        self.n = n;
        self.log_loss_sum += clamped_log_loss(probability, if positive { 1.0 } else { 0.0 });
        Ok(())
    }
}

/// Flat layout: `n, tp, fp, tn, fn_, log_loss_sum`, then the positive and
/// the negative histogram.
impl EvaluationKind for BinaryCounts {
    const KIND: &'static str = "binary";

    fn empty(score_bins: usize) -> Result<Self, ModelError> {
        BinaryCounts::new(score_bins)
    }

    fn from_predictions(
        predictions: ArrayView1<'_, f64>,
        labels: ArrayView1<'_, f64>,
        score_bins: usize,
    ) -> Result<Self, ModelError> {
        BinaryCounts::from_scores(predictions, labels, score_bins)
    }

    fn merge_counts(&mut self, other: &Self) -> Result<(), ModelError> {
        self.merge(other)
    }

    fn validate(&self) -> Result<(), ModelError> {
        BinaryCounts::validate(self)
    }

    fn rows(&self) -> u64 {
        self.n
    }

    fn flat_len(score_bins: usize) -> usize {
        6 + 2 * score_bins
    }

    fn write_flat(&self, out: &mut Vec<f64>) {
        out.extend([
            self.n as f64,
            self.tp as f64,
            self.fp as f64,
            self.tn as f64,
            self.fn_ as f64,
            self.log_loss_sum,
        ]);
        out.extend(self.pos_hist.iter().map(|&v| v as f64));
        out.extend(self.neg_hist.iter().map(|&v| v as f64));
    }

    fn read_flat(values: &[f64], score_bins: usize) -> Result<Self, ModelError> {
        check_bins(score_bins)?;
        check_flat(values, Self::flat_len(score_bins))?;
        let hist = |from: usize, what| {
            values[from..from + score_bins]
                .iter()
                .map(|&v| whole(v, what))
                .collect::<Result<Vec<u64>, _>>()
        };
        let counts = BinaryCounts {
            n: whole(values[0], "n")?,
            tp: whole(values[1], "tp")?,
            fp: whole(values[2], "fp")?,
            tn: whole(values[3], "tn")?,
            fn_: whole(values[4], "fn_")?,
            log_loss_sum: values[5],
            pos_hist: hist(6, "pos_hist")?,
            neg_hist: hist(6 + score_bins, "neg_hist")?,
        };
        BinaryCounts::validate(&counts)?;
        Ok(counts)
    }

    fn metrics(&self) -> Vec<Metric> {
        vec![
            ("auc", self.auc()),
            ("auc_error_bound", self.auc_error_bound()),
            ("accuracy", self.accuracy()),
            ("log_loss", self.log_loss()),
            ("sensitivity", self.sensitivity()),
            ("specificity", self.specificity()),
        ]
    }

    fn summary_metrics() -> [MetricName; 3] {
        [
            MetricName {
                key: "auc",
                label: "AUC",
            },
            MetricName {
                key: "accuracy",
                label: "accuracy",
            },
            MetricName {
                key: "log_loss",
                label: "log-loss",
            },
        ]
    }
}

fn check_bins(bins: usize) -> Result<(), ModelError> {
    if (MIN_SCORE_BINS..=MAX_SCORE_BINS).contains(&bins) {
        Ok(())
    } else {
        Err(ModelError::InvalidBins {
            got: bins,
            min: MIN_SCORE_BINS,
            max: MAX_SCORE_BINS,
        })
    }
}

fn consistent(what: &'static str, expected: u128, got: u128) -> Result<(), ModelError> {
    if expected == got {
        Ok(())
    } else {
        // Saturate for the message only; such totals are already absurd.
        let clip = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
        Err(ModelError::InconsistentCounts {
            what,
            expected: clip(expected),
            got: clip(got),
        })
    }
}

/// Sum of a histogram; saturates instead of panicking on counts that were
/// never validated.
fn saturating_total(hist: &[u64]) -> u64 {
    hist.iter().fold(0u64, |total, &c| total.saturating_add(c))
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}

#[cfg(test)]
#[path = "binary_tests.rs"]
mod tests;
