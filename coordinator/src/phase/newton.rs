//! Federated Newton: nodes send loss, gradient and Hessian sums at the
//! proposed parameters; the solver accepts or backtracks (the objective of
//! accepted points never increases) and proposes the next point.

use std::sync::Arc;
use std::time::Instant;

use medfed_model::{FittedPreprocessor, NewtonSolver, NewtonTerms, ProposalReason, Tolerances};
use medfed_wire::secagg::MaskedKind;
use medfed_wire::summed::NewtonShape;
use medfed_wire::{Instruction, NewtonReport};

use crate::collect::collect;
use crate::config::TaskConfig;
use crate::mailbox::clear::FlatSum;
use crate::phase::rounds::{OnRound, Start, Trained, evaluate_round, held_out, held_out_overall};
use crate::progress::Progress;
use crate::report::ModelScores;
use crate::run_error::RunError;
use crate::secure_round::check_rows;
use crate::state::Shared;
use crate::step::{RoundRecord, StepCounter};

/// Federated Newton: nodes send loss, gradient and Hessian sums at the
/// proposed parameters; the solver accepts or backtracks (the objective of
/// accepted points never increases) and proposes the next point.
pub(crate) async fn newton(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    preprocessing: &FittedPreprocessor,
    steps: &mut StepCounter,
    progress: &Progress,
    start: Start,
    on_round: &mut OnRound<'_>,
) -> Result<Trained, RunError> {
    let task = &shared.task;
    let d = task.dimension() - 1;
    let Start {
        global: start,
        mut rounds,
    } = start;
    let solver_error = |e: medfed_model::ModelError| RunError::Solver(e.to_string());
    // After a restart the solver starts again from the last accepted point:
    // the line search's history is not kept, the optimum is the same.
    let mut solver =
        NewtonSolver::for_kind(task.model, start.view(), task.l2).map_err(solver_error)?;
    let mut tolerances = Tolerances {
        objective: config.tolerance * 1e-2,
        params: config.tolerance,
        gradient: config.tolerance,
    };
    let mut params = start;
    let mut stop_reason = format!("all {} rounds done", task.rounds);
    let first = rounds.len() as u32 + 1;
    for round in first..=task.rounds {
        let started = Instant::now();
        let instruction = Instruction::Newton {
            round,
            params: params.clone(),
            preprocessing: preprocessing.clone(),
            evaluate: evaluate_round(config, round),
        };
        let (terms, contributors, missing, held_out) =
            round_terms(shared, config, steps, round, instruction).await?;
        if let Some(settings) = task.secure_aggregation {
            // A masked sum is exact only to its fixed-point rounding: each
            // entry within m x 2^-(f+1) for m members, so the mean gradient
            // within that x sqrt(d + 1) / n. A smaller gradient tolerance
            // could never be seen to be met.
            let rounding = medfed_secure::secagg::FixedPoint::new(settings.fixed_point_bits)
                .map(|fp| fp.sum_error_bound(contributors as u32))
                .unwrap_or(0.0);
            let floor = rounding * ((d + 1) as f64).sqrt() / terms.n.max(1) as f64;
            tolerances.gradient = config.tolerance.max(floor);
            // The loss sum is rounded the same way, so the mean objective
            // is within rounding / n: near the optimum a step's true
            // decrease is smaller than that, and the line search must not
            // take rounding for a rise.
            solver.allow_objective_noise(rounding / terms.n.max(1) as f64);
        }
        let train_loss = terms.loss_sum / terms.n.max(1) as f64;
        let proposal = solver.propose(&terms).map_err(solver_error)?;
        let note = proposal_note(&proposal.reason);
        let record = RoundRecord {
            round,
            train_loss,
            contributors,
            missing,
            millis: started.elapsed().as_secs_f64() * 1e3,
            held_out,
            note,
        };
        progress.round(&record, task.rounds);
        shared
            .metrics
            .round_completed(record.contributors, record.millis / 1e3, record.train_loss);
        rounds.push(record);
        let accepted = solver
            .best()
            .map_or_else(|| params.clone(), |b| b.to_owned());
        on_round(steps.current(), &accepted, &rounds)?;
        if let ProposalReason::Stopped(reason) = &proposal.reason {
            stop_reason = format!("stopped after round {round}: {reason}");
            params = proposal.params;
            break;
        }
        if let Some(reason) = solver.converged(&tolerances) {
            stop_reason = format!("converged after round {round}: {reason}");
            params = solver.best().map_or(proposal.params, |b| b.to_owned());
            break;
        }
        params = proposal.params;
    }
    // The last proposal was never evaluated; end on the best accepted point.
    let global = solver.best().map_or(params, |b| b.to_owned());
    Ok(Trained {
        global,
        rounds,
        stop_reason,
    })
}

/// What one Newton round gathered: the pooled terms, the number of
/// contributors, the members missing and the held-out scores (when asked).
type RoundTerms = (NewtonTerms, usize, Vec<String>, Option<ModelScores>);

/// One Newton round's terms at the instruction's parameters, securely
/// aggregated or in clear.
async fn round_terms(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    steps: &mut StepCounter,
    round: u32,
    instruction: Instruction,
) -> Result<RoundTerms, RunError> {
    let task = &shared.task;
    let shape = NewtonShape::new(task, MaskedKind::evaluates(&instruction));
    let collected = collect::<NewtonReport>(
        shared,
        config,
        steps,
        &format!("round {round}"),
        instruction,
        FlatSum::new(task.dimension()),
        &shape,
    )
    .await?;
    let (terms, evaluation) = collected.sum;
    if task.secure_aggregation.is_some() {
        check_rows(shared, round, &collected.contributors, terms.n as f64)?;
    }
    let scores = held_out(&collected.kept).or_else(|| held_out_overall(evaluation.as_ref()));
    Ok((
        terms,
        collected.contributors.len(),
        collected.missing,
        scores,
    ))
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
