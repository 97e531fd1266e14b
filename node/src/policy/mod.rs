//! The hospital's own policy: what may be computed from its rows and what
//! may leave, whatever the coordinator asks. It is read from the `[policy]`
//! table of the node file, never from the coordinator, and its defaults are
//! the safe ones.
//!
//! Every check names its rule by the node-file key that sets it (`min_rows`,
//! `min_cell`, `columns`...), so a refusal tells the data steward which line
//! decides it, and the coordinator which rule it ran into; no refusal
//! carries a record value.
//!
//! # Layout
//! - this file: [`Policy`], its defaults and [`Refused`].
//! - `task`: the checks of a task at join, before anything is computed
//!   (columns, model, algorithm, privacy, pinning, approval, rows, cells).
//! - `cells`: the counts behind each design column a task would make on
//!   this site's rows.
//! - `gate`: the checks of every step on arrival and of the exact values
//!   about to leave (query budget, instructions the task never announced,
//!   cell counts, score bins merged to `min_cell`).
//! - `approval`: task hashes, and the file of approved ones.

mod approval;
mod cells;
mod gate;
mod task;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use approval::{ApprovedTasks, hex, task_sha256};
pub use gate::Gate;
pub use task::{TaskCheck, check_task};

use medfed_wire::TrainingAlgorithm;
use medfed_wire::message::Refusal;

/// The hospital's policy, with every default applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    /// `columns`: the only vault columns a task may use as feature or
    /// target (`None`: every column not flagged as a record identifier).
    pub columns: Option<Vec<String>>,
    /// `deny_columns`: columns no task may use.
    pub deny_columns: Vec<String>,
    /// `not_identifiers`: columns cleared of the record-identifier flag
    /// `node import` gives them.
    pub not_identifiers: Vec<String>,
    /// `algorithms`: how a task may train.
    pub algorithms: Vec<TrainingAlgorithm>,
    /// `models`: which model kinds a task may fit.
    pub models: Vec<medfed_model::ModelKind>,
    /// `require_secure_aggregation`: refuse tasks without it.
    pub require_secure_aggregation: bool,
    /// `require_dp`: refuse tasks without differential privacy.
    pub require_dp: bool,
    /// `min_noise_multiplier`: the least noise multiplier σ of a DP task.
    pub min_noise_multiplier: f64,
    /// `max_epsilon_per_round`: the most ε one DP round may cost this site
    /// (`None`: no cap beyond the site's budget).
    pub max_epsilon_per_round: Option<f64>,
    /// `trust_coordinator_noise`: in a DP task without secure aggregation,
    /// only clip the update and let the coordinator add the noise to the sum
    /// (central placement); `false` (the default) adds the full noise here,
    /// so every update that leaves is itself noised with the charged σ.
    pub trust_coordinator_noise: bool,
    /// `dp_unnoised`: what of a DP task may leave without noise besides
    /// nothing at all (the preprocessing statistics passes and the final
    /// evaluation); see [`DpUnnoised`].
    pub dp_unnoised: DpUnnoised,
    /// `min_rows`: the fewest rows behind any value that leaves.
    pub min_rows: u64,
    /// `min_cell`: the fewest rows behind any released count.
    pub min_cell: u64,
    /// `max_parameters_per_row`: the most model parameters per training row.
    pub max_parameters_per_row: f64,
    /// `max_score_bins`: the most score bins of an evaluation.
    pub max_score_bins: u32,
    /// `max_evaluations`: the most models scored on the held-out rows per
    /// task (a round's model evaluated with it counts one).
    pub max_evaluations: u32,
    /// `max_steps`: the most steps answered per task.
    pub max_steps: u32,
    /// `coordinator`: the SHA-256 of the coordinator certificate's DER the
    /// node connects to (`None`: any certificate the consortium CA issued
    /// for the server name).
    pub coordinator: Option<[u8; 32]>,
    /// `members`: the members this hospital agreed to federate with
    /// (`None`: any the coordinator lists).
    pub members: Option<Vec<String>>,
    /// `member_certificates`: by member, the SHA-256 of the certificate it
    /// must present in a secure-aggregation roster.
    pub member_certificates: BTreeMap<String, [u8; 32]>,
    /// `min_threshold`: the least secure-aggregation threshold, as a
    /// fraction of the members (of the task at join, of the roster at each
    /// round).
    pub min_threshold: Fraction,
    /// `require_pinning`: refuse to start unless `coordinator` and
    /// `members` are set.
    pub require_pinning: bool,
    /// `approved_tasks`: the file of approved task hashes (`None`: tasks
    /// need no approval).
    pub approved_tasks: Option<PathBuf>,
}

