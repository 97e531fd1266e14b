//! Step numbering and the record of one training round, shared by every
//! phase, the checkpoint and the report.

/// Hands out strictly increasing step numbers.
#[derive(Debug, Default)]
pub struct StepCounter(u64);

impl StepCounter {
    /// A counter whose next step is `last + 1`: a restarted run continues
    /// past the steps it may already have published.
    pub fn after(last: u64) -> Self {
        Self(last)
    }

    /// The last step number handed out.
    pub fn current(&self) -> u64 {
        self.0
    }

    /// The next step number.
    pub fn next_step(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
}

/// One training round as the coordinator saw it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RoundRecord {
    /// 1-based round number.
    pub round: u32,
    /// Row-weighted mean training loss of the round's starting model.
    pub train_loss: f64,
    /// Members whose update was used.
    pub contributors: usize,
    /// Members that did not answer before the round's deadline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Time from announcing the round to having the next model, in ms.
    pub millis: f64,
    /// The round's model on the held-out rows, overall and per site (when
    /// evaluated this round).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_out: Option<crate::report::ModelScores>,
    /// What the solver did, when worth saying (backtracking, ridge).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}
