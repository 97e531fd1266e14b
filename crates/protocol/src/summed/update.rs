//! A FedAvg/FedProx round's update as a summed vector. Each member sends
//! `[rows·Δ..., rows, rows·training loss]` (row-weighted), or in a DP task
//! `[clipped and noised Δ..., 1, 0]` (every member weighs the same, and
//! neither rows nor loss are released); the round's held-out counts follow
//! when asked for. The sum reads back as the weighted mean update.

use ndarray::Array1;

use super::{CountsShape, LayoutError, Summed, check_finite, check_len};
use crate::submission::{EvaluationCounts, ModelUpdate};
use crate::task::Task;

/// How the members' updates are weighted in the sum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weighting {
    /// By training rows: `[rows·Δ..., rows, rows·loss]`.
    Rows,
    /// Equally (DP): `[Δ..., 1, 0]`, with `Δ` already clipped and noised.
    Equal,
}

/// The layout of a round's update: `D + 2` values for `D` =
/// [`Task::dimension`], then the round's held-out counts when asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateShape {
    /// Parameters of the model.
    pub dimension: usize,
    /// How members weigh in the sum.
    pub weighting: Weighting,
    /// The round's held-out counts, when asked for.
    pub counts: Option<CountsShape>,
}

impl UpdateShape {
    /// The update layout of a round of `task`: equally weighted in a DP
    /// task, with the round's counts when `evaluate`.
    pub fn new(task: &Task, evaluate: bool) -> UpdateShape {
        UpdateShape {
            dimension: task.dimension(),
            weighting: if task.differential_privacy.is_some() {
                Weighting::Equal
            } else {
                Weighting::Rows
            },
            counts: evaluate.then(|| CountsShape::round(task)),
        }
    }
}

/// The members' updates, summed and read back.
#[derive(Clone, Debug, PartialEq)]
pub struct PooledUpdate {
    /// The weighted mean update.
    pub delta: Array1<f64>,
    /// The summed weight as it came out of the sum: the total rows, or
    /// (DP) the number of members, to be checked against what is known.
    pub weight: f64,
    /// Row-weighted mean training loss of the round's starting model (NaN
    /// in DP rounds: not released).
    pub train_loss: f64,
    /// The round's held-out counts over every member's rows (when asked).
    pub evaluation: Option<EvaluationCounts>,
    /// In a DP task without secure aggregation, how many of the summed
    /// updates came clipped only (their member trusts the coordinator to
    /// noise the sum; see [`crate::PrivacySpend::placement`]): when any did,
    /// the coordinator adds the central noise to the whole sum. Always 0
    /// under secure aggregation, where every member adds its share.
    pub clipped_only: u32,
}

const LAYOUT: &str = "summed update";

impl Summed for ModelUpdate {
    type Shape = UpdateShape;
    type Sum = PooledUpdate;

    fn len(shape: &UpdateShape) -> usize {
        shape.dimension + 2 + shape.counts.as_ref().map_or(0, EvaluationCounts::len)
    }

    fn write(&self, shape: &UpdateShape, out: &mut Vec<f64>) -> Result<(), LayoutError> {
        check_len("update", shape.dimension, self.delta.len())?;
        match shape.weighting {
            Weighting::Rows => {
                let rows = self.num_rows as f64;
                out.extend(self.delta.iter().map(|v| v * rows));
                out.extend([rows, self.train_loss * rows]);
            }
            Weighting::Equal => {
                out.extend(self.delta.iter());
                out.extend([1.0, 0.0]);
            }
        }
        write_round_counts(self.evaluation.as_ref(), shape.counts.as_ref(), out)
    }

    /// # Errors
    /// A wrong length, non-finite values, and held-out counts as
    /// [`EvaluationCounts::read`] refuses them. The weight is not checked
    /// here: only the reader knows the rows or members it must come to.
    fn read(shape: &UpdateShape, values: &[f64]) -> Result<PooledUpdate, LayoutError> {
        check_finite(LAYOUT, values, Self::len(shape))?;
        let d = shape.dimension;
        let (update, counts) = values.split_at(d + 2);
        let weight = update[d];
        // A mean over no rows or no members is no update: refuse the sum
        // rather than hand back infinities or NaN.
        let least = match shape.weighting {
            Weighting::Rows => f64::MIN_POSITIVE,
            Weighting::Equal => 0.5,
        };
        // Finite: `check_finite` above refused NaN.
        if weight < least {
            return Err(LayoutError::Invalid {
                layout: LAYOUT,
                reason: format!("the summed weight {weight} is not that of any contributor"),
            });
        }
        let (delta, train_loss) = match shape.weighting {
            Weighting::Rows => (
                Array1::from_iter(update[..d].iter().map(|v| v / weight)),
                update[d + 1] / weight,
            ),
            // Each member counts 1, so the whole number nearest the weight
            // is the number of members summed.
            Weighting::Equal => {
                let members = weight.round();
                (
                    Array1::from_iter(update[..d].iter().map(|v| v / members)),
                    f64::NAN,
                )
            }
        };
        Ok(PooledUpdate {
            delta,
            weight,
            train_loss,
            evaluation: read_round_counts(shape.counts.as_ref(), counts)?,
            clipped_only: 0,
        })
    }
}

