//! The coordinator's side of federated Newton: a globally monotone Newton
//! method whose backtracking line search runs across rounds.

use std::fmt;

use ndarray::{Array1, Array2, ArrayView1};
use serde::{Deserialize, Serialize};

use super::terms::{self, NewtonTerms};
use crate::check;
use crate::error::ModelError;
use crate::family::{Family, Logistic, TermBounds, with_family};
use crate::kind::ModelKind;
use crate::linalg::solve_with_ridge_fallback;

/// Sufficient-decrease constant `c` of the Armijo rule
/// `f(p + tΔ) <= f(p) + c t gᵀΔ`.
pub const ARMIJO: f64 = 1e-4;

/// The line search gives up once the step would fall below this fraction
/// of a full Newton step.
pub const MIN_STEP: f64 = 1e-10;

/// Thresholds for [`NewtonSolver::converged`]. A NaN or negative threshold
/// never triggers its test.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tolerances {
    /// Stop when a full Newton step changed the objective by at most this
    /// fraction of its previous value.
    pub objective: f64,
    /// Stop when the next full Newton step would move no parameter by more
    /// than this.
    pub params: f64,
    /// Stop when the Euclidean norm of the regularised gradient (of the
    /// mean objective) is at most this.
    pub gradient: f64,
}

impl Default for Tolerances {
    /// Objective `1e-10`, parameters `1e-8`, gradient `1e-8`: beyond this,
    /// standardised logistic weights stop changing in any digit a person
    /// reads, and Newton's quadratic convergence gets there in a round or
    /// two from nearby.
    fn default() -> Self {
        Tolerances {
            objective: 1e-10,
            params: 1e-8,
            gradient: 1e-8,
        }
    }
}

/// Why the solver considers itself done.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// The regularised gradient at the last accepted point is small.
    GradientNorm {
        /// Its Euclidean norm.
        norm: f64,
    },
    /// The next full Newton step is small in every parameter.
    ParamChange {
        /// Largest absolute change the step would make.
        max_change: f64,
    },
    /// The last full Newton step barely changed the objective.
    ObjectiveChange {
        /// `|f_new - f_old| / |f_old|`.
        relative_change: f64,
    },
    /// Backtracking halved the step below [`MIN_STEP`] without sufficient
    /// decrease; the last accepted point is the answer. Near the optimum
    /// this can be rounding noise in the objective; elsewhere it suggests
    /// sites answered with terms for different rows or parameters.
    LineSearchFailed {
        /// The step that fell below the floor.
        step: f64,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StopReason::GradientNorm { norm } => {
                write!(f, "gradient norm {norm:.3e} is below tolerance")
            }
            StopReason::ParamChange { max_change } => {
                write!(
                    f,
                    "largest parameter change {max_change:.3e} is below tolerance"
                )
            }
            StopReason::ObjectiveChange { relative_change } => {
                write!(
                    f,
                    "relative objective change {relative_change:.3e} is below tolerance"
                )
            }
            StopReason::LineSearchFailed { step } => write!(
                f,
                "line search failed: step {step:.3e} fell below {MIN_STEP:e} without sufficient decrease"
            ),
        }
    }
}

/// What the solver asks the sites to evaluate next, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Proposal {
    /// Parameters at which sites should compute the next [`NewtonTerms`].
    pub params: Array1<f64>,
    /// How they were chosen.
    pub reason: ProposalReason,
}

/// How a [`Proposal`] was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProposalReason {
    /// The point just evaluated was accepted, and the proposal is a full
    /// Newton step from it.
    Newton {
        /// `Some(ridge)` if the regularised Hessian was not positive definite
        /// and `ridge` ([`RIDGE_FACTOR`](crate::linalg::RIDGE_FACTOR) times
        /// its mean diagonal) had to be added to its diagonal to solve for
        /// the step; `None` normally.
        ridge: Option<f64>,
    },
    /// The point just evaluated did not decrease the objective enough and
    /// was discarded; the proposal is the last accepted point plus `step`
    /// times the Newton step from it.
    Backtrack {
        /// The fraction of the full Newton step, a power of 1/2.
        step: f64,
    },
    /// The solver has stopped; the proposal is the last accepted point.
    Stopped(StopReason),
}

