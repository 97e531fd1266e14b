//! The baseline phase: each member trains a model on its own rows alone,
//! for comparison with the federated model only.

use std::sync::Arc;

use medfed_model::FittedPreprocessor;
use medfed_wire::{BaselineModel, Instruction};
use ndarray::Array1;

use crate::collect::collect_clear;
use crate::config::TaskConfig;
use crate::run_error::RunError;
use crate::state::Shared;
use crate::step::StepCounter;

/// Asks every member for its site-alone model (as many local steps as the
/// whole federated training) and returns them by member, in member order.
pub(crate) async fn baselines(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    preprocessing: &FittedPreprocessor,
) -> Result<Vec<(String, Array1<f64>)>, RunError> {
    let task = &shared.task;
    let instruction = Instruction::Baseline {
        preprocessing: preprocessing.clone(),
        steps: task.rounds.saturating_mul(task.local_steps),
    };
    let mut models =
        collect_clear::<BaselineModel>(shared, config, steps, "baselines", instruction, ())
            .await?
            .kept;
    let mut baselines = Vec::new();
    for member in &task.members {
        if let Some(model) = models.remove(member) {
            baselines.push((member.clone(), model.model));
        }
    }
    Ok(baselines)
}
