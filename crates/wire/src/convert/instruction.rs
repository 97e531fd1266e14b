//! Checked conversions of the instructions the coordinator sends (the
//! steps of a task); the secure-aggregation kinds are delegated to
//! [`crate::secagg`].

use super::{Result, WireError, parameters_from_pb, parameters_to_pb, truncate};
use crate::limits::{MAX_LOCAL_STEPS, MAX_ROUNDS};
use crate::message::{Instruction, Step, Task};
use crate::pb;
use crate::preprocessing::{plan_from_pb, plan_to_pb, preprocessing_from_pb, preprocessing_to_pb};

/// Converts an instruction for the wire.
pub fn step_to_pb(step: &Step) -> pb::Instruction {
    pb::Instruction {
        step: step.step,
        kind: Some(kind_to_pb(&step.instruction, None)),
    }
}

/// Converts an instruction for the wire as `member` receives it: of the
/// shares routed in a secure-aggregation round, only those encrypted for
/// `member` (every other instruction is the same for all).
pub fn step_to_pb_for(step: &Step, member: &str) -> pb::Instruction {
    pb::Instruction {
        step: step.step,
        kind: Some(kind_to_pb(&step.instruction, Some(member))),
    }
}

/// The protobuf kind of `instruction`; `recipient` filters routed shares.
pub(crate) fn kind_to_pb(
    instruction: &Instruction,
    recipient: Option<&str>,
) -> pb::instruction::Kind {
    use pb::instruction::Kind;
    if let Some(kind) = crate::secagg::instruction_to_pb(instruction, recipient) {
        return kind;
    }
    match instruction {
        Instruction::CollectStatistics => Kind::Statistics(pb::CollectStatistics {}),
        Instruction::CollectHistograms { plan } => Kind::Histograms(plan_to_pb(plan)),
        Instruction::Train {
            round,
            global,
            preprocessing,
            prox_mu,
            evaluate,
        } => Kind::Train(pb::TrainRound {
            round: *round,
            global: Some(parameters_to_pb(global)),
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
            prox_mu: *prox_mu,
            evaluate: *evaluate,
        }),
        Instruction::Newton {
            round,
            params,
            preprocessing,
            evaluate,
        } => Kind::Newton(pb::NewtonRound {
            round: *round,
            params: Some(parameters_to_pb(params)),
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
            evaluate: *evaluate,
        }),
        Instruction::Normal { preprocessing } => Kind::Normal(pb::NormalEquations {
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
        }),
        Instruction::Baseline {
            preprocessing,
            steps,
        } => Kind::Baseline(pb::TrainBaseline {
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
            steps: *steps,
        }),
        Instruction::Evaluate {
            preprocessing,
            models,
        } => Kind::Evaluate(pb::Evaluate {
            preprocessing: Some(preprocessing_to_pb(preprocessing)),
            models: models.iter().map(parameters_to_pb).collect(),
        }),
        Instruction::Finished { reason } => Kind::Finished(pb::Finished {
            reason: reason.clone(),
        }),
        Instruction::Wait => Kind::Wait(pb::Wait {}),
        Instruction::SecAggKeys { .. }
        | Instruction::SecAggShares { .. }
        | Instruction::SecAggMask { .. }
        | Instruction::SecAggCheck { .. }
        | Instruction::SecAggUnmask { .. } => {
            unreachable!("secure-aggregation instructions are converted above")
        }
    }
}

/// Converts and validates an instruction received from the coordinator.
///
/// # Errors
/// A missing kind, or vectors that do not fit the task.
pub fn step_from_pb(instruction: pb::Instruction, task: &Task) -> Result<Step> {
    use pb::instruction::Kind;
    let pb::Instruction { step, kind } = instruction;
    let instruction = match kind.ok_or(WireError::MissingField {
        field: "instruction.kind",
    })? {
        Kind::Statistics(pb::CollectStatistics {}) => Instruction::CollectStatistics,
        Kind::Histograms(request) => Instruction::CollectHistograms {
            plan: plan_from_pb(request, task)?,
        },
        Kind::Train(pb::TrainRound {
            round,
            global,
            preprocessing,
            prox_mu,
            evaluate,
        }) => {
            check_round("train.round", round, task)?;
            if !(prox_mu.is_finite() && prox_mu >= 0.0) {
                return Err(WireError::Invalid {
                    field: "train.prox_mu",
                    reason: "must be a finite number >= 0".into(),
                });
            }
            Instruction::Train {
                round,
                global: parameters_from_pb("train.global", global, task)?,
                preprocessing: preprocessing_from_pb("train.preprocessing", preprocessing, task)?,
                prox_mu,
                evaluate,
            }
        }
        Kind::Newton(pb::NewtonRound {
            round,
            params,
            preprocessing,
            evaluate,
        }) => {
            check_round("newton.round", round, task)?;
            Instruction::Newton {
                round,
                params: parameters_from_pb("newton.params", params, task)?,
                preprocessing: preprocessing_from_pb("newton.preprocessing", preprocessing, task)?,
                evaluate,
            }
        }
        Kind::Normal(pb::NormalEquations { preprocessing }) => Instruction::Normal {
            preprocessing: preprocessing_from_pb("normal.preprocessing", preprocessing, task)?,
        },
        Kind::Baseline(pb::TrainBaseline {
            preprocessing,
            steps,
        }) => {
            let max = u64::from(MAX_ROUNDS) * u64::from(MAX_LOCAL_STEPS);
            if u64::from(steps) > max {
                return Err(WireError::TooLarge {
                    field: "baseline.steps",
                    max,
                    got: steps.into(),
                });
            }
            Instruction::Baseline {
                preprocessing: preprocessing_from_pb(
                    "baseline.preprocessing",
                    preprocessing,
                    task,
                )?,
                steps,
            }
        }
        Kind::Evaluate(pb::Evaluate {
            preprocessing,
            models,
        }) => {
            let max = task.members.len() + 1;
            if models.is_empty() || models.len() > max {
                return Err(WireError::Invalid {
                    field: "evaluate.models",
                    reason: format!("expected 1 to {max} models, got {}", models.len()),
                });
            }
            Instruction::Evaluate {
                preprocessing: preprocessing_from_pb(
                    "evaluate.preprocessing",
                    preprocessing,
                    task,
                )?,
                models: models
                    .into_iter()
                    .map(|m| parameters_from_pb("evaluate.models", Some(m), task))
                    .collect::<Result<_>>()?,
            }
        }
        Kind::Finished(pb::Finished { reason }) => Instruction::Finished {
            reason: truncate(reason),
        },
        Kind::Wait(pb::Wait {}) => Instruction::Wait,
        kind @ (Kind::SecaggKeys(_)
        | Kind::SecaggShares(_)
        | Kind::SecaggMask(_)
        | Kind::SecaggCheck(_)
        | Kind::SecaggUnmask(_)) => crate::secagg::instruction_from_pb(step, kind, task)?,
    };
    Ok(Step { step, instruction })
}

fn check_round(field: &'static str, round: u32, task: &Task) -> Result<()> {
    if round == 0 || round > task.rounds {
        return Err(WireError::Invalid {
            field,
            reason: format!("round {round} is outside 1..={}", task.rounds),
        });
    }
    Ok(())
}
