//! Held-out evaluation counts as summed vectors: a round's counts (which
//! follow a training round's values when asked for) and the final
//! evaluation's, with calibration counts for logistic models.

use medfed_model::counts::CALIBRATION_BINS;
use medfed_model::{CalibrationCounts, ModelKind};

use super::{LayoutError, Summed, check_finite, check_len, whole};
use crate::submission::{EvaluationCounts, EvaluationReport};
use crate::task::Task;

/// The layout of one model's held-out counts, the flat layout of its kind:
/// e.g. for a logistic model `[n, tp, fp, tn, fn, log-loss sum, positive
/// histogram..., negative histogram...]` over `bins` bins, for a linear one
/// `[n, sse, sae, Σy, Σy²]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CountsShape {
    /// The task's model.
    pub model: ModelKind,
    /// Score histogram bins (logistic models).
    pub bins: u32,
}

impl CountsShape {
    /// A training round's counts, at [`Task::round_score_bins`].
    pub fn round(task: &Task) -> CountsShape {
        CountsShape {
            model: task.model,
            bins: task.round_score_bins(),
        }
    }

    /// The final evaluation's counts, at the task's full score resolution.
    pub fn full(task: &Task) -> CountsShape {
        CountsShape {
            model: task.model,
            bins: task.score_bins,
        }
    }
}

const COUNTS: &str = "summed evaluation counts";

/// Summed, they are the counts over every member's held-out rows, and no
/// member's own counts are seen. The layout is the flat one of the model
/// kind's counts ([`EvaluationCounts::write_flat`]), so a new family brings
/// its own.
impl Summed for EvaluationCounts {
    type Shape = CountsShape;
    type Sum = EvaluationCounts;

    fn len(shape: &CountsShape) -> usize {
        EvaluationCounts::flat_len(shape.model, shape.bins as usize)
    }

    fn write(&self, shape: &CountsShape, out: &mut Vec<f64>) -> Result<(), LayoutError> {
        let start = out.len();
        self.write_flat(out);
        let written = out.len() - start;
        let expected = Self::len(shape);
        let kind_matches = EvaluationCounts::kind_name_of(shape.model) == self.kind_name();
        if !kind_matches || written != expected {
            out.truncate(start);
            return Err(LayoutError::Invalid {
                layout: COUNTS,
                reason: format!(
                    "{} counts of {written} values are not those of a {} model at {} score \
                     bins ({expected} values)",
                    self.kind_name(),
                    shape.model,
                    shape.bins
                ),
            });
        }
        Ok(())
    }

    /// # Errors
    /// A wrong length, non-finite values, a count that is negative or not a
    /// whole number, or counts that do not add up.
    fn read(shape: &CountsShape, values: &[f64]) -> Result<EvaluationCounts, LayoutError> {
        check_finite(COUNTS, values, Self::len(shape))?;
        EvaluationCounts::read_flat(shape.model, values, shape.bins as usize)
            .map_err(|e| LayoutError::invalid(COUNTS, e))
    }
}

/// The layout of a final evaluation of `models` models: per model, its
/// counts at the full score resolution ([`CountsShape::full`]), then for a
/// logistic task its calibration counts `[rows per bin..., predicted
/// probability sum per bin..., positives per bin...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FinalEvaluationShape {
    /// Each model's counts.
    pub counts: CountsShape,
    /// Models evaluated.
    pub models: usize,
}

impl FinalEvaluationShape {
    /// The final evaluation of `models` models of `task`.
    pub fn new(task: &Task, models: usize) -> FinalEvaluationShape {
        FinalEvaluationShape {
            counts: CountsShape::full(task),
            models,
        }
    }

    /// Values per model.
    pub fn per_model(&self) -> usize {
        EvaluationCounts::len(&self.counts)
            + if self.counts.model.predicts_probabilities() {
                3 * CALIBRATION_BINS
            } else {
                0
            }
    }
}

/// A final evaluation summed over the members.
#[derive(Clone, Debug, PartialEq)]
pub struct PooledEvaluation {
    /// Each model's counts over every member's held-out rows.
    pub models: Vec<EvaluationCounts>,
    /// Logistic tasks: each model's calibration counts (else empty).
    pub calibration: Vec<CalibrationCounts>,
}

const FINAL: &str = "summed final evaluation";

impl Summed for EvaluationReport {
    type Shape = FinalEvaluationShape;
    type Sum = PooledEvaluation;

    fn len(shape: &FinalEvaluationShape) -> usize {
        shape.per_model() * shape.models
    }

    fn write(&self, shape: &FinalEvaluationShape, out: &mut Vec<f64>) -> Result<(), LayoutError> {
        check_len("evaluated models", shape.models, self.models.len())?;
        for (i, counts) in self.models.iter().enumerate() {
            counts.write(&shape.counts, out)?;
            if let Some(c) = self.calibration.get(i) {
                out.extend(c.count.iter().map(|&v| v as f64));
                out.extend(c.prediction_sum.iter().copied());
                out.extend(c.label_sum.iter().map(|&v| v as f64));
            }
        }
        Ok(())
    }

