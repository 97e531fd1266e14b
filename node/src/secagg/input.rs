//! Building the input a node masks in stage 0: what the step asks for,
//! computed exactly as for a clear step (clipped and noised in a DP task),
//! laid out as one vector in which every value, the row count included, is
//! hidden until summed.

use anyhow::Context;
use medfed_model::preprocess::{HistogramPlan, median_plan};
use medfed_wire::Summed;
use medfed_wire::secagg::MaskedKind;
use medfed_wire::summed::{
    ColumnMoments, FinalEvaluationShape, MomentsShape, NewtonShape, UpdateShape, Weighting,
};
use medfed_wire::{Instruction, ModelUpdate, Step, Submission, Task};

use crate::data::SiteData;
use crate::work::Answer;

/// What stage 0 of a securely aggregated step keeps to mask.
pub(super) struct Stage0 {
    /// The clear vector to mask, the round's held-out counts included when
    /// asked for.
    pub(super) input: Vec<f64>,
    /// In a DP training round, what it cost this site.
    pub(super) privacy_spend: Option<medfed_wire::PrivacySpend>,
    /// What the vector holds, for the node's output.
    pub(super) what: String,
}

/// Computes what stage 0's `work` asks for, exactly as for a clear step,
/// and lays it out as the vector to mask (see [`MaskedKind`] and
/// [`Summed`]).
///
/// # Errors
/// As the work itself; a DP task asking for Newton or normal-equation
/// terms (they are not clipped or noised); work that makes nothing to mask;
/// a value that does not fit its layout (held-out counts asked for and not
/// made, or made and not asked for, included).
pub(super) fn stage0_input(
    site: &mut SiteData,
    task: &Task,
    work: &Step,
    dp: Option<&mut crate::privacy::DpRounds>,
    gate: &crate::policy::Gate,
) -> anyhow::Result<Stage0> {
    let round = work.round();
    let evaluate = MaskedKind::evaluates(&work.instruction);
    let laid_out = |e: medfed_wire::LayoutError| {
        anyhow::anyhow!("round {round}: the values to mask do not fit their layout: {e}")
    };
    let plain = |input: Vec<f64>, what: String| Stage0 {
        input,
        privacy_spend: None,
        what,
    };
    if let Instruction::CollectHistograms { plan } = &work.instruction {
        // The second statistics pass: sums scaled to the pooled ranges and
        // the median histograms (not the clear pass's histograms of every
        // ranged column).
        let input = moments(site, task, plan, gate)
            .map_err(|e| e.context("the column moments pass (secure aggregation)"))?;
        let what = "column sums over the pooled ranges and median histograms";
        return Ok(plain(input, what.into()));
    }
    let mut notes = Vec::new();
    let computed = gate.answer(site, task, work, &mut notes)?;
    let mut stage0 = match (computed, dp) {
        // DP: the update clipped and noised, every member weighing the
        // same, and neither rows nor loss released.
        (Answer::Send(Submission::Update(update)), Some(dp)) => {
            let mut noised = update.delta.to_vec();
            let spend = dp
                .release(round, &mut noised)
                .with_context(|| format!("round {round}: cannot charge and noise the update"))?;
            let shape = UpdateShape {
                weighting: Weighting::Equal,
                ..UpdateShape::new(task, evaluate)
            };
            let what = format!(
                "trained on {} rows; update clipped and noised (ε spent {:.4} of {} at δ = {:e})",
                update.num_rows, spend.epsilon, spend.budget_epsilon, spend.delta
            );
            let noised = ModelUpdate {
                delta: noised.into(),
                ..update
            };
            Stage0 {
                input: noised.to_vector(&shape).map_err(laid_out)?,
                privacy_spend: Some(spend),
                what,
            }
        }
        (Answer::Send(Submission::Update(update)), None) => {
            let shape = UpdateShape {
                weighting: Weighting::Rows,
                ..UpdateShape::new(task, evaluate)
            };
            plain(
                update.to_vector(&shape).map_err(laid_out)?,
                format!("trained on {} rows, update", update.num_rows),
            )
        }
        (Answer::Send(Submission::Newton(report)), None) => plain(
            report
                .to_vector(&NewtonShape::new(task, evaluate))
                .map_err(laid_out)?,
            format!("Newton terms of {} rows", report.terms.n),
        ),
        (Answer::Send(Submission::Normal(report)), None) => plain(
            report.to_vector(&task.dimension()).map_err(laid_out)?,
            format!("normal-equation terms of {} rows", report.terms.n),
        ),
        (Answer::Send(Submission::Newton(_)) | Answer::Send(Submission::Normal(_)), Some(_)) => {
            anyhow::bail!(
                "round {round}: Newton and normal-equation terms are not clipped or noised, and \
             this task uses differential privacy"
            )
        }
        (Answer::Send(Submission::Statistics(report)), _) => {
            let input = report
                .to_vector(&task.columns)
                .context("the statistics pass (secure aggregation)")?;
            let what = format!(
                "column counts and coarse ranges of {} rows",
                report.train_rows
            );
            plain(input, what)
        }
        (Answer::Send(Submission::Evaluation(report)), _) => plain(
            report
                .to_vector(&FinalEvaluationShape::new(task, report.models.len()))
                .map_err(laid_out)?,
            "held-out counts of the federated model".into(),
        ),
        _ => anyhow::bail!("round {round}: stage 0 produced nothing to mask"),
    };
    for note in notes {
        stage0.what = format!("{}; {note}", stage0.what);
    }
    Ok(stage0)
}

/// The second statistics pass at this site: its exact column sums scaled to
/// the pooled ranges of `plan`, and the histograms of the columns imputed
/// by their median.
fn moments(
    site: &SiteData,
    task: &Task,
    plan: &HistogramPlan,
    gate: &crate::policy::Gate,
) -> anyhow::Result<Vec<f64>> {
    let mut moments = ColumnMoments {
        summaries: site.statistics(task)?,
        histograms: site.histograms(task, &median_plan(&task.columns, plan))?,
    };
    gate.release_moments(
        task,
        site.train.y.len() as u64,
        &moments.summaries,
        &mut moments.histograms,
    )?;
    let shape = MomentsShape {
        columns: task.columns.clone(),
        plan: plan.clone(),
    };
    Ok(moments.to_vector(&shape)?)
}
