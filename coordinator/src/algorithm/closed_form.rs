//! Closed-form ridge regression: one round of normal-equation sums, solved
//! exactly.

use std::sync::Arc;

use medfed_model::FittedPreprocessor;
use medfed_wire::{Instruction, NormalReport};
use ndarray::Array1;

use crate::algorithm::{Absorbed, Algorithm, CollectedBy, Control, Work};
use crate::mailbox::clear::FlatSum;
use crate::run_error::RunError;
use crate::secure_round::check_rows;
use crate::state::Shared;

/// The one round of the closed form, and its solution once solved.
pub struct ClosedForm<'a> {
    shared: &'a Arc<Shared>,
    preprocessing: &'a FittedPreprocessor,
    /// The exact solution (zeros until solved).
    global: Array1<f64>,
}

impl<'a> ClosedForm<'a> {
    /// The closed form of `shared`'s task.
    pub fn new(shared: &'a Arc<Shared>, preprocessing: &'a FittedPreprocessor) -> Self {
        ClosedForm {
            shared,
            preprocessing,
            global: Array1::zeros(shared.task.dimension()),
        }
    }
}

impl Algorithm for ClosedForm<'_> {
    type Answer = NormalReport;
    // One exact round: nothing to resume between its start and its end.
    const CHECKPOINTS_ROUNDS: bool = false;

    fn rounds(&self) -> u32 {
        1
    }

    fn configure(&mut self, _round: u32) -> Option<Work<NormalReport>> {
        let dimension = self.shared.task.dimension();
        Some(Work {
            what: "normal equations".into(),
            instruction: Instruction::Normal {
                preprocessing: self.preprocessing.clone(),
            },
            acc: FlatSum::new(dimension),
            shape: dimension,
        })
    }

    /// Under secure aggregation, the row count unmasked with the terms
    /// must be the survivors' declared rows.
    fn check(&self, round: u32, sum: &CollectedBy<Self>) -> Result<(), RunError> {
        if self.shared.task.secure_aggregation.is_none() {
            return Ok(());
        }
        check_rows(self.shared, round, &sum.contributors, sum.sum.n as f64)
    }

    /// Solves the pooled normal equations; a failed round ends the run.
    fn aggregate(
        &mut self,
        _round: u32,
        result: Result<CollectedBy<Self>, RunError>,
    ) -> Result<Control, RunError> {
        let terms = result?.sum;
        let (global, train_loss) = medfed_model::solve_normal(&terms, self.shared.task.l2)
            .map_err(|e| RunError::Solver(e.to_string()))?;
        self.global = global;
        Ok(Control::Stop(
            Absorbed {
                train_loss,
                held_out: None,
                note: Some(
                    "closed form: the exact ridge solution of the pooled normal equations".into(),
                ),
            },
            "closed form: solved exactly in one round".into(),
        ))
    }

    fn model(&self) -> Array1<f64> {
        self.global.clone()
    }
}