/// What a differential-privacy task may release without noise: the
/// preprocessing statistics passes (counts, sums, ranges, histograms) and
/// the final evaluation's held-out counts, which DP-FedAvg's ε does not
/// cover. Whatever the choice, a DP task never gets Newton or
/// normal-equation terms, a site-alone model, per-site evaluation counts in
/// clear or a training round's held-out counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DpUnnoised {
    /// `"secure-sums"` (the default): only securely summed, so the
    /// coordinator sees totals over at least the threshold's members, never
    /// this site's own figures.
    #[default]
    SecureSums,
    /// `"never"`: nothing un-noised leaves; the site answers a DP task's
    /// training rounds only.
    Never,
    /// `"clear-statistics"`: as `secure-sums`, and the statistics passes in
    /// clear too (this site's own counts, sums and ranges, still gated by
    /// `min_rows` and `min_cell`), for a coordinator the hospital trusts
    /// with them.
    ClearStatistics,
}

impl DpUnnoised {
    /// Every value, in the order the node file documents them.
    pub const ALL: [DpUnnoised; 3] = [
        DpUnnoised::SecureSums,
        DpUnnoised::Never,
        DpUnnoised::ClearStatistics,
    ];

    /// Its name in the node file.
    pub fn name(self) -> &'static str {
        match self {
            DpUnnoised::SecureSums => "secure-sums",
            DpUnnoised::Never => "never",
            DpUnnoised::ClearStatistics => "clear-statistics",
        }
    }

    /// The value of that name.
    pub fn from_name(name: &str) -> Option<DpUnnoised> {
        DpUnnoised::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Whether it lets the statistics passes or the final evaluation leave
    /// securely summed (`masked`) or in clear.
    pub fn allows(self, statistics: bool, masked: bool) -> bool {
        match self {
            DpUnnoised::Never => false,
            DpUnnoised::SecureSums => masked,
            DpUnnoised::ClearStatistics => masked || statistics,
        }
    }
}

/// `min_rows` by default, as vantage6's minimum.
pub const DEFAULT_MIN_ROWS: u64 = 10;
/// `min_cell` by default, as vantage6's minimum per category.
pub const DEFAULT_MIN_CELL: u64 = 5;
/// `max_parameters_per_row` by default, DataSHIELD's `nfilter.glm`.
pub const DEFAULT_MAX_PARAMETERS_PER_ROW: f64 = 0.33;
/// `max_score_bins` by default: the evaluation's own default bins.
pub const DEFAULT_MAX_SCORE_BINS: u32 = 10_000;
/// `max_evaluations` by default.
pub const DEFAULT_MAX_EVALUATIONS: u32 = 100;
/// `max_steps` by default.
pub const DEFAULT_MAX_STEPS: u32 = 2_000;

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            columns: None,
            deny_columns: Vec::new(),
            not_identifiers: Vec::new(),
            algorithms: TrainingAlgorithm::ALL.to_vec(),
            models: medfed_model::ModelKind::ALL.to_vec(),
            require_secure_aggregation: false,
            require_dp: false,
            min_noise_multiplier: 0.0,
            max_epsilon_per_round: None,
            trust_coordinator_noise: false,
            dp_unnoised: DpUnnoised::SecureSums,
            min_rows: DEFAULT_MIN_ROWS,
            min_cell: DEFAULT_MIN_CELL,
            max_parameters_per_row: DEFAULT_MAX_PARAMETERS_PER_ROW,
            max_score_bins: DEFAULT_MAX_SCORE_BINS,
            max_evaluations: DEFAULT_MAX_EVALUATIONS,
            max_steps: DEFAULT_MAX_STEPS,
            coordinator: None,
            members: None,
            member_certificates: BTreeMap::new(),
            min_threshold: Fraction::TWO_THIRDS,
            require_pinning: false,
            approved_tasks: None,
        }
    }
}