    /// # Errors
    /// A wrong length, counts as [`EvaluationCounts::read`] refuses them,
    /// calibration counts that are not whole or do not add up.
    fn read(shape: &FinalEvaluationShape, values: &[f64]) -> Result<PooledEvaluation, LayoutError> {
        check_len(FINAL, Self::len(shape), values.len())?;
        let per_model = shape.per_model();
        let counts = EvaluationCounts::len(&shape.counts);
        let mut models = Vec::with_capacity(shape.models);
        let mut calibration = Vec::new();
        for chunk in values.chunks(per_model) {
            models.push(EvaluationCounts::read(&shape.counts, &chunk[..counts])?);
            if shape.counts.model.predicts_probabilities() {
                let rest = &chunk[counts..];
                let bins = CALIBRATION_BINS;
                let c = CalibrationCounts {
                    count: rest[..bins]
                        .iter()
                        .map(|&v| whole(v, FINAL))
                        .collect::<Result<_, _>>()?,
                    prediction_sum: rest[bins..2 * bins].to_vec(),
                    label_sum: rest[2 * bins..]
                        .iter()
                        .map(|&v| whole(v, FINAL))
                        .collect::<Result<_, _>>()?,
                };
                c.validate().map_err(|e| LayoutError::invalid(FINAL, e))?;
                calibration.push(c);
            }
        }
        Ok(PooledEvaluation {
            models,
            calibration,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summed::add_into;
    use crate::testing::task;
    use medfed_model::{BinaryCounts, RegressionCounts};
    use ndarray::array;

    #[test]
    fn held_out_counts_sum_to_the_pooled_counts_and_are_checked() {
        let logistic = task(ModelKind::Logistic);
        let shape = CountsShape::round(&logistic);
        let bins = shape.bins as usize;
        let scores = (array![0.1, 0.8, 0.6], array![0.3, 0.9]);
        let labels = (array![0.0, 1.0, 0.0], array![1.0, 1.0]);
        let a = BinaryCounts::from_scores(scores.0.view(), labels.0.view(), bins).unwrap();
        let b = BinaryCounts::from_scores(scores.1.view(), labels.1.view(), bins).unwrap();
        let mut pooled = a.clone();
        pooled.merge(&b).unwrap();
        let mut sum = EvaluationCounts::Binary(a).to_vector(&shape).unwrap();
        let vb = EvaluationCounts::Binary(b).to_vector(&shape).unwrap();
        assert_eq!(sum.len(), EvaluationCounts::len(&shape));
        add_into(&mut sum, &vb).unwrap();
        assert_eq!(
            EvaluationCounts::read(&shape, &sum).unwrap(),
            EvaluationCounts::Binary(pooled)
        );
        // Counts that are not whole, or that do not add up, are refused.
        let mut fractional = sum.clone();
        fractional[1] += 0.5;
        assert!(EvaluationCounts::read(&shape, &fractional).is_err());
        let mut inconsistent = sum.clone();
        inconsistent[0] += 1.0;
        assert!(EvaluationCounts::read(&shape, &inconsistent).is_err());
        assert!(EvaluationCounts::read(&shape, &sum[1..]).is_err());

        let linear = CountsShape::round(&task(ModelKind::Linear));
        let counts =
            RegressionCounts::from_predictions(array![1.0, 2.0].view(), array![1.5, 1.0].view())
                .unwrap();
        let v = EvaluationCounts::Regression(counts)
            .to_vector(&linear)
            .unwrap();
        assert_eq!(v.len(), EvaluationCounts::len(&linear));
        assert_eq!(
            EvaluationCounts::read(&linear, &v).unwrap(),
            EvaluationCounts::Regression(counts)
        );
        // Counts of the other model kind do not fit.
        assert!(
            EvaluationCounts::Regression(counts)
                .to_vector(&shape)
                .is_err()
        );
    }

    #[test]
    fn final_evaluations_sum_to_the_pooled_counts_and_calibration() {
        let t = task(ModelKind::Logistic);
        let shape = FinalEvaluationShape::new(&t, 1);
        let site = |scores: ndarray::Array1<f64>, labels: ndarray::Array1<f64>| {
            let counts =
                BinaryCounts::from_scores(scores.view(), labels.view(), t.score_bins as usize)
                    .unwrap();
            let calibration = CalibrationCounts::from_scores(scores.view(), labels.view()).unwrap();
            EvaluationReport {
                step: 9,
                models: vec![EvaluationCounts::Binary(counts)],
                calibration: vec![calibration],
            }
        };
        let a = site(array![0.1, 0.8, 0.6], array![0.0, 1.0, 0.0]);
        let b = site(array![0.3, 0.95], array![1.0, 1.0]);
        let mut sum = a.to_vector(&shape).unwrap();
        assert_eq!(sum.len(), EvaluationReport::len(&shape));
        add_into(&mut sum, &b.to_vector(&shape).unwrap()).unwrap();
        let got = EvaluationReport::read(&shape, &sum).unwrap();
        let (EvaluationCounts::Binary(mut pooled), EvaluationCounts::Binary(other)) =
            (a.models[0].clone(), &b.models[0])
        else {
            panic!("logistic counts");
        };
        pooled.merge(other).unwrap();
        assert_eq!(got.models, vec![EvaluationCounts::Binary(pooled)]);
        let mut pooled_calibration = a.calibration[0].clone();
        pooled_calibration.merge(&b.calibration[0]).unwrap();
        assert_eq!(got.calibration, vec![pooled_calibration]);
        // Positives beyond a bin's rows, or a wrong length, are refused.
        let mut inconsistent = sum.clone();
        let labels_at = EvaluationCounts::len(&shape.counts) + 2 * CALIBRATION_BINS;
        inconsistent[labels_at] += 5.0;
        assert!(EvaluationReport::read(&shape, &inconsistent).is_err());
        assert!(EvaluationReport::read(&FinalEvaluationShape::new(&t, 2), &sum).is_err());
    }
}
