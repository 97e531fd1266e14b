//! Exact evaluation metrics on in-memory vectors.
//!
//! These need every score and label in one place, so they serve unit tests
//! and in-process pooled fits. Federated evaluation uses the aggregate
//! counts of [`crate::counts`] instead, which never move rows.

use ndarray::ArrayView1;

use crate::check;
use crate::error::ModelError;
use crate::kind::ModelKind;
use crate::numeric::{clamped_log_loss, negligible_variance};
use crate::regression::check_labels;

/// Fraction of rows whose predicted class matches the 0/1 label, where a
/// score at or above `threshold` predicts class 1.
///
/// # Errors
/// [`ModelError::Dimension`] if the lengths differ, [`ModelError::Empty`]
/// for no rows, [`ModelError::InvalidLabels`] for labels other than 0/1,
/// [`ModelError::InvalidValues`] for NaN scores and
/// [`ModelError::InvalidHyperparameter`] for a NaN threshold.
pub fn accuracy(
    scores: ArrayView1<'_, f64>,
    labels: ArrayView1<'_, f64>,
    threshold: f64,
) -> Result<f64, ModelError> {
    if threshold.is_nan() {
        return Err(ModelError::InvalidHyperparameter {
            name: "threshold",
            value: threshold,
            allowed: "a number (not NaN)",
        });
    }
    check_binary(scores, labels)?;
    let correct = scores
        .iter()
        .zip(labels)
        .filter(|&(&s, &y)| (s >= threshold) == (y == 1.0))
        .count();
    Ok(correct as f64 / scores.len() as f64)
}

/// Exact area under the ROC curve: the probability that a random positive
/// scores above a random negative, with ties counting 1/2. `None` if either
/// class is absent. Sorts once, so O(n log n).
///
/// # Errors
/// As [`accuracy`], except that no threshold is involved.
pub fn roc_auc(
    scores: ArrayView1<'_, f64>,
    labels: ArrayView1<'_, f64>,
) -> Result<Option<f64>, ModelError> {
    check_binary(scores, labels)?;
    let mut pairs: Vec<(f64, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &y)| (s, y == 1.0))
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    // Walk groups of equal scores from lowest to highest. Twice the number
    // of correctly ordered pairs is an integer (ties count one half), so
    // keep it exact in u128 and divide once at the end.
    let mut twice_concordant: u128 = 0;
    let mut negatives_below: u128 = 0;
    let mut positives: u128 = 0;
    let mut start = 0;
    while start < pairs.len() {
        let score = pairs[start].0;
        // `==` (not total_cmp) so that -0.0 and 0.0 tie; they sort adjacent.
        let len = pairs[start..]
            .iter()
            .take_while(|(s, _)| *s == score)
            .count();
        let pos = pairs[start..start + len].iter().filter(|p| p.1).count() as u128;
        let neg = len as u128 - pos;
        twice_concordant += 2 * pos * negatives_below + pos * neg;
        negatives_below += neg;
        positives += pos;
        start += len;
    }
    if positives == 0 || negatives_below == 0 {
        return Ok(None);
    }
    Ok(Some(
        twice_concordant as f64 / (2 * positives * negatives_below) as f64,
    ))
}

/// Mean log-loss of probabilities against 0/1 labels, with probabilities
/// clamped to `[1e-15, 1 - 1e-15]` so a confident mistake costs about 34.5
/// rather than infinity.
///
/// # Errors
/// [`ModelError::Dimension`] if the lengths differ, [`ModelError::Empty`]
/// for no rows, [`ModelError::InvalidLabels`] for labels other than 0/1 and
/// [`ModelError::InvalidValues`] for probabilities outside `[0, 1]`.
pub fn log_loss(
    probabilities: ArrayView1<'_, f64>,
    labels: ArrayView1<'_, f64>,
) -> Result<f64, ModelError> {
    check_pair("labels", probabilities, labels)?;
    check_labels(ModelKind::Logistic, labels)?;
    check::probabilities("probabilities", probabilities)?;
    let sum: f64 = probabilities
        .iter()
        .zip(labels)
        .map(|(&p, &y)| clamped_log_loss(p, y))
        .sum();
    Ok(sum / probabilities.len() as f64)
}

/// Mean squared error.
///
/// # Errors
/// [`ModelError::Dimension`] if the lengths differ, [`ModelError::Empty`]
/// for no rows and [`ModelError::InvalidValues`] for non-finite predictions
/// or targets.
pub fn mse(pred: ArrayView1<'_, f64>, y: ArrayView1<'_, f64>) -> Result<f64, ModelError> {
    check_regression(pred, y)?;
    let sse: f64 = pred.iter().zip(y).map(|(&p, &t)| (p - t) * (p - t)).sum();
    Ok(sse / pred.len() as f64)
}