impl Policy {
    /// What is not pinned, in words, for the warning at `node config check`
    /// and at join (empty when both are).
    pub fn unpinned(&self) -> Vec<&'static str> {
        let mut unpinned = Vec::new();
        if self.coordinator.is_none() {
            unpinned.push("the coordinator's certificate ([policy] coordinator)");
        }
        if self.members.is_none() {
            unpinned.push("the members ([policy] members)");
        }
        unpinned
    }
}

/// A fraction p/q of the members, more than one half and at most all: the
/// least share of a roster the secure-aggregation threshold must reach.
///
/// Bonawitz et al. (2017) prove their protocol against a coordinator that
/// deviates from it (tells members different dropped sets, forges who
/// survived) only for a threshold t ≥ ⌈2n/3⌉ of n members; more than n/2
/// covers a coordinator that follows the protocol. The default is 2/3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    numerator: u32,
    denominator: u32,
}

impl Fraction {
    /// Two thirds, the default.
    pub const TWO_THIRDS: Fraction = Fraction {
        numerator: 2,
        denominator: 3,
    };

    /// p/q, when it is more than 1/2 and at most 1 (`None` otherwise).
    pub fn new(numerator: u32, denominator: u32) -> Option<Fraction> {
        let (p, q) = (u64::from(numerator), u64::from(denominator));
        (q > 0 && 2 * p > q && p <= q).then_some(Fraction {
            numerator,
            denominator,
        })
    }

    /// The least threshold for `members` members: ⌈p·n/q⌉, in integers.
    pub fn floor(&self, members: usize) -> u64 {
        let (p, q) = (u64::from(self.numerator), u64::from(self.denominator));
        p.saturating_mul(members as u64).div_ceil(q)
    }
}

impl std::fmt::Display for Fraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.numerator, self.denominator)
    }
}

/// Why the node refuses a task or a step: the rule (a `[policy]` key, or a
/// data reason) and what it found, in words that hold no record value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("refused by rule `{rule}`: {reason}")]
pub struct Refused {
    /// The step refused (0: the task itself).
    pub step: u64,
    /// The rule.
    pub rule: &'static str,
    /// Why, sent to the coordinator as it is.
    pub reason: String,
}

/// The data reasons a site cannot take part for (its exit status is the
/// data one, not the policy one).
pub const DATA_RULES: &[&str] = &["missing_column", "invalid_labels", "no_training_rows"];

impl Refused {
    /// A refusal of the task itself by `rule`.
    pub fn task(rule: &'static str, reason: impl Into<String>) -> Refused {
        Refused {
            step: 0,
            rule,
            reason: reason.into(),
        }
    }

    /// The same refusal, of `step`.
    pub fn at(self, step: u64) -> Refused {
        Refused { step, ..self }
    }

    /// Whether it is for a data reason rather than the hospital's policy.
    pub fn is_data_reason(&self) -> bool {
        DATA_RULES.contains(&self.rule)
    }

    /// The notice sent to the coordinator.
    pub fn notice(&self) -> Refusal {
        Refusal::new(self.step, self.rule, &self.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::Fraction;

    #[test]
    fn the_threshold_floor_rounds_up_and_the_fraction_stays_above_one_half() {
        let two_thirds = Fraction::TWO_THIRDS;
        let floors: Vec<u64> = (1..=7).map(|n| two_thirds.floor(n)).collect();
        assert_eq!(floors, [1, 2, 2, 3, 4, 4, 5]);
        let three_fifths = Fraction::new(3, 5).expect("3/5");
        assert_eq!(three_fifths.floor(5), 3);
        assert_eq!(Fraction::new(1, 1).expect("1").floor(4), 4);
        for (p, q) in [(1, 2), (2, 4), (1, 3), (4, 3), (0, 1), (1, 0)] {
            assert_eq!(Fraction::new(p, q), None, "{p}/{q}");
        }
        assert_eq!(two_thirds.to_string(), "2/3");
    }
}
