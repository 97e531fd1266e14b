//! The per-site privacy accountant: what a site has spent, and the refusal
//! of any round that would take it past its budget.
//!
//! # Never forgetting a spend
//! A node must never release a noised update whose privacy cost it has not
//! durably recorded, or a crash and restart would let it spend the same
//! budget twice. [`Accountant::try_spend`] therefore takes the caller's
//! `record` step (typically: write the new [`AccountantState`] to disk and
//! fsync) and runs it *before* committing the spend in memory; only if it
//! succeeds does it hand back a [`Charge`], and noising an update for release
//! ([`super::DpConfig::privatise_site_update`]) consumes one. A crash after
//! recording and before sending costs the round's ε without using it, which
//! errs on the safe side.

use serde::{Deserialize, Serialize};

use super::analytic::analytic_gaussian_epsilon;
use super::budget::{Budget, Spent};
use super::calibrate::rounds_that_fit;
use super::error::DpError;
use super::rdp::{MAX_ROUNDS, epsilon_from_rho, gaussian_rho};

/// The persistent form of an [`Accountant`]: the budget and the noise
/// multiplier of every round charged, in order.
///
/// Storing each round rather than a running total keeps the record
/// auditable (it can be checked against the exchange log) and lets the
/// accountant recompute its total exactly, in the same order, on resume.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountantState {
    /// The site's budget.
    pub budget: Budget,
    /// The noise multiplier of each round charged, oldest first.
    pub noise_multipliers: Vec<f64>,
}

/// A site's Rényi-DP accountant for the Gaussian mechanism (every site in
/// every round; see [`super::rdp`] for the analysis).
///
/// Serialises as its [`AccountantState`]; deserialising validates it.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "AccountantState", into = "AccountantState")]
pub struct Accountant {
    budget: Budget,
    noise_multipliers: Vec<f64>,
    /// Σ 1/(2σᵢ²) over `noise_multipliers`, summed in order.
    rho: f64,
}

/// Proof that one round was charged to the accountant and recorded.
///
/// Only [`Accountant::try_spend`] makes one, and releasing a noised update
/// consumes it, so one charge pays for exactly one release.
#[derive(Debug, PartialEq)]
#[must_use = "a charge pays for releasing one noised update"]
pub struct Charge {
    round: u64,
    noise_multiplier: f64,
    spent: Spent,
}

impl Charge {
    /// The one-based number of the round charged (counted per accountant).
    pub fn round(&self) -> u64 {
        self.round
    }

    /// The noise multiplier the round was charged at.
    pub fn noise_multiplier(&self) -> f64 {
        self.noise_multiplier
    }

    /// The site's total spend including this round.
    pub fn spent(&self) -> Spent {
        self.spent
    }
}

impl Accountant {
    /// A fresh accountant with nothing spent.
    pub fn new(budget: Budget) -> Self {
        Self {
            budget,
            noise_multipliers: Vec::new(),
            rho: 0.0,
        }
    }

    /// Resumes from a persisted state, recomputing the total spend.
    ///
    /// A state whose spend already exceeds its budget is accepted (the
    /// budget may have been lowered); such an accountant refuses every
    /// further round.
    ///
    /// # Errors
    /// [`DpError::TooManyRounds`] for more than [`MAX_ROUNDS`] records;
    /// [`DpError::InvalidSpendRecord`] naming the first record that is not
    /// a finite positive noise multiplier.
    pub fn from_state(state: AccountantState) -> Result<Self, DpError> {
        let AccountantState {
            budget,
            noise_multipliers,
        } = state;
        let count = u64::try_from(noise_multipliers.len()).unwrap_or(u64::MAX);
        if count > MAX_ROUNDS {
            return Err(DpError::TooManyRounds {
                field: "accountant state noise_multipliers",
                got: count,
                limit: MAX_ROUNDS,
            });
        }
        let mut rho = 0.0;
        for (index, &sigma) in noise_multipliers.iter().enumerate() {
            rho += gaussian_rho(sigma)
                .map_err(|_| DpError::InvalidSpendRecord { index, got: sigma })?;
        }
        Ok(Self {
            budget,
            noise_multipliers,
            rho,
        })
    }

    /// The persistent form of this accountant.
    pub fn state(&self) -> AccountantState {
        AccountantState {
            budget: self.budget,
            noise_multipliers: self.noise_multipliers.clone(),
        }
    }

    /// The site's budget.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The number of rounds charged.
    pub fn rounds(&self) -> u64 {
        // Bounded by MAX_ROUNDS on every path that adds records.
        self.noise_multipliers.len() as u64
    }

    /// The noise multiplier of each round charged, oldest first.
    pub fn noise_multipliers(&self) -> &[f64] {
        &self.noise_multipliers
    }

