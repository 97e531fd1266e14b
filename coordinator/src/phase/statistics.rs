//! The statistics phase: per-column aggregates from every member (and, when
//! a column is imputed by its median, histograms over the global ranges),
//! merged into the global preprocessing. In clear each member's summaries
//! are merged; under secure aggregation both passes are sums over the
//! members, so no member's own figures are seen.

use std::sync::Arc;

use medfed_model::FittedPreprocessor;
use medfed_model::preprocess::{
    ColumnHistogram, ColumnSummary, DEFAULT_MEDIAN_BINS, HistogramPlan, Impute, RowCounts,
    merge_summaries, summary_notes,
};
use medfed_wire::summed::{ColumnMoments, MomentsShape};
use medfed_wire::{HistogramReport, Instruction, SecureAggregation, StatisticsReport};

use crate::collect::{collect_clear, collect_secure};
use crate::config::TaskConfig;
use crate::mailbox::clear::FlatSum;
use crate::progress::Progress;
use crate::run_error::RunError;
use crate::state::Shared;
use crate::step::StepCounter;

/// The statistics step (and the histogram step when a median is asked
/// for): per-column aggregates from every member, merged into the global
/// preprocessing. Returns it with the notes on degenerate columns and each
/// member's training rows.
pub(crate) async fn preprocess(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    progress: &Progress,
) -> Result<(FittedPreprocessor, Vec<String>, TrainRows), RunError> {
    let task = &shared.task;
    let statistics_error = |e: medfed_model::ModelError| RunError::Statistics(e.to_string());
    let (merged, histograms, train_rows, mut notes) = match task.secure_aggregation {
        Some(settings) => {
            // Both passes as sums: no member's own figures are seen, so
            // notes are about all sites together only.
            let pooled = secure_preprocess(shared, config, settings, steps).await?;
            (
                pooled.summaries,
                pooled.histograms,
                (Vec::new(), pooled.rows.train),
                Vec::new(),
            )
        }
        None => clear_statistics(shared, config, steps).await?,
    };
    let (preprocessing, column_notes) =
        FittedPreprocessor::fit(&task.columns, &merged, histograms.as_deref())
            .map_err(statistics_error)?;
    notes.extend(
        column_notes
            .iter()
            .map(|n| format!("across all sites: {n}")),
    );
    if let Some(histograms) = &histograms {
        for (spec, h) in task.columns.iter().zip(histograms) {
            if let (Impute::Median, Some(h)) = (spec.missing, h) {
                notes.push(format!(
                    "{}: missing values filled with the approximate global median, within {:.3e} \
                     of the exact one ({} bins)",
                    spec.name,
                    h.median_error_bound(),
                    h.counts.len()
                ));
            }
        }
    }
    for note in &notes {
        progress.message(note);
    }

    Ok((preprocessing, notes, train_rows))
}

/// Training rows per member (empty under secure aggregation) and over all
/// members.
pub(crate) type TrainRows = (Vec<(String, u64)>, u64);

/// The clear statistics pass, and the histogram pass when a median is asked
/// for: each member's summaries merged, the merged histograms, the training
/// rows, and notes on columns missing or constant at one site.
async fn clear_statistics(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
) -> Result<
    (
        Vec<ColumnSummary>,
        Option<Vec<Option<ColumnHistogram>>>,
        TrainRows,
        Vec<String>,
    ),
    RunError,
