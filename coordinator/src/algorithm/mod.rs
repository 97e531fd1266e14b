//! Training algorithms as one trait, in the spirit of Flower's `Strategy`
//! (`configure_fit` / `aggregate_fit`): an [`Algorithm`] says what the
//! members compute next from its current state ([`Algorithm::configure`])
//! and what to do with their sum, or with the failure of the step
//! ([`Algorithm::aggregate`]). One round loop, [`driver::drive`], runs
//! every algorithm: it publishes the step, collects the sum (in clear or
//! under secure aggregation), records the round, prints the progress line,
//! updates the metrics, checkpoints and stops.
//!
//! - [`fedavg`]: FedAvg/FedProx rounds of local steps, combined by the
//!   task's aggregation strategy;
//! - [`newton`]: federated Newton rounds;
//! - [`closed_form`]: the one-round exact ridge solution;
//! - [`dp`]: differential privacy wrapped around an algorithm of model
//!   updates (central noise, the contributor-count check, no released
//!   loss);
//! - [`failure`]: what a failed FedAvg/FedProx round means (skip it, stop
//!   training, or abort the run);
//! - [`rounds`]: where training starts, what it produces, the round's
//!   held-out scores.
//!
//! Adding an algorithm takes its own file here implementing [`Algorithm`],
//! a `pub mod` line below and an arm in [`crate::phase::training`].

use medfed_wire::{Instruction, Summed};
use ndarray::Array1;

use crate::collect::Collected;
use crate::mailbox::clear::Answer;
use crate::report::ModelScores;
use crate::run_error::RunError;

pub mod closed_form;
pub mod dp;
pub mod driver;
pub mod failure;
pub mod fedavg;
pub mod newton;
pub mod rounds;
#[cfg(test)]
mod tests;

/// A training algorithm: what the members compute each round, and what
/// the coordinator makes of their sum.
///
/// Methods are plain (not async): the [`driver`] does every wait, so an
/// algorithm is a state machine of its model that tests can drive with
/// sums of their own.
pub trait Algorithm: Send {
    /// The kind of answer a round collects; its sum is the same type in
    /// clear and under secure aggregation.
    type Answer: Answer + Summed<Sum = <Self::Answer as Answer>::Sum, Shape: Sized>;

    /// Whether each round is checkpointed, so that a restart resumes after
    /// the completed rounds. When false (one exact round), only the end of
    /// training is checkpointed and a restart runs the algorithm again.
    const CHECKPOINTS_ROUNDS: bool = true;

    /// The rounds planned: the bound of the round loop and the total of
    /// the progress line.
    fn rounds(&self) -> u32;

    /// What the members compute in `round`, from the current state;
    /// `None` when there is nothing more to compute.
    fn configure(&mut self, round: u32) -> Option<Work<Self::Answer>>;

    /// The checks `round`'s sum must pass before it is used (under secure
    /// aggregation: the weight unmasked with it against what is known). A
    /// refusal reaches [`Algorithm::aggregate`] as the step's failure.
    ///
    /// # Errors
    /// A sum that is wrong, from which no model may be made.
    fn check(&self, _round: u32, _sum: &CollectedBy<Self>) -> Result<(), RunError> {
        Ok(())
    }

    /// Absorbs `round`'s sum into the state, or decides what the step's
    /// failure means, and says how training goes on.
    ///
    /// # Errors
    /// A failure that ends the run (it is returned as is), or a sum the
    /// algorithm cannot use.
    fn aggregate(
        &mut self,
        round: u32,
        result: Result<CollectedBy<Self>, RunError>,
    ) -> Result<Control, RunError>;

    /// The current global model (the best one so far, for algorithms that
    /// may propose worse points): what each round checkpoints and what
    /// training ends with.
    fn model(&self) -> Array1<f64>;
}

/// What a closed step of algorithm `A` produced.
pub type CollectedBy<A> = Collected<
    <<A as Algorithm>::Answer as Answer>::Sum,
    <<A as Algorithm>::Answer as Answer>::Kept,
>;

/// One step an algorithm asks of the members: the instruction, and how its
/// answers are summed in clear (from `acc`) or read under secure
/// aggregation (with `shape`).
pub struct Work<K: Answer + Summed<Shape: Sized>> {
    /// The step as progress lines and timeouts name it ("round 3").
    pub what: String,
    /// What every member computes.
    pub instruction: Instruction,
    /// The clear running sum the answers are folded into.
    pub acc: K::Acc,
    /// The layout the securely aggregated sum is read with.
    pub shape: <K as Summed>::Shape,
}

/// What the round loop does after [`Algorithm::aggregate`].
#[derive(Debug)]
pub enum Control {
    /// The sum was absorbed: record the round and go on.
    Continue(Absorbed),
    /// The sum was absorbed: record the round, then stop training for the
    /// given reason.
    Stop(Absorbed, String),
    /// The step failed and is skipped: recorded with no contributor and
    /// this note; the model stays as it was.
    Skip(String),
    /// Training ends before this round for the given reason, with the
    /// model of the last completed round; nothing is recorded.
    End(String),
}

/// What the round's record says of an absorbed sum, besides what the
/// round loop knows itself (contributors, missing members, time).
#[derive(Debug)]
pub struct Absorbed {
    /// Mean training loss of the round's starting model (NaN when not
    /// released).
    pub train_loss: f64,
    /// The round's model on the held-out rows, when evaluated.
    pub held_out: Option<ModelScores>,
    /// What the algorithm did, when worth saying.
    pub note: Option<String>,
}