    /// What the site has spent: the RDP-accounted ε at the budget's δ.
    pub fn spent(&self) -> Spent {
        self.spent_with_rho(self.rho)
    }

    /// The exact ε of the rounds charged so far (Balle & Wang 2018; see
    /// [`super::analytic`]), at the budget's δ: never more than
    /// [`Accountant::spent`], for summaries that show both.
    pub fn exact_epsilon(&self) -> f64 {
        if self.rho <= 0.0 {
            return 0.0;
        }
        // The rounds compose to one Gaussian with 1/s² = Σ 1/σᵢ² = 2ρ.
        let s = 1.0 / (2.0 * self.rho).sqrt();
        analytic_gaussian_epsilon(s, self.budget.delta()).unwrap_or(f64::INFINITY)
    }

    /// The ε the site would have spent after one more round at
    /// `noise_multiplier`. Changes nothing.
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] unless `noise_multiplier` is finite and
    /// positive.
    pub fn epsilon_after(&self, noise_multiplier: f64) -> Result<f64, DpError> {
        let rho = self.rho + gaussian_rho(noise_multiplier)?;
        Ok(epsilon_from_rho(rho, self.budget.delta()).epsilon)
    }

    /// Whether one more round at `noise_multiplier` would take the site past
    /// its budget. Changes nothing.
    ///
    /// # Errors
    /// As [`Accountant::epsilon_after`].
    pub fn would_exceed(&self, noise_multiplier: f64) -> Result<bool, DpError> {
        Ok(self.epsilon_after(noise_multiplier)? > self.budget.epsilon())
    }

    /// How many more rounds at `noise_multiplier` fit in the budget (up to
    /// floating-point rounding at the exact boundary).
    ///
    /// # Errors
    /// As [`Accountant::epsilon_after`].
    pub fn remaining_rounds(&self, noise_multiplier: f64) -> Result<u64, DpError> {
        let per_round = gaussian_rho(noise_multiplier)?;
        let room = MAX_ROUNDS.saturating_sub(self.rounds());
        Ok(rounds_that_fit(self.rho, per_round, &self.budget).min(room))
    }

    /// Charges one round at `noise_multiplier`, if it fits in the budget.
    ///
    /// `record` receives the state *including* the new round and must
    /// persist it durably; the spend is committed in memory only after it
    /// returns `Ok`. On any error nothing changes: [`Accountant::spent`] is
    /// as before, and no [`Charge`] exists to release an update with.
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] for a bad noise multiplier;
    /// [`DpError::TooManyRounds`] past [`MAX_ROUNDS`];
    /// [`DpError::BudgetExceeded`] with the spend, the refused round's ε and
    /// the budget; [`DpError::RecordFailed`] wrapping `record`'s error.
    pub fn try_spend<F, E>(&mut self, noise_multiplier: f64, record: F) -> Result<Charge, DpError>
    where
        F: FnOnce(&AccountantState) -> Result<(), E>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let rho = self.rho + gaussian_rho(noise_multiplier)?;
        let round = self.rounds() + 1;
        if round > MAX_ROUNDS {
            return Err(DpError::TooManyRounds {
                field: "accountant rounds",
                got: round,
                limit: MAX_ROUNDS,
            });
        }
        let after = self.spent_with_rho(rho);
        if after.epsilon > self.budget.epsilon() {
            return Err(DpError::BudgetExceeded {
                spent: self.spent(),
                requested_noise_multiplier: noise_multiplier,
                requested_epsilon: after.epsilon,
                budget: self.budget,
            });
        }
        let mut next = self.state();
        next.noise_multipliers.push(noise_multiplier);
        record(&next).map_err(|e| DpError::RecordFailed {
            round,
            source: e.into(),
        })?;
        self.noise_multipliers = next.noise_multipliers;
        self.rho = rho;
        Ok(Charge {
            round,
            noise_multiplier,
            spent: Spent {
                rounds: round,
                ..after
            },
        })
    }

    fn spent_with_rho(&self, rho: f64) -> Spent {
        let delta = self.budget.delta();
        let epsilon = if rho > 0.0 {
            epsilon_from_rho(rho, delta).epsilon
        } else {
            0.0
        };
        Spent {
            epsilon,
            delta,
            rounds: self.rounds(),
        }
    }
}

impl TryFrom<AccountantState> for Accountant {
    type Error = DpError;

    fn try_from(state: AccountantState) -> Result<Self, DpError> {
        Accountant::from_state(state)
    }
}

impl From<Accountant> for AccountantState {
    fn from(accountant: Accountant) -> Self {
        AccountantState {
            budget: accountant.budget,
            noise_multipliers: accountant.noise_multipliers,
        }
    }
}
