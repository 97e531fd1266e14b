//! The training phase: runs the configured algorithm (FedAvg/FedProx
//! rounds, federated Newton or the closed form) from its start to its stop.

use std::sync::Arc;

use medfed_aggregate::Strategy;
use medfed_model::FittedPreprocessor;

use crate::config::{Algorithm, TaskConfig};
use crate::phase::rounds::{OnRound, Start, Trained};
use crate::phase::{closed_form, fedavg, newton};
use crate::progress::Progress;
use crate::run_error::RunError;
use crate::state::Shared;
use crate::step::StepCounter;

/// Runs the training phase with the configured algorithm.
///
/// # Errors
/// Too few answers in time, a round with no contribution, terms the solver
/// cannot use, or a checkpoint that cannot be written.
#[allow(clippy::too_many_arguments)]
pub async fn train(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    strategy: &dyn Strategy,
    preprocessing: &FittedPreprocessor,
    steps: &mut StepCounter,
    progress: &Progress,
    start: Start,
    on_round: &mut OnRound<'_>,
) -> Result<Trained, RunError> {
    match config.algorithm {
        Algorithm::Newton => {
            newton::newton(
                shared,
                config,
                preprocessing,
                steps,
                progress,
                start,
                on_round,
            )
            .await
        }
        Algorithm::ClosedForm => {
            closed_form::closed_form(shared, config, preprocessing, steps, progress).await
        }
        Algorithm::Fedavg | Algorithm::Fedprox | Algorithm::Auto => {
            fedavg::local_steps(
                shared,
                config,
                strategy,
                preprocessing,
                steps,
                progress,
                start,
                on_round,
            )
            .await
        }
    }
}
