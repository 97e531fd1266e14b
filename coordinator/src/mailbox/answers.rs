//! How each kind of clear answer is checked and folded into its step's
//! sum: statistics and evaluations are kept by member, histograms and the
//! exact-fit terms are summed in their flat layout, updates go to the
//! round's aggregation strategy (which may need every member's update).

use medfed_aggregate::Aggregator;
use medfed_model::preprocess::{ColumnHistogram, HistogramPlan};
use medfed_model::{NewtonTerms, NormalTerms};
use medfed_wire::summed::PooledUpdate;
use medfed_wire::{
    BaselineModel, EvaluationCounts, EvaluationReport, HistogramReport, ModelUpdate, NewtonReport,
    NormalReport, StatisticsReport, Submission,
};

use super::clear::{Answer, FlatSum};
use super::{Context, SubmitError};
use crate::run_error::RunError;

/// Per-column statistics: kept by member (per-site notes and rows); each
/// member's training rows become the weight its later answers must claim.
impl Answer for StatisticsReport {
    const COLLECTS: &'static str = "statistics";
    type Acc = ();
    type Kept = StatisticsReport;
    type Sum = ();

    fn take(submission: Submission) -> Option<Self> {
        match submission {
            Submission::Statistics(r) => Some(r),
            _ => None,
        }
    }

    fn matches(submission: &Submission) -> bool {
        matches!(submission, Submission::Statistics(_))
    }

    fn add(
        self,
        member: &str,
        (): &mut (),
        context: Context<'_>,
    ) -> Result<Option<StatisticsReport>, SubmitError> {
        context
            .declared_rows
            .insert(member.to_owned(), self.train_rows);
        context.metrics.set_rows(member, self.train_rows);
        Ok(Some(self))
    }

    fn finish((): (), _round: u32) -> Result<(), RunError> {
        Ok(())
    }
}

/// Median histograms over the global ranges, summed bin by bin.
impl Answer for HistogramReport {
    const COLLECTS: &'static str = "histograms";
    type Acc = FlatSum<HistogramReport>;
    type Kept = ();
    type Sum = Vec<Option<ColumnHistogram>>;

    fn take(submission: Submission) -> Option<Self> {
        match submission {
            Submission::Histograms(r) => Some(r),
            _ => None,
        }
    }

    fn matches(submission: &Submission) -> bool {
        matches!(submission, Submission::Histograms(_))
    }

    fn add(
        self,
        _member: &str,
        acc: &mut Self::Acc,
        _context: Context<'_>,
    ) -> Result<Option<()>, SubmitError> {
        acc.add(&self)?;
        Ok(None)
    }

    fn finish(acc: Self::Acc, _round: u32) -> Result<Self::Sum, RunError> {
        acc.read()
            .map_err(|e| RunError::Statistics(format!("the summed histograms are refused: {e}")))
    }

    fn histogram_plan(acc: &Self::Acc) -> Option<HistogramPlan> {
        Some(acc.shape.clone())
    }
}

/// A clear training round: the strategy's aggregate, and the row-weighted
/// training loss.
pub struct UpdateSum {
    /// The round's aggregate.
    pub aggregate: Box<dyn Aggregator>,
    /// Sum of rows x mean loss, for the round's training loss.
    pub loss_sum: f64,
    /// Sum of rows.
    pub rows: u64,
    /// DP updates that came clipped only (the coordinator owes their sum
    /// the central noise).
    pub clipped_only: u32,
}

impl UpdateSum {
    /// An empty round folding updates into `aggregate`.
    pub fn new(aggregate: Box<dyn Aggregator>) -> UpdateSum {
        UpdateSum {
            aggregate,
            loss_sum: 0.0,
            rows: 0,
            clipped_only: 0,
        }
    }
}

/// Model updates of one round, folded into the round's strategy as they
/// arrive; each member's held-out counts are kept (per-site scores).
impl Answer for ModelUpdate {
    const COLLECTS: &'static str = "model updates";
    type Acc = UpdateSum;
    type Kept = EvaluationCounts;
    type Sum = PooledUpdate;

    fn take(submission: Submission) -> Option<Self> {
        match submission {
            Submission::Update(u) => Some(u),
            _ => None,
        }
    }

    fn matches(submission: &Submission) -> bool {
        matches!(submission, Submission::Update(_))
    }

    fn add(
        self,
        member: &str,
        acc: &mut UpdateSum,
        context: Context<'_>,
    ) -> Result<Option<EvaluationCounts>, SubmitError> {
        // DP: every member weighs the same (the sensitivity of the sum is
        // one clipped update), and sends no rows or loss; otherwise its
        // declared rows are its weight.
        let dp = self.privacy_spend.is_some();
        if !dp {
            check_declared(context.declared_rows, member, self.num_rows)?;
        }
        let norm = self.delta.dot(&self.delta).sqrt();
        if let Some(bound) = context.max_update_norm
            && norm > bound
        {
            return Err(SubmitError::Invalid(format!(
                "the update's norm {norm:.6} exceeds the task's bound {bound}"
            )));
        }
        // Row counts are far below 2^53, so the f64 weight is exact.
        let weight = if dp { 1.0 } else { self.num_rows as f64 };
        acc.aggregate
            .add(self.delta.view(), weight)
            .map_err(|e| SubmitError::Invalid(e.to_string()))?;
        if let Some(spend) = self.privacy_spend {
            if spend.placement == medfed_secure::dp::NoisePlacement::Central {
                acc.clipped_only += 1;
            }
            context.metrics.set_epsilon_spent(member, spend.epsilon);
            context.privacy_spent.insert(member.to_owned(), spend);
        }
        acc.loss_sum += self.train_loss * self.num_rows as f64;
        acc.rows += self.num_rows;
        Ok(self.evaluation)
    }

