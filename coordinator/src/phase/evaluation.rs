//! The evaluation phase: the federated model (and, in clear, the site-alone
//! baselines) scored on every site's held-out rows. In clear each member's
//! counts are kept by member; under secure aggregation only their sum over
//! the members is seen.

use std::sync::Arc;

use medfed_model::{CalibrationCounts, FittedPreprocessor};
use medfed_wire::summed::{FinalEvaluationShape, PooledEvaluation};
use medfed_wire::{EvaluationCounts, EvaluationReport, Instruction, SecureAggregation};
use ndarray::Array1;

use crate::collect::{collect_clear, collect_secure};
use crate::config::TaskConfig;
use crate::run_error::RunError;
use crate::state::Shared;
use crate::step::StepCounter;

/// What the evaluation phase produced.
pub(crate) struct Evaluated {
    /// In clear: each member's counts, `evaluations[site][model]`, sites in
    /// member order; empty under secure aggregation.
    pub(crate) evaluations: Vec<(String, Vec<EvaluationCounts>)>,
    /// Under secure aggregation: the federated model's counts over every
    /// surviving member's held-out rows.
    pub(crate) pooled: Option<EvaluationCounts>,
    /// The federated model's calibration over every site's held-out rows
    /// (logistic tasks).
    pub(crate) calibration: Option<CalibrationCounts>,
}

/// Scores the federated model (and, in clear, the baselines) on every
/// site's held-out rows: securely aggregated when the task says so, and
/// not at all in a DP task without secure aggregation.
pub(crate) async fn evaluate(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    preprocessing: &FittedPreprocessor,
    global: &Array1<f64>,
    baselines: &[(String, Array1<f64>)],
) -> Result<Evaluated, RunError> {
    match shared.task.secure_aggregation {
        // A DP site never releases its own held-out counts in clear (they
        // are not noised): without secure aggregation there is no
        // evaluation to ask for.
        None if shared.task.differential_privacy.is_some() => Ok(Evaluated {
            evaluations: Vec::new(),
            pooled: None,
            calibration: None,
        }),
        Some(settings) => {
            let (counts, calibration) =
                secure_evaluate(shared, config, settings, steps, preprocessing, global).await?;
            Ok(Evaluated {
                evaluations: Vec::new(),
                pooled: Some(counts),
                calibration,
            })
        }
        None => {
            let (evaluations, calibration) =
                clear_evaluation(shared, config, steps, preprocessing, global, baselines).await?;
            Ok(Evaluated {
                evaluations,
                pooled: None,
                calibration,
            })
        }
    }
}

/// The clear evaluation step: every member's counts for the federated
/// model and the baselines, by member, with the federated model's
/// calibration over every site's held-out rows.
async fn clear_evaluation(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    preprocessing: &FittedPreprocessor,
    global: &Array1<f64>,
    baselines: &[(String, Array1<f64>)],
) -> Result<
    (
        Vec<(String, Vec<EvaluationCounts>)>,
        Option<CalibrationCounts>,
    ),
    RunError,
> {
    let task = &shared.task;
    let mut models = vec![global.clone()];
    models.extend(baselines.iter().map(|(_, m)| m.clone()));
    let model_count = models.len();
    let instruction = Instruction::Evaluate {
        preprocessing: preprocessing.clone(),
        models,
    };
    let mut reports = collect_clear::<EvaluationReport>(
        shared,
        config,
        steps,
        "evaluation",
        instruction,
        model_count,
    )
    .await?
    .kept;
    // The federated model's calibration, over every site's held-out rows.
    let mut calibration: Option<CalibrationCounts> = None;
    for report in reports.values() {
        if let Some(site) = report.calibration.first() {
            match &mut calibration {
                Some(total) => total
                    .merge(site)
                    .map_err(|e| RunError::Statistics(e.to_string()))?,
                None => calibration = Some(site.clone()),
            }
        }
    }
    let evaluations = task
        .members
        .iter()
        .filter_map(|m| reports.remove(m).map(|r| (m.clone(), r.models)))
        .collect();
    Ok((evaluations, calibration))
}

/// The final held-out evaluation of `model` under secure aggregation: the
/// counts (and, for a logistic model, calibration counts) over every
/// surviving member's held-out rows. No member's own counts are seen.
///
/// # Errors
/// As [`collect_secure`], and counts that do not add up.
pub async fn secure_evaluate(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    settings: SecureAggregation,
    steps: &mut StepCounter,
    preprocessing: &FittedPreprocessor,
    model: &Array1<f64>,
) -> Result<(EvaluationCounts, Option<CalibrationCounts>), RunError> {
    let work = Instruction::Evaluate {
        preprocessing: preprocessing.clone(),
        models: vec![model.clone()],
    };
    let shape = FinalEvaluationShape::new(&shared.task, 1);
    let PooledEvaluation {
        models,
        calibration,
    } = collect_secure::<EvaluationReport, ()>(shared, config, settings, steps, work, &shape)
        .await?
        .sum;
    // The layout read one model's counts, as the shape asked.
    let Some(counts) = models.into_iter().next() else {
        return Err(RunError::SecureAggregation {
            step: "the final evaluation".into(),
            reason: "the unmasked sum holds no model's counts".into(),
        });
    };
    Ok((counts, calibration.into_iter().next()))
}