/// Root mean squared error.
///
/// # Errors
/// As [`mse`].
pub fn rmse(pred: ArrayView1<'_, f64>, y: ArrayView1<'_, f64>) -> Result<f64, ModelError> {
    mse(pred, y).map(f64::sqrt)
}

/// Coefficient of determination `1 - SSE / SS_tot`, with `SS_tot` the sum of
/// squared deviations of `y` from its mean. `None` if `y` has zero (or
/// negligible: below `1e-12` of its mean square) variance, where R² is
/// undefined.
///
/// # Errors
/// As [`mse`].
pub fn r2(pred: ArrayView1<'_, f64>, y: ArrayView1<'_, f64>) -> Result<Option<f64>, ModelError> {
    check_regression(pred, y)?;
    let n = y.len() as f64;
    let mean = y.sum() / n;
    // Two passes, so SS_tot has no cancellation error.
    let ss_tot: f64 = y.iter().map(|&t| (t - mean) * (t - mean)).sum();
    let ss: f64 = y.iter().map(|&t| t * t).sum();
    if negligible_variance(ss_tot, ss) {
        return Ok(None);
    }
    let sse: f64 = pred.iter().zip(y).map(|(&p, &t)| (p - t) * (p - t)).sum();
    Ok(Some(1.0 - sse / ss_tot))
}

/// Equal, non-zero lengths.
fn check_pair(
    what: &'static str,
    first: ArrayView1<'_, f64>,
    second: ArrayView1<'_, f64>,
) -> Result<(), ModelError> {
    check::length(what, first.len(), second.len())?;
    if first.is_empty() {
        return Err(ModelError::Empty);
    }
    Ok(())
}

fn check_binary(
    scores: ArrayView1<'_, f64>,
    labels: ArrayView1<'_, f64>,
) -> Result<(), ModelError> {
    check_pair("labels", scores, labels)?;
    check_labels(ModelKind::Logistic, labels)?;
    check::values("scores", "numbers (not NaN)", scores, |s| !s.is_nan())
}

fn check_regression(pred: ArrayView1<'_, f64>, y: ArrayView1<'_, f64>) -> Result<(), ModelError> {
    check_pair("targets", pred, y)?;
    check::finite("predictions", pred)?;
    check::finite("targets", y)
}

#[cfg(test)]
mod tests {
    use approx::assert_relative_eq;
    use ndarray::{Array1, aview1};

    use super::*;

    #[test]
    fn roc_auc_by_hand_with_ties() {
        // Positives score 0.8, 0.4, 0.4; negatives 0.4, 0.2.
        // Pairs (pos, neg): (0.8,0.4)=1 (0.8,0.2)=1 (0.4,0.4)=1/2 (0.4,0.2)=1
        // (0.4,0.4)=1/2 (0.4,0.2)=1 -> 5 of 6.
        let scores = aview1(&[0.4, 0.8, 0.2, 0.4, 0.4]);
        let labels = aview1(&[1.0, 1.0, 0.0, 0.0, 1.0]);
        assert_relative_eq!(
            roc_auc(scores, labels).unwrap().unwrap(),
            5.0 / 6.0,
            epsilon = 1e-15
        );
    }

    #[test]
    fn roc_auc_extremes_and_signed_zero_ties() {
        let labels = aview1(&[0.0, 0.0, 1.0, 1.0]);
        assert_eq!(
            roc_auc(aview1(&[1.0, 2.0, 3.0, 4.0]), labels).unwrap(),
            Some(1.0)
        );
        assert_eq!(
            roc_auc(aview1(&[4.0, 3.0, 2.0, 1.0]), labels).unwrap(),
            Some(0.0)
        );
        assert_eq!(roc_auc(aview1(&[1.0; 4]), labels).unwrap(), Some(0.5));
        // -0.0 and 0.0 are the same score.
        let auc = roc_auc(aview1(&[-0.0, 0.0]), aview1(&[1.0, 0.0])).unwrap();
        assert_eq!(auc, Some(0.5));
    }

    #[test]
    fn roc_auc_needs_both_classes() {
        assert_eq!(
            roc_auc(aview1(&[0.1, 0.9]), aview1(&[1.0, 1.0])).unwrap(),
            None
        );
        assert_eq!(
            roc_auc(aview1(&[0.1, 0.9]), aview1(&[0.0, 0.0])).unwrap(),
            None
        );
    }