> {
    let task = &shared.task;
    // Statistics round: aggregates only, never rows.
    let reports = collect_clear::<StatisticsReport>(
        shared,
        config,
        steps,
        "statistics",
        Instruction::CollectStatistics,
        (),
    )
    .await?
    .kept;
    let mut merged: Vec<ColumnSummary> = task.columns.iter().map(ColumnSummary::empty).collect();
    let mut train_rows = Vec::new();
    let mut notes = Vec::new();
    let statistics_error = |e: medfed_model::ModelError| RunError::Statistics(e.to_string());
    for (member, report) in &reports {
        merge_summaries(&mut merged, &report.summaries).map_err(statistics_error)?;
        train_rows.push((member.clone(), report.train_rows));
        // A column missing or constant at one site is worth knowing: that
        // site cannot tell the model anything about it.
        for note in summary_notes(&task.columns, &report.summaries).map_err(statistics_error)? {
            notes.push(format!("at {member}: {note}"));
        }
    }

    // Medians need a second pass: histograms over the global ranges.
    let needs_median = task
        .columns
        .iter()
        .any(|c| matches!(c.missing, Impute::Median));
    let histograms = if needs_median {
        let plan = HistogramPlan::new(&task.columns, &merged, DEFAULT_MEDIAN_BINS)
            .map_err(statistics_error)?;
        let instruction = Instruction::CollectHistograms { plan: plan.clone() };
        let merged = collect_clear::<HistogramReport>(
            shared,
            config,
            steps,
            "histograms",
            instruction,
            FlatSum::new(plan),
        )
        .await?
        .sum;
        Some(merged)
    } else {
        None
    };
    let total = train_rows.iter().map(|(_, r)| r).sum();
    Ok((merged, histograms, (train_rows, total), notes))
}

/// What the securely aggregated preprocessing passes produced.
pub struct SecurePreprocessing {
    /// The pooled column summaries, as the clear pass would have merged
    /// them (sums within the fixed-point precision).
    pub summaries: Vec<ColumnSummary>,
    /// The pooled median histograms (when a column is imputed by its
    /// median).
    pub histograms: Option<Vec<Option<ColumnHistogram>>>,
    /// Row counts over the members in the sum.
    pub rows: RowCounts,
}

/// The preprocessing's statistics under secure aggregation: a first
/// securely aggregated pass for counts and coarse ranges, then (when a
/// numeric column has a range) a second over the pooled ranges for the
/// range-scaled sums and the median histograms. Both must sum the same
/// members, or the pooled figures would mix different sites' rows.
///
/// # Errors
/// As [`collect_secure`]; sums that could not come from real rows; a member in
/// one pass's sum and not the other's.
pub async fn secure_preprocess(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
) -> Result<SecurePreprocessing, RunError> {
    let task = &shared.task;
    let refused = |step: &str, e: medfed_model::ModelError| RunError::SecureAggregation {
        step: step.into(),
        reason: format!("the unmasked sums are refused: {e}: the sum is wrong"),
    };
    let first = collect_secure::<StatisticsReport, ()>(
        shared,
        config,
        settings,
        steps,
        Instruction::CollectStatistics,
        &task.columns,
    )
    .await?;
    let pooled = first.sum;
    let rows = pooled.rows;
    shared.lock().pooled_rows = Some((first.contributors.clone(), rows.train));
    let plan = pooled.plan(&task.columns, DEFAULT_MEDIAN_BINS);
    if plan.is_empty() {
        let (summaries, _) = pooled
            .finish(&task.columns, &plan, &[])
            .map_err(|e| refused("the statistics pass", e))?;
        return Ok(SecurePreprocessing {
            summaries,
            histograms: None,
            rows,
        });
    }
    let shape = MomentsShape {
        columns: task.columns.clone(),
        plan: plan.clone(),
    };
    let second = collect_secure::<ColumnMoments, ()>(
        shared,
        config,
        settings,
        steps,
        Instruction::CollectHistograms { plan: plan.clone() },
        &shape,
    )
    .await?;
    if second.contributors != first.contributors {
        let differ: Vec<&str> = first
            .contributors
            .symmetric_difference(&second.contributors)
            .map(String::as_str)
            .collect();
        return Err(RunError::SecureAggregation {
            step: "the column moments pass".into(),
            reason: format!(
                "{} took part in only one of the two statistics passes, so their sums would \
                 mix different sites' rows",
                differ.join(", ")
            ),
        });
    }
    let (summaries, histograms) = pooled
        .finish(&task.columns, &plan, &second.sum)
        .map_err(|e| refused("the column moments pass", e))?;
    let needs_histograms = histograms.iter().any(Option::is_some);
    Ok(SecurePreprocessing {
        summaries,
        histograms: needs_histograms.then_some(histograms),
        rows,
    })
}
