//! The training phase of a task, by algorithm: FedAvg and FedProx rounds of
//! local steps, federated Newton rounds, or the one-round closed form. Each
//! returns the final parameters, a record per round and why it stopped.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use medfed_aggregate::Strategy;
use medfed_model::{
    FittedPreprocessor, NewtonSolver, NewtonTerms, NormalTerms, ProposalReason, Tolerances,
};
use medfed_wire::{Instruction, Step};
use ndarray::Array1;

use crate::config::{Algorithm, FailedRound, TaskConfig};
use crate::orchestrator::{RoundRecord, RunError, StepCounter, wait_for_answers};
use crate::progress::Progress;
use crate::report::ModelScores;
use crate::state::{Collecting, Shared};

/// What training produced.
pub struct Trained {
    /// Final global parameters.
    pub global: Array1<f64>,
    /// One record per round run.
    pub rounds: Vec<RoundRecord>,
    /// Why training stopped.
    pub stop_reason: String,
}

/// Where training starts: from scratch (zeros, no rounds) or from a
/// checkpoint's model after its completed rounds.
pub struct Start {
    /// The global model to start from.
    pub global: Array1<f64>,
    /// Rounds already done.
    pub rounds: Vec<RoundRecord>,
}

/// Called after every completed round with the last step number, the global
/// model and the rounds so far, to checkpoint them.
pub type OnRound<'a> =
    dyn FnMut(u64, &Array1<f64>, &[RoundRecord]) -> Result<(), RunError> + Send + 'a;

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
            newton(
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
        Algorithm::ClosedForm => closed_form(shared, config, preprocessing, steps, progress).await,
        Algorithm::Fedavg | Algorithm::Fedprox | Algorithm::Auto => {
            local_steps(
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

fn evaluate_round(config: &TaskConfig, round: u32) -> bool {
    config.evaluate_every > 0 && round.is_multiple_of(config.evaluate_every)
}

fn held_out(
    evaluations: &std::collections::BTreeMap<String, medfed_wire::EvaluationCounts>,
) -> Option<ModelScores> {
    (!evaluations.is_empty()).then(|| ModelScores::from_sites(evaluations))
}

/// Scores of a round's model from held-out counts summed under secure
/// aggregation: overall only, since no member's own counts are seen.
fn held_out_overall(counts: Option<&medfed_wire::EvaluationCounts>) -> Option<ModelScores> {
    counts.map(|c| ModelScores {
        overall: crate::report::Metrics::from_counts(c),
        per_site: Default::default(),
    })
}

/// FedAvg / FedProx: each round, nodes take local steps from the global
/// model and send the delta; the strategy combines the deltas.
#[allow(clippy::too_many_arguments)]
async fn local_steps(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    strategy: &dyn Strategy,
    preprocessing: &FittedPreprocessor,
    steps: &mut StepCounter,
    progress: &Progress,
    start: Start,
    on_round: &mut OnRound<'_>,
) -> Result<Trained, RunError> {
    let task = &shared.task;
    let Start {
        mut global,
        mut rounds,
    } = start;
    let mut stop_reason = format!("all {} rounds done", task.rounds);
    let first = rounds.len() as u32 + 1;
    for round in first..=task.rounds {
        let started = Instant::now();
        let result = local_round(
            shared,
            config,
            strategy,
            preprocessing,
            steps,
            round,
            &global,
        )
        .await;
        let (delta, contributors, missing, train_loss, held_out) = match result {
            Err(error @ (RunError::SecureAggregation { .. } | RunError::Timeout { .. }))
                if task.secure_aggregation.is_some()
                    && config.failed_round == FailedRound::Skip =>
            {
                // No wrong model: the round is recorded as failed and the
                // global model stays as it was.
                let note = format!("failed and skipped ({error}); the model is unchanged");
                progress.message(&format!("round {round} {note}"));
                tracing::warn!(round, %error, "secure round failed; skipping it");
                rounds.push(RoundRecord {
                    round,
                    train_loss: f64::NAN,
                    contributors: 0,
                    missing: Vec::new(),
                    millis: started.elapsed().as_secs_f64() * 1e3,
                    held_out: None,
                    note: Some(note),
                });
                on_round(steps.current(), &global, &rounds)?;
                continue;
            }
            Err(RunError::BudgetSpent { site, refusal }) if rounds.is_empty() => {
                // No round completed: there is no model to stand, and the
                // untrained start must not be published as one.
                return Err(RunError::BudgetSpent { site, refusal });
            }
            Err(RunError::BudgetSpent { site, refusal }) => {
                // The model of the last completed round stands; the member
                // has left, so no later step waits for it.
                shared.lock().departed.insert(site.clone());
                stop_reason =
                    format!("stopped before round {round}: {site} declined it because {refusal}");
                tracing::warn!(%site, round, "training stopped: a member's privacy budget is spent");
                break;
            }
            other => other?,
        };
        global += &delta;
        let change = delta.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let record = RoundRecord {
            round,
            train_loss,
            contributors,
            missing,
            millis: started.elapsed().as_secs_f64() * 1e3,
            held_out,
            note: None,
        };
        progress.round(&record, task.rounds);
        shared
            .metrics
            .round_completed(record.contributors, record.millis / 1e3, record.train_loss);
        rounds.push(record);
        on_round(steps.current(), &global, &rounds)?;
        if change < config.tolerance {
            stop_reason = format!(
                "converged after round {round}: the largest parameter change {change:.3e} \
                 is below the tolerance {:e}",
                config.tolerance
            );
            break;
        }
    }
    let failed: Vec<String> = rounds
        .iter()
        .filter(|r| r.contributors == 0)
        .map(|r| r.round.to_string())
        .collect();
    if !failed.is_empty() {
        if failed.len() == rounds.len() {
            return Err(RunError::SecureAggregation {
                step: "training".into(),
                reason: format!(
                    "every round failed (rounds {}), so there is no model",
                    failed.join(", ")
                ),
            });
        }
        stop_reason = format!(
            "{stop_reason}; round{} {} failed and {} skipped",
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", "),
            if failed.len() == 1 { "was" } else { "were" }
        );
    }
    Ok(Trained {
        global,
        rounds,
        stop_reason,
    })
}

/// What one FedAvg/FedProx round produced: the global model's change, the
/// number of contributors, the members missing, the training loss (NaN when
/// not released: DP rounds) and the held-out scores (when asked).
type RoundResult = (Array1<f64>, usize, Vec<String>, f64, Option<ModelScores>);

/// One FedAvg/FedProx round, securely aggregated or in clear; in a DP task
/// with central noise, the coordinator noises the sum here.
async fn local_round(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    strategy: &dyn Strategy,
    preprocessing: &FittedPreprocessor,
    steps: &mut StepCounter,
    round: u32,
    global: &Array1<f64>,
) -> Result<RoundResult, RunError> {
    let task = &shared.task;
    if let Some(settings) = task.secure_aggregation {
        let sum = crate::secure_round::secure_round(
            shared,
            config,
            settings,
            steps,
            crate::secure_round::TrainSpec {
                round,
                global,
                preprocessing,
                prox_mu: config.prox_mu,
                evaluate: evaluate_round(config, round),
            },
        )
        .await?;
        Ok((
            sum.delta,
            sum.contributors,
            sum.missing,
            sum.train_loss,
            held_out_overall(sum.evaluation.as_ref()),
        ))
    } else {
        let s = steps.next_step();
        shared.publish(
            Step {
                step: s,
                instruction: Instruction::Train {
                    round,
                    global: global.clone(),
                    preprocessing: preprocessing.clone(),
                    prox_mu: config.prox_mu,
                    evaluate: evaluate_round(config, round),
                },
            },
            Collecting::Updates {
                step: s,
                round,
                aggregate: strategy.start_round(task.dimension()),
                received: BTreeSet::new(),
                loss_sum: 0.0,
                rows: 0,
                evaluations: Default::default(),
            },
        );
        let missing = wait_for_answers(shared, config, &format!("round {round}")).await?;
        let Collecting::Updates {
            aggregate,
            loss_sum,
            rows,
            evaluations,
            ..
        } = shared.take_collected()
        else {
            unreachable!("a training step collects updates");
        };
        let contributors = aggregate.contributors();
        let mut delta = aggregate.finish().ok_or(RunError::EmptyRound(round))?;
        let train_loss = match task.dp_config() {
            Some(dp) => {
                central_noise(&dp, &mut delta, contributors, round)?;
                // Not released in DP rounds: it is data-dependent and not
                // covered by the guarantee.
                f64::NAN
            }
            None => loss_sum / rows.max(1) as f64,
        };
        Ok((
            delta,
            contributors,
            missing,
            train_loss,
            held_out(&evaluations),
        ))
    }
}

/// DP-FedAvg with central noise: `mean` is the equally weighted mean of
/// `contributors` clipped updates; the sum gets Gaussian noise of standard
/// deviation σ·C before it is divided again (the coordinator is trusted: it
/// sees the sum before noising).
fn central_noise(
    dp: &medfed_secure::dp::DpConfig,
    mean: &mut Array1<f64>,
    contributors: usize,
    round: u32,
) -> Result<(), RunError> {
    let failed = |e: medfed_secure::dp::DpError| RunError::Privacy {
        round,
        reason: e.to_string(),
    };
    let k = contributors as f64;
    let mut sum: Vec<f64> = mean.iter().map(|v| v * k).collect();
    let mut rng = medfed_secure::dp::os_seeded_rng().map_err(failed)?;
    dp.add_central_noise(&mut sum, &mut rng).map_err(failed)?;
    for (m, s) in mean.iter_mut().zip(sum) {
        *m = s / k;
    }
    Ok(())
}

/// Federated Newton: nodes send loss, gradient and Hessian sums at the
/// proposed parameters; the solver accepts or backtracks (the objective of
/// accepted points never increases) and proposes the next point.
async fn newton(
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
    let mut solver = NewtonSolver::new(start.view(), task.l2).map_err(solver_error)?;
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
        let (terms, contributors, missing, held_out) = match task.secure_aggregation {
            Some(settings) => {
                let (terms, sum) = crate::secure_round::secure_newton(
                    shared,
                    config,
                    settings,
                    steps,
                    instruction,
                )
                .await?;
                let scores = held_out_overall(sum.evaluation.as_ref());
                (terms, sum.survivors.len(), sum.missing, scores)
            }
            None => {
                let s = steps.next_step();
                shared.publish(
                    Step {
                        step: s,
                        instruction,
                    },
                    Collecting::Newton {
                        step: s,
                        round,
                        terms: NewtonTerms::zeros(d),
                        received: BTreeSet::new(),
                        evaluations: Default::default(),
                    },
                );
                let missing = wait_for_answers(shared, config, &format!("round {round}")).await?;
                let Collecting::Newton {
                    terms,
                    received,
                    evaluations,
                    ..
                } = shared.take_collected()
                else {
                    unreachable!("a Newton step collects Newton terms");
                };
                if received.is_empty() {
                    return Err(RunError::EmptyRound(round));
                }
                (terms, received.len(), missing, held_out(&evaluations))
            }
        };
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
        }
        let train_loss = terms.loss_sum / terms.n.max(1) as f64;
        let proposal = solver.propose(&terms).map_err(solver_error)?;
        let note = match &proposal.reason {
            ProposalReason::Newton { ridge: Some(ridge) } => Some(format!(
                "Newton step (ridge {ridge:.1e} added: Hessian near singular)"
            )),
            ProposalReason::Newton { ridge: None } => None,
            ProposalReason::Backtrack { step } => {
                Some(format!("the objective rose: backtracking to step {step}"))
            }
            ProposalReason::Stopped(reason) => Some(format!("stopped: {reason}")),
            _ => None,
        };
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

/// Closed-form ridge regression: one round of normal-equation sums, solved
/// exactly.
async fn closed_form(
    shared: &Arc<Shared>,
    config: &TaskConfig,
    preprocessing: &FittedPreprocessor,
    steps: &mut StepCounter,
    progress: &Progress,
) -> Result<Trained, RunError> {
    let task = &shared.task;
    let started = Instant::now();
    let instruction = Instruction::Normal {
        preprocessing: preprocessing.clone(),
    };
    let (terms, contributors, missing) = match task.secure_aggregation {
        Some(settings) => {
            let (terms, sum) =
                crate::secure_round::secure_normal(shared, config, settings, steps, instruction)
                    .await?;
            (terms, sum.survivors.len(), sum.missing)
        }
        None => {
            let s = steps.next_step();
            shared.publish(
                Step {
                    step: s,
                    instruction,
                },
                Collecting::Normal {
                    step: s,
                    terms: NormalTerms::zeros(task.dimension() - 1),
                    received: BTreeSet::new(),
                },
            );
            let missing = wait_for_answers(shared, config, "normal equations").await?;
            let Collecting::Normal {
                terms, received, ..
            } = shared.take_collected()
            else {
                unreachable!("a normal-equation step collects normal terms");
            };
            if received.is_empty() {
                return Err(RunError::EmptyRound(1));
            }
            (terms, received.len(), missing)
        }
    };
    let (global, train_loss) =
        medfed_model::solve_normal(&terms, task.l2).map_err(|e| RunError::Solver(e.to_string()))?;
    let record = RoundRecord {
        round: 1,
        train_loss,
        contributors,
        missing,
        millis: started.elapsed().as_secs_f64() * 1e3,
        held_out: None,
        note: Some("closed form: the exact ridge solution of the pooled normal equations".into()),
    };
    progress.round(&record, 1);
    shared
        .metrics
        .round_completed(record.contributors, record.millis / 1e3, record.train_loss);
    Ok(Trained {
        global,
        rounds: vec![record],
        stop_reason: "closed form: solved exactly in one round".into(),
    })
}