    /// The strategy's combined update, the total rows and the row-weighted
    /// mean loss; held-out counts stay by member.
    fn finish(acc: UpdateSum, round: u32) -> Result<PooledUpdate, RunError> {
        let delta = acc.aggregate.finish().ok_or(RunError::EmptyRound(round))?;
        Ok(PooledUpdate {
            delta,
            weight: acc.rows as f64,
            train_loss: acc.loss_sum / acc.rows.max(1) as f64,
            evaluation: None,
            clipped_only: acc.clipped_only,
        })
    }
}

/// Newton terms of one round, summed in their flat layout; each member's
/// held-out counts are kept (per-site scores).
impl Answer for NewtonReport {
    const COLLECTS: &'static str = "Newton terms";
    type Acc = FlatSum<NewtonTerms>;
    type Kept = EvaluationCounts;
    type Sum = (NewtonTerms, Option<EvaluationCounts>);

    fn take(submission: Submission) -> Option<Self> {
        match submission {
            Submission::Newton(r) => Some(r),
            _ => None,
        }
    }

    fn matches(submission: &Submission) -> bool {
        matches!(submission, Submission::Newton(_))
    }

    fn add(
        self,
        member: &str,
        acc: &mut Self::Acc,
        context: Context<'_>,
    ) -> Result<Option<EvaluationCounts>, SubmitError> {
        check_declared(context.declared_rows, member, self.terms.n)?;
        acc.add(&self.terms)?;
        Ok(self.evaluation)
    }

    fn finish(acc: Self::Acc, round: u32) -> Result<Self::Sum, RunError> {
        if acc.count == 0 {
            return Err(RunError::EmptyRound(round));
        }
        let terms = acc
            .read()
            .map_err(|e| RunError::Solver(format!("the summed Newton terms are refused: {e}")))?;
        Ok((terms, None))
    }
}

/// Normal-equation terms, summed in their flat layout.
impl Answer for NormalReport {
    const COLLECTS: &'static str = "normal-equation terms";
    type Acc = FlatSum<NormalTerms>;
    type Kept = ();
    type Sum = NormalTerms;

    fn take(submission: Submission) -> Option<Self> {
        match submission {
            Submission::Normal(r) => Some(r),
            _ => None,
        }
    }

    fn matches(submission: &Submission) -> bool {
        matches!(submission, Submission::Normal(_))
    }

    fn add(
        self,
        member: &str,
        acc: &mut Self::Acc,
        context: Context<'_>,
    ) -> Result<Option<()>, SubmitError> {
        check_declared(context.declared_rows, member, self.terms.n)?;
        acc.add(&self.terms)?;
        Ok(None)
    }

    fn finish(acc: Self::Acc, round: u32) -> Result<NormalTerms, RunError> {
        if acc.count == 0 {
            return Err(RunError::EmptyRound(round));
        }
        acc.read().map_err(|e| {
            RunError::Solver(format!("the summed normal-equation terms are refused: {e}"))
        })
    }
}

/// Site-alone models, kept by member (nothing is summed).
impl Answer for BaselineModel {
    const COLLECTS: &'static str = "baseline models";
    type Acc = ();
    type Kept = BaselineModel;
    type Sum = ();

    fn take(submission: Submission) -> Option<Self> {
        match submission {
            Submission::Baseline(m) => Some(m),
            _ => None,
        }
    }

    fn matches(submission: &Submission) -> bool {
        matches!(submission, Submission::Baseline(_))
    }

    fn add(
        self,
        _member: &str,
        (): &mut (),
        _context: Context<'_>,
    ) -> Result<Option<BaselineModel>, SubmitError> {
        Ok(Some(self))
    }

    fn finish((): (), _round: u32) -> Result<(), RunError> {
        Ok(())
    }
}

/// Evaluation counts, kept by member (per-site scores); the running state
/// is the number of models each report must cover.
impl Answer for EvaluationReport {
    const COLLECTS: &'static str = "evaluation counts";
    type Acc = usize;
    type Kept = EvaluationReport;
    type Sum = ();

    fn take(submission: Submission) -> Option<Self> {
        match submission {
            Submission::Evaluation(r) => Some(r),
            _ => None,
        }
    }

    fn matches(submission: &Submission) -> bool {
        matches!(submission, Submission::Evaluation(_))
    }

    fn add(
        self,
        _member: &str,
        _models: &mut usize,
        _context: Context<'_>,
    ) -> Result<Option<EvaluationReport>, SubmitError> {
        Ok(Some(self))
    }

    fn finish(_models: usize, _round: u32) -> Result<(), RunError> {
        Ok(())
    }

    fn evaluation_models(models: &usize) -> usize {
        *models
    }
}

/// A submission's row count must be the one the member declared with its
/// statistics: a weight is a claim, and a hostile member could inflate it.
fn check_declared(
    declared: &std::collections::BTreeMap<String, u64>,
    member: &str,
    claimed: u64,
) -> Result<(), SubmitError> {
    match declared.get(member) {
        Some(&rows) if rows != claimed => Err(SubmitError::Invalid(format!(
            "the submission claims {claimed} rows, but {member} declared {rows} \
             training rows with its statistics"
        ))),
        _ => Ok(()),
    }
}