/// Appends a round's held-out counts when the shape asks for them.
///
/// # Errors
/// Counts asked for and not made, or made and not asked for.
pub(crate) fn write_round_counts(
    counts: Option<&EvaluationCounts>,
    shape: Option<&CountsShape>,
    out: &mut Vec<f64>,
) -> Result<(), LayoutError> {
    match (counts, shape) {
        (Some(counts), Some(shape)) => counts.write(shape, out),
        (None, None) => Ok(()),
        _ => Err(LayoutError::Invalid {
            layout: "round's held-out counts",
            reason: "they were asked for and not made, or made and not asked for".into(),
        }),
    }
}

/// Reads a round's summed held-out counts when the shape has them.
pub(crate) fn read_round_counts(
    shape: Option<&CountsShape>,
    values: &[f64],
) -> Result<Option<EvaluationCounts>, LayoutError> {
    match shape {
        Some(shape) => EvaluationCounts::read(shape, values).map(Some),
        None => check_len(LAYOUT, 0, values.len()).map(|()| None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summed::add_into;
    use crate::testing::task;
    use medfed_model::ModelKind;
    use ndarray::array;

    fn update(delta: Array1<f64>, rows: u64, loss: f64) -> ModelUpdate {
        ModelUpdate {
            step: 1,
            round: 1,
            delta,
            num_rows: rows,
            train_loss: loss,
            evaluation: None,
            privacy_spend: None,
        }
    }

    #[test]
    fn row_weighted_updates_read_back_as_their_weighted_mean() {
        let t = task(ModelKind::Logistic);
        let shape = UpdateShape::new(&t, false);
        let a = update(array![1.0, 2.0], 1, 0.5);
        let b = update(array![4.0, 5.0], 2, 0.2);
        let mut sum = a.to_vector(&shape).unwrap();
        assert_eq!(sum, vec![1.0, 2.0, 1.0, 0.5]);
        add_into(&mut sum, &b.to_vector(&shape).unwrap()).unwrap();
        let pooled = ModelUpdate::read(&shape, &sum).unwrap();
        assert_eq!(pooled.delta.to_vec(), vec![3.0, 4.0]);
        assert_eq!(pooled.weight, 3.0);
        assert!((pooled.train_loss - 0.3).abs() < 1e-15);
        assert_eq!(pooled.evaluation, None);
        assert!(ModelUpdate::read(&shape, &sum[1..]).is_err());
        // Counts not asked for do not fit; a wrong dimension does not either.
        let mut evaluated = a.clone();
        evaluated.evaluation = Some(EvaluationCounts::Regression(Default::default()));
        assert!(evaluated.to_vector(&shape).is_err());
        assert!(update(array![1.0], 1, 0.5).to_vector(&shape).is_err());
    }

    #[test]
    fn equally_weighted_updates_read_back_as_their_mean() {
        let mut t = task(ModelKind::Logistic);
        t.differential_privacy = Some(crate::testing::dp());
        let shape = UpdateShape::new(&t, false);
        assert_eq!(shape.weighting, Weighting::Equal);
        let a = update(array![1.0, 2.0], 0, 0.0);
        let b = update(array![3.0, 6.0], 0, 0.0);
        let mut sum = a.to_vector(&shape).unwrap();
        assert_eq!(sum, vec![1.0, 2.0, 1.0, 0.0]);
        add_into(&mut sum, &b.to_vector(&shape).unwrap()).unwrap();
        let pooled = ModelUpdate::read(&shape, &sum).unwrap();
        assert_eq!(pooled.delta.to_vec(), vec![2.0, 4.0]);
        assert_eq!(pooled.weight, 2.0);
        assert!(pooled.train_loss.is_nan());
    }

    /// A sum whose weight no contributor could give (no rows, no members,
    /// negative) is refused instead of divided by.
    #[test]
    fn a_sum_of_no_weight_is_refused() {
        let rows = UpdateShape::new(&task(ModelKind::Logistic), false);
        for weight in [0.0, -3.0] {
            let refused = ModelUpdate::read(&rows, &[1.0, 2.0, weight, 0.5]);
            assert!(
                matches!(refused, Err(LayoutError::Invalid { .. })),
                "{refused:?}"
            );
        }
        let mut t = task(ModelKind::Logistic);
        t.differential_privacy = Some(crate::testing::dp());
        let equal = UpdateShape::new(&t, false);
        assert!(ModelUpdate::read(&equal, &[1.0, 2.0, 0.4, 0.0]).is_err());
        assert!(ModelUpdate::read(&equal, &[1.0, 2.0, 0.6, 0.0]).is_ok());
    }
}
