//! Differential-privacy settings of a task, what a member reports it has
//! spent, and its refusal of a round its own budget cannot pay for.

/// DP-FedAvg settings of a task: every member clips its round update to
/// `clip_norm`; noise of standard deviation `noise_multiplier x clip_norm`
/// protects the sum (see [`Task::member_dp_config`](crate::Task::member_dp_config) for
/// who adds it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DifferentialPrivacy {
    /// The noise multiplier σ each round is charged at.
    pub noise_multiplier: f64,
    /// The clip norm C (the sensitivity of the sum).
    pub clip_norm: f64,
}

/// What a member has spent of its own privacy budget, as it reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrivacySpend {
    /// The round charged.
    pub round: u32,
    /// The noise multiplier it was charged at.
    pub noise_multiplier: f64,
    /// Total ε after the round (Rényi-DP accountant).
    pub epsilon: f64,
    /// The δ at which `epsilon` holds.
    pub delta: f64,
    /// Rounds charged in total.
    pub rounds: u64,
    /// The member's ε budget.
    pub budget_epsilon: f64,
    /// Where the noise of the update this spend pays for was added: the
    /// member decides (its `[policy] trust_coordinator_noise`), and says so
    /// here so that the coordinator adds central noise only to a sum that
    /// holds an update clipped only ([`NoisePlacement::Central`]), never on
    /// top of updates already noised in full ([`NoisePlacement::Local`]).
    /// The coordinator takes the member's word: a member that claims noise
    /// it did not add exposes only its own rows, and one that claims less
    /// than it added costs only utility.
    ///
    /// [`NoisePlacement::Central`]: medfed_secure::dp::NoisePlacement::Central
    /// [`NoisePlacement::Local`]: medfed_secure::dp::NoisePlacement::Local
    pub placement: medfed_secure::dp::NoisePlacement,
}

/// A member declines a DP round its own budget cannot pay for, or a DP task
/// it has no budget for at all, and leaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BudgetRefusal {
    /// The step declined (0 before training).
    pub step: u64,
    /// The round declined (0 before training).
    pub round: u32,
    /// ε spent so far.
    pub spent_epsilon: f64,
    /// The δ at which the ε values hold.
    pub delta: f64,
    /// The total ε the round would have taken the member to.
    pub epsilon_after_round: f64,
    /// The member's ε budget.
    pub budget_epsilon: f64,
    /// Rounds charged so far.
    pub rounds_spent: u64,
    /// Why it declines. With [`RefusalReason::NoBudget`] every other field
    /// is 0.
    pub reason: RefusalReason,
}

/// Why a member declines a DP task or round. Exhaustive on purpose: the
/// wire encodes every reason, so a new one must be added there too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// One more round at the task's noise multiplier would take the member
    /// past its budget.
    BudgetSpent,
    /// The member has no privacy budget set, so it takes part in no DP task.
    NoBudget,
}

impl BudgetRefusal {
    /// The notice of a member that has no privacy budget set: it declines
    /// the task before training and says nothing else.
    pub fn no_budget() -> BudgetRefusal {
        BudgetRefusal {
            step: 0,
            round: 0,
            spent_epsilon: 0.0,
            delta: 0.0,
            epsilon_after_round: 0.0,
            budget_epsilon: 0.0,
            rounds_spent: 0,
            reason: RefusalReason::NoBudget,
        }
    }
}

impl std::fmt::Display for BudgetRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason {
            RefusalReason::BudgetSpent => write!(
                f,
                "its privacy budget ε = {} (δ = {:e}) is spent: ε = {:.4} after {} round{}, and \
                 one more round would take it to ε = {:.4}",
                self.budget_epsilon,
                self.delta,
                self.spent_epsilon,
                self.rounds_spent,
                if self.rounds_spent == 1 { "" } else { "s" },
                self.epsilon_after_round
            ),
            RefusalReason::NoBudget => f.write_str(
                "it has no privacy budget set, and a site takes part in a differential-privacy \
                 task only with an (ε, δ) budget of its own: the hospital sets one as `epsilon` \
                 and `delta` in the [privacy] table of its node file, or with `node run \
                 --dp-epsilon E --dp-delta D`",
            ),
        }
    }
}