/// The last accepted point and what the solver knows there.
#[derive(Clone, Debug)]
struct Accepted {
    params: Array1<f64>,
    objective: f64,
    gradient: Array1<f64>,
    /// Full Newton step from `params`.
    direction: Array1<f64>,
    /// `gradientᵀ direction`, negative for a descent direction.
    slope: f64,
    /// The step fraction of the move that reached this point; `None` for
    /// the first point.
    reached_with: Option<f64>,
}

/// Globally monotone Newton's method for L2-penalised logistic regression,
/// driven one round at a time by merged [`NewtonTerms`].
///
/// The objective is `f(p) = loss_sum / N + (l2 / 2) ||w||²`, the mean
/// log-loss over all `N` rows plus the penalty on the weights (never the
/// intercept): exactly [`loss`](crate::loss) on the pooled rows. Each round
/// the caller has the sites evaluate terms at [`NewtonSolver::current`],
/// merges them and calls [`NewtonSolver::propose`]:
/// - The first evaluated point is accepted.
/// - Later, the evaluated candidate `p + tΔ` is accepted if
///   `f(p + tΔ) <= f(p) + ARMIJO t gᵀΔ`; the solver then proposes a full
///   Newton step `Δ = -H⁻¹g` from it, with `g` and `H` the regularised
///   gradient and Hessian there.
/// - Otherwise the candidate's terms are discarded, `t` is halved and
///   `p + tΔ` is proposed, until `t` would fall below [`MIN_STEP`].
///
/// So the objective of accepted points never increases. The model to keep
/// when [`NewtonSolver::converged`] says stop is [`NewtonSolver::best`], the
/// last accepted point, not the unevaluated last proposal.
///
/// Every round must cover the same rows: if the set of sites changes, start
/// a new solver from [`NewtonSolver::best`].
#[derive(Clone, Debug)]
pub struct NewtonSolver {
    l2: f64,
    /// The family's per-row bounds, which every round's terms must obey.
    bounds: TermBounds,
    /// Where the next terms must be evaluated.
    pending: Array1<f64>,
    /// Row count of the first terms; every later round must match it.
    rows: Option<u64>,
    accepted: Option<Accepted>,
    /// Current step fraction `t` of the line search.
    step: f64,
    objectives: Vec<f64>,
    stopped: Option<StopReason>,
    /// How much a computed objective may be off its exact value (sums
    /// rounded to a fixed point under secure aggregation); 0 for exact sums.
    objective_noise: f64,
}

impl NewtonSolver {
    /// A solver for logistic Newton terms ([`NewtonTerms::from_rows`])
    /// starting at `start` (length `d + 1`, index 0 the intercept) with L2
    /// penalty `l2` on the weights.
    ///
    /// # Errors
    /// [`ModelError::Dimension`] for an empty `start`,
    /// [`ModelError::InvalidValues`] for non-finite entries and
    /// [`ModelError::InvalidHyperparameter`] for a negative or non-finite
    /// `l2`.
    pub fn new(start: ArrayView1<'_, f64>, l2: f64) -> Result<Self, ModelError> {
        Self::for_family(Logistic, start, l2)
    }

    /// A solver for the Newton terms of a registered `kind`'s family.
    ///
    /// # Errors
    /// As [`NewtonSolver::new`].
    pub fn for_kind(
        kind: ModelKind,
        start: ArrayView1<'_, f64>,
        l2: f64,
    ) -> Result<Self, ModelError> {
        with_family!(kind, |f| Self::for_family(f, start, l2))
    }

    /// A solver for the Newton terms of `family`
    /// ([`NewtonTerms::from_family`]), starting at `start` with L2 penalty
    /// `l2` on the weights; [`NewtonSolver::new`] is this for [`Logistic`].
    ///
    /// # Errors
    /// As [`NewtonSolver::new`].
    pub fn for_family<F: Family>(
        family: F,
        start: ArrayView1<'_, f64>,
        l2: f64,
    ) -> Result<Self, ModelError> {
        if start.is_empty() {
            return Err(ModelError::Dimension {
                what: "start parameters",
                expected: 1,
                got: 0,
            });
        }
        check::finite("start parameters", start)?;
        check::l2(l2)?;
        Ok(NewtonSolver {
            l2,
            bounds: family.term_bounds(),
            pending: start.to_owned(),
            rows: None,
            accepted: None,
            step: 1.0,
            objectives: Vec::new(),
            stopped: None,
            objective_noise: 0.0,
        })
    }

