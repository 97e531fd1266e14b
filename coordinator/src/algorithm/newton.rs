//! Federated Newton: nodes send loss, gradient and Hessian sums at the
//! proposed parameters; the solver accepts or backtracks (the objective of
//! accepted points never increases) and proposes the next point.

use std::sync::Arc;

use medfed_model::{FittedPreprocessor, ModelError, NewtonSolver, ProposalReason, Tolerances};
use medfed_wire::secagg::MaskedKind;
use medfed_wire::summed::NewtonShape;
use medfed_wire::{Instruction, NewtonReport};
use ndarray::Array1;

use crate::algorithm::rounds::{evaluate_round, held_out, held_out_overall};
use crate::algorithm::{Absorbed, Algorithm, CollectedBy, Control, Work};
use crate::config::TaskConfig;
use crate::mailbox::clear::FlatSum;
use crate::run_error::RunError;
use crate::secure_round::check_rows;
use crate::state::Shared;

/// Federated Newton rounds from a start point.
pub struct Newton<'a> {
    shared: &'a Arc<Shared>,
    config: &'a TaskConfig,
    preprocessing: &'a FittedPreprocessor,
    solver: NewtonSolver,
    tolerances: Tolerances,
    /// Where the next terms are evaluated: the start, then the last
    /// proposal.
    params: Array1<f64>,
}

impl<'a> Newton<'a> {
    /// Newton rounds of `config`'s task from `start`. After a restart the
    /// solver starts again from the last accepted point: the line search's
    /// history is not kept, the optimum is the same.
    ///
    /// # Errors
    /// A start or L2 penalty the solver refuses.
    pub fn new(
        shared: &'a Arc<Shared>,
        config: &'a TaskConfig,
        preprocessing: &'a FittedPreprocessor,
        start: Array1<f64>,
    ) -> Result<Self, RunError> {
        let solver = NewtonSolver::for_kind(shared.task.model, start.view(), shared.task.l2)
            .map_err(solver_error)?;
        Ok(Newton {
            shared,
            config,
            preprocessing,
            solver,
            tolerances: Tolerances {
                objective: config.tolerance * 1e-2,
                params: config.tolerance,
                gradient: config.tolerance,
            },
            params: start,
        })
    }
}

impl Algorithm for Newton<'_> {
    type Answer = NewtonReport;

    fn rounds(&self) -> u32 {
        self.shared.task.rounds
    }

    fn configure(&mut self, round: u32) -> Option<Work<NewtonReport>> {
        let instruction = Instruction::Newton {
            round,
            params: self.params.clone(),
            preprocessing: self.preprocessing.clone(),
            evaluate: evaluate_round(self.config, round),
        };
        let shape = NewtonShape::new(&self.shared.task, MaskedKind::evaluates(&instruction));
        Some(Work {
            what: format!("round {round}"),
            instruction,
            acc: FlatSum::new(self.shared.task.dimension()),
            shape,
        })
    }

    /// Under secure aggregation, the row count unmasked with the terms
    /// must be the survivors' declared rows.
    fn check(&self, round: u32, sum: &CollectedBy<Self>) -> Result<(), RunError> {
        if self.shared.task.secure_aggregation.is_none() {
            return Ok(());
        }
        check_rows(self.shared, round, &sum.contributors, sum.sum.0.n as f64)
    }

    /// Hands the pooled terms to the solver and stops when it has stopped
    /// or converged; a failed round ends the run.
    fn aggregate(
        &mut self,
        round: u32,
        result: Result<CollectedBy<Self>, RunError>,
    ) -> Result<Control, RunError> {
        let collected = result?;
        let (terms, evaluation) = &collected.sum;
        if let Some(settings) = self.shared.task.secure_aggregation {
            // A masked sum is exact only to its fixed-point rounding: each
            // entry within m x 2^-(f+1) for m members, so the mean gradient
            // within that x sqrt(d + 1) / n. A smaller gradient tolerance
            // could never be seen to be met.
            let d = self.shared.task.dimension() - 1;
            let rounding = medfed_secure::secagg::FixedPoint::new(settings.fixed_point_bits)
                .map(|fp| fp.sum_error_bound(collected.contributors.len() as u32))
                .unwrap_or(0.0);
            let floor = rounding * ((d + 1) as f64).sqrt() / terms.n.max(1) as f64;
            self.tolerances.gradient = self.config.tolerance.max(floor);
            // The loss sum is rounded the same way, so the mean objective
            // is within rounding / n: near the optimum a step's true
            // decrease is smaller than that, and the line search must not
            // take rounding for a rise.
            self.solver
                .allow_objective_noise(rounding / terms.n.max(1) as f64);
        }
        let train_loss = terms.loss_sum / terms.n.max(1) as f64;
        let proposal = self.solver.propose(terms).map_err(solver_error)?;
        let absorbed = Absorbed {
            train_loss,
            held_out: held_out(&collected.kept).or_else(|| held_out_overall(evaluation.as_ref())),
            note: proposal_note(&proposal.reason),
        };
        self.params = proposal.params;
        if let ProposalReason::Stopped(reason) = &proposal.reason {
            let reason = format!("stopped after round {round}: {reason}");
            return Ok(Control::Stop(absorbed, reason));
        }
        if let Some(reason) = self.solver.converged(&self.tolerances) {
            let reason = format!("converged after round {round}: {reason}");
            return Ok(Control::Stop(absorbed, reason));
        }
        Ok(Control::Continue(absorbed))
    }

    /// The best accepted point; the start before any round. (The last
    /// proposal is never the model: it has not been evaluated.)
    fn model(&self) -> Array1<f64> {
        self.solver
            .best()
            .map_or_else(|| self.params.clone(), |b| b.to_owned())
    }
}

/// The solver's refusal as the run's error.
fn solver_error(e: ModelError) -> RunError {
    RunError::Solver(e.to_string())
}

/// What the solver did, when worth saying in the round's record.
fn proposal_note(reason: &ProposalReason) -> Option<String> {
    match reason {
        ProposalReason::Newton { ridge: Some(ridge) } => Some(format!(
            "Newton step (ridge {ridge:.1e} added: Hessian near singular)"
        )),
        ProposalReason::Newton { ridge: None } => None,
        ProposalReason::Backtrack { step } => {
            Some(format!("the objective rose: backtracking to step {step}"))
        }
        ProposalReason::Stopped(reason) => Some(format!("stopped: {reason}")),
        _ => None,
    }
}
