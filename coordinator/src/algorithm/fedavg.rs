//! FedAvg and FedProx: each round, nodes take local steps from the global
//! model and send the delta; the strategy combines the deltas (or, under
//! secure aggregation, the coordinator learns only their sum) and the
//! global model moves by the combined delta. Training stops early when no
//! parameter moves by the tolerance or more. In a DP task
//! [`Dp`](crate::algorithm::dp::Dp) wraps it.

use std::sync::Arc;

use medfed_aggregate::Strategy;
use medfed_model::FittedPreprocessor;
use medfed_wire::summed::{PooledUpdate, UpdateShape};
use medfed_wire::{Instruction, ModelUpdate};
use ndarray::Array1;

use crate::algorithm::failure::failed_round;
use crate::algorithm::rounds::{evaluate_round, held_out, held_out_overall};
use crate::algorithm::{Absorbed, Algorithm, CollectedBy, Control, Work};
use crate::config::TaskConfig;
use crate::mailbox::answers::UpdateSum;
use crate::run_error::RunError;
use crate::secure_round::check_rows;
use crate::state::Shared;

/// FedAvg / FedProx rounds from a global model.
pub struct FedAvg<'a> {
    shared: &'a Arc<Shared>,
    config: &'a TaskConfig,
    strategy: &'a dyn Strategy,
    preprocessing: &'a FittedPreprocessor,
    global: Array1<f64>,
}

impl<'a> FedAvg<'a> {
    /// Rounds of `config`'s task from `global`, combined by `strategy`.
    pub fn new(
        shared: &'a Arc<Shared>,
        config: &'a TaskConfig,
        strategy: &'a dyn Strategy,
        preprocessing: &'a FittedPreprocessor,
        global: Array1<f64>,
    ) -> Self {
        FedAvg {
            shared,
            config,
            strategy,
            preprocessing,
            global,
        }
    }
}

impl Algorithm for FedAvg<'_> {
    type Answer = ModelUpdate;

    fn rounds(&self) -> u32 {
        self.shared.task.rounds
    }

    fn configure(&mut self, round: u32) -> Option<Work<ModelUpdate>> {
        let task = &self.shared.task;
        let evaluate = evaluate_round(self.config, round);
        Some(Work {
            what: format!("round {round}"),
            instruction: Instruction::Train {
                round,
                global: self.global.clone(),
                preprocessing: self.preprocessing.clone(),
                prox_mu: self.config.prox_mu,
                evaluate,
            },
            acc: UpdateSum::new(self.strategy.start_round(task.dimension())),
            shape: UpdateShape::new(task, evaluate),
        })
    }

    /// Under secure aggregation, the row count unmasked with the update
    /// must be the survivors' declared rows.
    fn check(&self, round: u32, sum: &CollectedBy<Self>) -> Result<(), RunError> {
        if self.shared.task.secure_aggregation.is_none() {
            return Ok(());
        }
        check_rows(self.shared, round, &sum.contributors, sum.sum.weight)
    }

    /// Moves the global model by the combined delta; a failed round is
    /// skipped, ends training or ends the run as [`failed_round`] says.
    fn aggregate(
        &mut self,
        round: u32,
        result: Result<CollectedBy<Self>, RunError>,
    ) -> Result<Control, RunError> {
        let collected = match result {
            Ok(collected) => collected,
            Err(error) => return failed_round(self.shared, self.config, round, error),
        };
        let PooledUpdate {
            delta,
            train_loss,
            evaluation,
            ..
        } = collected.sum;
        self.global += &delta;
        let absorbed = Absorbed {
            train_loss,
            held_out: held_out(&collected.kept).or_else(|| held_out_overall(evaluation.as_ref())),
            note: None,
        };
        let change = delta.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        if change < self.config.tolerance {
            let reason = format!(
                "converged after round {round}: the largest parameter change {change:.3e} \
                 is below the tolerance {:e}",
                self.config.tolerance
            );
            return Ok(Control::Stop(absorbed, reason));
        }
        Ok(Control::Continue(absorbed))
    }

    fn model(&self) -> Array1<f64> {
        self.global.clone()
    }
}