    /// Declares that each objective computed from the terms may be off its
    /// exact value by up to `noise` (e.g. sums rounded to a fixed point):
    /// the line search then accepts a step whose objective is within
    /// `2 * noise` of what it requires, so that rounding alone cannot make it
    /// reject every step near the optimum. Accepted objectives then never
    /// increase by more than `2 * noise`. A negative or non-finite `noise`
    /// counts as 0.
    pub fn allow_objective_noise(&mut self, noise: f64) {
        self.objective_noise = if noise.is_finite() {
            noise.max(0.0)
        } else {
            0.0
        };
    }

    /// The parameters at which the next terms must be evaluated: the start,
    /// then the last proposal.
    pub fn current(&self) -> ArrayView1<'_, f64> {
        self.pending.view()
    }

    /// Takes the merged terms of all sites evaluated at
    /// [`NewtonSolver::current`], and proposes where to evaluate next (see
    /// the type's documentation for the rule). Once stopped, it keeps
    /// proposing the last accepted point and ignores `terms`.
    ///
    /// On error the solver is unchanged, so the caller may retry the round.
    ///
    /// # Errors
    /// As [`NewtonTerms::validate_for`] with the solver's family for `d + 1`
    /// parameters;
    /// [`ModelError::Empty`] for terms of no rows;
    /// [`ModelError::InconsistentCounts`] if the row count differs from the
    /// first round's; [`ModelError::Overflow`] if the objective, gradient,
    /// Hessian or step at an accepted point is not finite; and
    /// [`ModelError::NotPositiveDefinite`] if even the ridged Hessian cannot
    /// be factorised.
    pub fn propose(&mut self, terms: &NewtonTerms) -> Result<Proposal, ModelError> {
        if let Some(reason) = self.stopped {
            return Ok(Proposal {
                params: self.pending.clone(),
                reason: ProposalReason::Stopped(reason),
            });
        }
        terms.validate_within(&self.bounds, self.pending.len() - 1)?;
        if terms.n == 0 {
            return Err(ModelError::Empty);
        }
        if let Some(rows) = self.rows.filter(|&rows| rows != terms.n) {
            return Err(ModelError::InconsistentCounts {
                what: "rows in Newton terms",
                expected: rows,
                got: terms.n,
            });
        }
        let objective = terms::objective(terms, self.pending.view(), self.l2);
        if let Some(accepted) = &self.accepted {
            // `min(0)`: should rounding ever make the slope non-negative,
            // the rule still never accepts an increase.
            // Both objectives may be off by the noise: compare with the slack
            // of both (0 for exact sums).
            let bound = accepted.objective
                + ARMIJO * self.step * accepted.slope.min(0.0)
                + 2.0 * self.objective_noise;
            // False for a NaN objective, which must be rejected too.
            let sufficient = objective <= bound;
            if !sufficient {
                return Ok(self.backtrack());
            }
        } else if !objective.is_finite() {
            return Err(ModelError::Overflow { what: "objective" });
        }
        self.accept(terms, objective)
    }

    /// Whether to stop, and why: the line search failed; or, at the last
    /// accepted point, the regularised gradient norm is at most
    /// `tolerances.gradient`; or the next full Newton step changes no
    /// parameter by more than `tolerances.params`; or that point was
    /// reached by a full step that changed the objective by at most
    /// `tolerances.objective` relatively. (A backtracked step changes the
    /// objective little without being near the optimum, so it does not
    /// count.) Tested in that order; `None` before any point is accepted.
    pub fn converged(&self, tolerances: &Tolerances) -> Option<StopReason> {
        if let Some(reason) = self.stopped {
            return Some(reason);
        }
        let accepted = self.accepted.as_ref()?;
        let norm = accepted.gradient.dot(&accepted.gradient).sqrt();
        if norm <= tolerances.gradient {
            return Some(StopReason::GradientNorm { norm });
        }
        let max_change = accepted
            .direction
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        if max_change <= tolerances.params {
            return Some(StopReason::ParamChange { max_change });
        }
        if let (Some(1.0), [.., previous, last]) =
            (accepted.reached_with, self.objectives.as_slice())
        {
            let relative_change = (previous - last).abs() / previous.abs().max(f64::MIN_POSITIVE);
            if relative_change <= tolerances.objective {
                return Some(StopReason::ObjectiveChange { relative_change });
            }
        }
        None
    }

    /// The last accepted parameters, the lowest-objective point seen;
    /// `None` before the first round.
    pub fn best(&self) -> Option<ArrayView1<'_, f64>> {
        self.accepted.as_ref().map(|a| a.params.view())
    }

    /// The objective at [`NewtonSolver::best`].
    pub fn best_objective(&self) -> Option<f64> {
        self.accepted.as_ref().map(|a| a.objective)
    }

    /// Objective of every accepted point, in order; never increasing.
    pub fn objectives(&self) -> &[f64] {
        &self.objectives
    }

    /// Euclidean norm of the regularised gradient at [`NewtonSolver::best`].
    pub fn gradient_norm(&self) -> Option<f64> {
        self.accepted
            .as_ref()
            .map(|a| a.gradient.dot(&a.gradient).sqrt())
    }

    /// The current step fraction of the line search (1 for a full step).
    pub fn step(&self) -> f64 {
        self.step
    }

    /// The L2 penalty the objective uses.
    pub fn l2(&self) -> f64 {
        self.l2
    }

    /// Halves the step and proposes the shorter move, or stops.
    fn backtrack(&mut self) -> Proposal {
        let Some(accepted) = &self.accepted else {
            // Only called with an accepted point; staying put is harmless.
            return Proposal {
                params: self.pending.clone(),
                reason: ProposalReason::Backtrack { step: self.step },
            };
        };
        let step = 0.5 * self.step;
        if step < MIN_STEP {
            let reason = StopReason::LineSearchFailed { step };
            self.stopped = Some(reason);
            self.pending = accepted.params.clone();
            return Proposal {
                params: self.pending.clone(),
                reason: ProposalReason::Stopped(reason),
            };
        }
        let mut candidate = accepted.params.clone();
        candidate.scaled_add(step, &accepted.direction);
        self.step = step;
        self.pending = candidate.clone();
        Proposal {
            params: candidate,
            reason: ProposalReason::Backtrack { step },
        }
    }

    /// Accepts the evaluated point and proposes a full Newton step from it.
    /// Computes everything before changing any state.
    fn accept(&mut self, terms: &NewtonTerms, objective: f64) -> Result<Proposal, ModelError> {
        let (gradient, hessian) = terms::derivatives(terms, self.pending.view(), self.l2);
        let finite = gradient.iter().chain(hessian.iter()).all(|v| v.is_finite());
        if !finite {
            return Err(ModelError::Overflow {
                what: "gradient or Hessian",
            });
        }
        let (direction, ridge) = newton_direction(&gradient, hessian)?;
        let next = &self.pending + &direction;
        if !next.iter().all(|v| v.is_finite()) {
            return Err(ModelError::Overflow {
                what: "Newton step",
            });
        }
        let reached_with = self.accepted.as_ref().map(|_| self.step);
        self.accepted = Some(Accepted {
            params: std::mem::replace(&mut self.pending, next.clone()),
            objective,
            slope: gradient.dot(&direction),
            gradient,
            direction,
            reached_with,
        });
        self.rows = Some(terms.n);
        self.objectives.push(objective);
        self.step = 1.0;
        Ok(Proposal {
            params: next,
            reason: ProposalReason::Newton { ridge },
        })
    }
}

/// The Newton step `-H⁻¹g`, retrying once with a small ridge if `H` is not
/// (numerically) positive definite. Returns the ridge if one was needed.
fn newton_direction(
    gradient: &Array1<f64>,
    hessian: Array2<f64>,
) -> Result<(Array1<f64>, Option<f64>), ModelError> {
    solve_with_ridge_fallback(hessian, (-gradient).view())
}
