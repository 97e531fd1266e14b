//! Clear steps: each kind of answer says how it is folded into the step's
//! running sum ([`Answer`]), and one generic [`ClearInbox`] holds that sum,
//! what is kept of each member's answer, and nothing else.

use std::collections::BTreeMap;

use medfed_model::preprocess::HistogramPlan;
use medfed_wire::summed::add_into;
use medfed_wire::{Submission, Summed};

use super::{Context, Inbox, SubmitError};
use crate::run_error::RunError;

/// One kind of answer a clear step collects, and how the step forms its
/// sum from the members' answers.
pub trait Answer: Sized + Send + 'static {
    /// What a step of this kind collects, as refusals name it.
    const COLLECTS: &'static str;
    /// The running sum while the step is open.
    type Acc: Send;
    /// What is kept of each member's answer (for per-site figures or notes).
    type Kept: Send;
    /// What the closed step produces.
    type Sum;

    /// The answer, when `submission` is of this kind.
    fn take(submission: Submission) -> Option<Self>;

    /// Whether `submission` is of this kind.
    fn matches(submission: &Submission) -> bool;

    /// Checks `member`'s answer and folds it into `acc`, returning what is
    /// kept of it.
    ///
    /// # Errors
    /// An answer the checks or the sum refuse; `acc` is unchanged then.
    fn add(
        self,
        member: &str,
        acc: &mut Self::Acc,
        context: Context<'_>,
    ) -> Result<Option<Self::Kept>, SubmitError>;

    /// The closed step's sum, for a step of `round`.
    ///
    /// # Errors
    /// Nothing arrived where a sum is needed, or a sum that cannot be read.
    fn finish(acc: Self::Acc, round: u32) -> Result<Self::Sum, RunError>;

    /// The plan histograms must follow, when this kind is histograms.
    fn histogram_plan(_acc: &Self::Acc) -> Option<HistogramPlan> {
        None
    }

    /// Models each report must cover, when this kind is evaluations.
    fn evaluation_models(_acc: &Self::Acc) -> usize {
        0
    }
}

/// The inbox of a clear step of kind `K`.
pub struct ClearInbox<K: Answer> {
    acc: K::Acc,
    kept: BTreeMap<String, K::Kept>,
}

impl<K: Answer> ClearInbox<K> {
    /// An inbox starting from `acc`.
    pub fn new(acc: K::Acc) -> ClearInbox<K> {
        ClearInbox {
            acc,
            kept: BTreeMap::new(),
        }
    }

    /// The running sum and what was kept, by member.
    pub fn into_parts(self) -> (K::Acc, BTreeMap<String, K::Kept>) {
        (self.acc, self.kept)
    }
}

impl<K: Answer> Inbox for ClearInbox<K> {
    fn collects(&self) -> &'static str {
        K::COLLECTS
    }

    fn takes(&self, submission: &Submission) -> bool {
        K::matches(submission)
    }

    fn accept(
        &mut self,
        member: &str,
        submission: Submission,
        context: Context<'_>,
    ) -> Result<(), SubmitError> {
        let kind = super::label(&submission);
        let answer = K::take(submission).ok_or_else(|| {
            SubmitError::Invalid(format!(
                "{kind} does not answer a step that collects {}",
                K::COLLECTS
            ))
        })?;
        if let Some(kept) = answer.add(member, &mut self.acc, context)? {
            self.kept.insert(member.to_owned(), kept);
        }
        Ok(())
    }

    fn histogram_plan(&self) -> Option<HistogramPlan> {
        K::histogram_plan(&self.acc)
    }

    fn evaluation_models(&self) -> usize {
        K::evaluation_models(&self.acc)
    }
}

/// A running sum of flat vectors laid out by `T`'s [`Summed`] layout: the
/// clear path's way of forming the sum that secure aggregation forms
/// under masks.
pub struct FlatSum<T: Summed>
where
    T::Shape: Sized,
{
    /// The layout's shape.
    pub shape: T::Shape,
    /// The sum so far.
    pub sum: Vec<f64>,
    /// Vectors added.
    pub count: usize,
}

impl<T: Summed> FlatSum<T>
where
    T::Shape: Sized,
{
    /// An empty sum for `shape`.
    pub fn new(shape: T::Shape) -> FlatSum<T> {
        let sum = vec![0.0; T::len(&shape)];
        FlatSum {
            shape,
            sum,
            count: 0,
        }
    }

    /// Adds `value`'s vector.
    ///
    /// # Errors
    /// A value that does not fit the layout; the sum is unchanged then.
    pub fn add(&mut self, value: &T) -> Result<(), SubmitError> {
        let refused = |e: medfed_wire::LayoutError| SubmitError::Invalid(e.to_string());
        let vector = value.to_vector(&self.shape).map_err(refused)?;
        add_into(&mut self.sum, &vector).map_err(refused)?;
        self.count += 1;
        Ok(())
    }

    /// Reads the sum.
    ///
    /// # Errors
    /// As `T::read`.
    pub fn read(&self) -> Result<T::Sum, medfed_wire::LayoutError> {
        T::read(&self.shape, &self.sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medfed_model::{NewtonTerms, NormalTerms};
    use ndarray::{Axis, Slice, array};

    /// The clear sum formed in the flat layout is bit for bit the sum the
    /// terms' own merge gives, so a clear model does not depend on which
    /// of the two formed it.
    #[test]
    fn flat_sums_of_terms_equal_their_merge_exactly() {
        let x = array![
            [0.5, -1.0],
            [1.5, 0.2],
            [-0.3, 0.7],
            [2.0, -0.4],
            [0.1, 0.9],
            [-1.2, 0.3]
        ];
        let y = array![1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
        let params = array![0.1, 0.2, -0.3];
        let sites = [0..2, 2..3, 3..6];
        let rows = |r: &std::ops::Range<usize>| {
            let s = Slice::from(r.clone());
            (x.slice_axis(Axis(0), s), y.slice_axis(Axis(0), s))
        };

        let mut merged = NewtonTerms::zeros(2);
        let mut flat = FlatSum::<NewtonTerms>::new(3);
        for site in &sites {
            let (xs, ys) = rows(site);
            let terms = NewtonTerms::from_rows(xs, ys, params.view()).unwrap();
            merged.merge(&terms).unwrap();
            flat.add(&terms).unwrap();
        }
        assert_eq!(flat.read().unwrap(), merged);

        let mut merged = NormalTerms::zeros(2);
        let mut flat = FlatSum::<NormalTerms>::new(3);
        for site in &sites {
            let (xs, ys) = rows(site);
            let terms = NormalTerms::from_rows(xs, ys).unwrap();
            merged.merge(&terms).unwrap();
            flat.add(&terms).unwrap();
        }
        assert_eq!(flat.count, 3);
        assert_eq!(flat.read().unwrap(), merged);
    }
}
