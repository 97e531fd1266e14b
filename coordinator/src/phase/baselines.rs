//! The baseline phase: each member trains a model on its own rows alone,
//! for comparison with the federated model only.

use std::sync::Arc;

use medfed_model::FittedPreprocessor;
use medfed_wire::{Instruction, Step};
use ndarray::Array1;

use crate::config::TaskConfig;
use crate::run_error::RunError;
use crate::state::{Collecting, Shared};
use crate::step::StepCounter;
use crate::wait::wait_for_answers;

/// Asks every member for its site-alone model (as many local steps as the
/// whole federated training) and returns them by member, in member order.
pub(crate) async fn baselines(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    preprocessing: &FittedPreprocessor,
) -> Result<Vec<(String, Array1<f64>)>, RunError> {
    let task = &shared.task;
    let s = steps.next_step();
    shared.publish(
        Step {
            step: s,
            instruction: Instruction::Baseline {
                preprocessing: preprocessing.clone(),
                steps: task.rounds.saturating_mul(task.local_steps),
            },
        },
        Collecting::Baselines {
            step: s,
            models: Default::default(),
        },
    );
    wait_for_answers(shared, config, "baselines").await?;
    let Collecting::Baselines { mut models, .. } = shared.take_collected() else {
        unreachable!("the baseline step collects models");
    };
    let mut baselines = Vec::new();
    for member in &task.members {
        if let Some(model) = models.remove(member) {
            baselines.push((member.clone(), model.model));
        }
    }
    Ok(baselines)
}
