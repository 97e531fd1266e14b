//! A site's privacy budget and what it has spent against it.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::DpError;

/// A validated (ε, δ) differential-privacy budget: `0 < ε < ∞`, `0 < δ < 1`.
///
/// Each site holds its own budget; the accountant refuses any round that
/// would take the site's spend past it. Deserialising checks the same
/// ranges as [`Budget::new`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BudgetFields")]
pub struct Budget {
    epsilon: f64,
    delta: f64,
}

/// The unchecked shape of a [`Budget`] on disk or in a config file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetFields {
    epsilon: f64,
    delta: f64,
}

impl TryFrom<BudgetFields> for Budget {
    type Error = DpError;

    fn try_from(fields: BudgetFields) -> Result<Self, DpError> {
        Budget::new(fields.epsilon, fields.delta)
    }
}

impl Budget {
    /// Checks and builds a budget.
    ///
    /// # Errors
    /// [`DpError::InvalidParameter`] naming `budget.epsilon` unless ε is
    /// finite and positive, or `budget.delta` unless `0 < δ < 1`.
    pub fn new(epsilon: f64, delta: f64) -> Result<Self, DpError> {
        if !(epsilon.is_finite() && epsilon > 0.0) {
            return Err(DpError::InvalidParameter {
                field: "budget.epsilon",
                expected: "a finite number > 0",
                got: epsilon,
            });
        }
        if !(delta > 0.0 && delta < 1.0) {
            return Err(DpError::InvalidParameter {
                field: "budget.delta",
                expected: "a number with 0 < δ < 1",
                got: delta,
            });
        }
        Ok(Self { epsilon, delta })
    }

    /// The ε the site may spend in total.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The δ at which ε is measured.
    pub fn delta(&self) -> f64 {
        self.delta
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(ε = {}, δ = {:e})", self.epsilon, self.delta)
    }
}

/// What a site has spent: the (ε, δ) guarantee of all rounds charged so far.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    /// Total ε, from the Rényi-DP accountant, at the budget's δ.
    pub epsilon: f64,
    /// The δ at which `epsilon` holds (the budget's δ).
    pub delta: f64,
    /// The number of rounds charged.
    pub rounds: u64,
}

impl fmt::Display for Spent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ε = {:.4} at δ = {:e} over {} round{}",
            self.epsilon,
            self.delta,
            self.rounds,
            if self.rounds == 1 { "" } else { "s" }
        )
    }
}
