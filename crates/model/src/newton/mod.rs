//! Federated Newton's method for any [`crate::Family`] (logistic
//! regression in tasks today; Poisson through the generic API).
//!
//! Each round, every site evaluates [`NewtonTerms`] (sums over its rows of
//! the family's loss, its gradient and its Hessian) at the parameters the
//! coordinator proposed; the coordinator merges them and hands the total to
//! a [`NewtonSolver`], which decides whether to accept the point and
//! proposes the next one. The merged terms are exactly those of the pooled
//! rows, so the federated fit is the pooled fit: typically 5 to 10 rounds
//! instead of hundreds of gradient steps.
//!
//! The solver is globally monotone: it keeps the last accepted point and
//! only moves to a new one when the regularised objective has decreased
//! enough (Armijo), halving the step otherwise. A backtracking step costs a
//! round, since only the sites can evaluate the objective.

mod solver;
mod terms;

pub use solver::{
    ARMIJO, MIN_STEP, NewtonSolver, Proposal, ProposalReason, StopReason, Tolerances,
};
pub use terms::NewtonTerms;

#[cfg(test)]
mod solver_tests;
