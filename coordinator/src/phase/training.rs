//! The training phase: picks the configured algorithm (FedAvg/FedProx
//! rounds, DP-wrapped in a DP task; federated Newton; or the closed form)
//! and runs it in the one round loop, [`drive`], from its start to its
//! stop.

use std::sync::Arc;

use medfed_aggregate::Strategy;
use medfed_model::FittedPreprocessor;

use crate::algorithm::closed_form::ClosedForm;
use crate::algorithm::dp::Dp;
use crate::algorithm::driver::{Run, drive};
use crate::algorithm::fedavg::FedAvg;
use crate::algorithm::newton::Newton;
use crate::algorithm::rounds::{OnRound, Start, Trained};
use crate::config::{Algorithm, TaskConfig};
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
    let Start { global, rounds } = start;
    let run = Run {
        shared,
        config,
        steps,
        progress,
        on_round,
    };
    match config.algorithm {
        Algorithm::Newton => {
            let newton = Newton::new(shared, config, preprocessing, global)?;
            drive(newton, run, rounds).await
        }
        Algorithm::ClosedForm => drive(ClosedForm::new(shared, preprocessing), run, rounds).await,
        Algorithm::Fedavg | Algorithm::Fedprox | Algorithm::Auto => {
            let fedavg = FedAvg::new(shared, config, strategy, preprocessing, global);
            if shared.task.differential_privacy.is_some() {
                drive(Dp::new(fedavg, &shared.task), run, rounds).await
            } else {
                drive(fedavg, run, rounds).await
            }
        }
    }
}