    #[test]
    fn roc_auc_matches_brute_force() {
        let mut rng = crate::rng::SplitMix64::new(3);
        let n = 200;
        // Coarse scores force many ties.
        let scores: Array1<f64> = (0..n).map(|_| (rng.unit() * 20.0).floor()).collect();
        let labels: Array1<f64> = (0..n).map(|_| f64::from(rng.unit() < 0.4)).collect();
        let mut concordant = 0.0;
        let mut pairs = 0.0;
        for (sp, _) in scores.iter().zip(&labels).filter(|p| *p.1 == 1.0) {
            for (sn, _) in scores.iter().zip(&labels).filter(|p| *p.1 == 0.0) {
                pairs += 1.0;
                concordant += if sp > sn {
                    1.0
                } else if sp == sn {
                    0.5
                } else {
                    0.0
                };
            }
        }
        let auc = roc_auc(scores.view(), labels.view()).unwrap().unwrap();
        assert_relative_eq!(auc, concordant / pairs, epsilon = 1e-12);
    }

    #[test]
    fn accuracy_by_hand() {
        let scores = aview1(&[0.9, 0.6, 0.5, 0.2]);
        let labels = aview1(&[1.0, 0.0, 1.0, 0.0]);
        // Threshold 0.5: predictions 1, 1, 1, 0 -> 3 of 4 right.
        assert_relative_eq!(accuracy(scores, labels, 0.5).unwrap(), 0.75);
        // Threshold 0.7: predictions 1, 0, 0, 0 -> 3 of 4 right.
        assert_relative_eq!(accuracy(scores, labels, 0.7).unwrap(), 0.75);
        assert_relative_eq!(accuracy(scores, labels, 0.0).unwrap(), 0.5);
        assert!(accuracy(scores, labels, f64::NAN).is_err());
    }

    #[test]
    fn log_loss_by_hand() {
        let p = aview1(&[0.8, 0.25, 0.0]);
        let y = aview1(&[1.0, 0.0, 0.0]);
        let expected = (-(0.8f64.ln()) - 0.75f64.ln() - (1.0 - 1e-15f64).ln()) / 3.0;
        assert_relative_eq!(log_loss(p, y).unwrap(), expected, epsilon = 1e-12);
        // A confident mistake is large but finite.
        let worst = log_loss(aview1(&[0.0]), aview1(&[1.0])).unwrap();
        assert_relative_eq!(worst, -(1e-15f64.ln()), epsilon = 1e-9);
        assert!(matches!(
            log_loss(aview1(&[1.5]), aview1(&[1.0])),
            Err(ModelError::InvalidValues {
                what: "probabilities",
                ..
            })
        ));
    }

    #[test]
    fn mse_rmse_r2_by_hand() {
        let y = aview1(&[1.0, 2.0, 3.0, 4.0]);
        let pred = aview1(&[1.5, 2.0, 2.0, 4.0]);
        // Errors 0.5, 0, -1, 0 -> SSE 1.25, MSE 0.3125.
        assert_relative_eq!(mse(pred, y).unwrap(), 0.3125);
        assert_relative_eq!(rmse(pred, y).unwrap(), 0.3125f64.sqrt());
        // Mean 2.5, SS_tot = 2.25 + 0.25 + 0.25 + 2.25 = 5.
        assert_relative_eq!(
            r2(pred, y).unwrap().unwrap(),
            1.0 - 1.25 / 5.0,
            epsilon = 1e-15
        );
        assert_relative_eq!(r2(y, y).unwrap().unwrap(), 1.0);
        assert_eq!(r2(pred, aview1(&[3.0; 4])).unwrap(), None);
    }

    #[test]
    fn errors_name_sizes_and_counts_not_values() {
        assert_eq!(
            mse(aview1(&[1.0]), aview1(&[1.0, 2.0])),
            Err(ModelError::Dimension {
                what: "targets",
                expected: 1,
                got: 2
            })
        );
        assert_eq!(mse(aview1(&[]), aview1(&[])), Err(ModelError::Empty));
        let err = roc_auc(aview1(&[0.5, 0.5]), aview1(&[0.123_456, 1.0])).unwrap_err();
        assert_eq!(
            err,
            ModelError::InvalidLabels {
                family: "logistic",
                rule: "exactly 0 or 1",
                invalid: 1,
                total: 2
            }
        );
        assert!(!err.to_string().contains("0.123456"), "{err}");
        assert!(matches!(
            roc_auc(aview1(&[f64::NAN, 0.5]), aview1(&[0.0, 1.0])),
            Err(ModelError::InvalidValues {
                what: "scores",
                first: 0,
                ..
            })
        ));
        assert!(matches!(
            r2(aview1(&[f64::INFINITY]), aview1(&[1.0])),
            Err(ModelError::InvalidValues {
                what: "predictions",
                ..
            })
        ));
    }
}
