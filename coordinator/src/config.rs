//! The operator's task file (TOML): what to train, on which members, how.
//!
//! Unknown keys are refused, and every value is checked before anything
//! starts, with an error that names the key and what is allowed.
//!
//! The checked [`TaskConfig`] and its reading are here; the rest is in
//! one file each: the error and its placing (`error`, `locate`), the TOML
//! tables (`file`), the training and algorithm rules (`training`), the
//! privacy rules (`privacy`), and the summary `config check` prints
//! (`summary`).

use std::path::Path;
use std::time::Duration;

use medfed_wire::Task;

mod error;
mod file;
mod locate;
mod privacy;
mod summary;
#[cfg(test)]
mod tests;
mod training;

pub use error::ConfigError;
pub use privacy::{DEFAULT_FIXED_POINT_BITS, FailedRound, REFERENCE_DELTA, default_threshold};
pub use summary::reference_cost;
pub use training::{Aggregation, Algorithm, EXACT_MAX_PARAMETERS};

use file::TaskFile;

/// A checked task configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskConfig {
    /// The task as sent to members.
    pub task: Task,
    /// Also train each site alone and compare.
    pub baselines: bool,
    /// How long to wait for every member to join.
    pub join_timeout: Duration,
    /// How long to wait for every answer to one step: after this deadline a
    /// step closes if at least `quorum` members answered.
    pub step_timeout: Duration,
    /// Fewest answers a step may close with at its deadline.
    pub quorum: usize,
    /// How updates are combined.
    pub aggregation: Aggregation,
    /// Share dropped at each end by the trimmed mean.
    pub trim_fraction: f64,
    /// Updates longer than this are scaled down to it before combining.
    pub clip_norm: Option<f64>,
    /// Updates longer than this are refused outright.
    pub max_update_norm: Option<f64>,
    /// The fitting algorithm (never `Auto`: resolved when the file is read).
    pub algorithm: Algorithm,
    /// FedProx proximal weight (0 unless the algorithm is FedProx).
    pub prox_mu: f64,
    /// Training stops early when the largest parameter change of a round,
    /// or the gradient norm (Newton), falls below this, or the relative
    /// change of the objective below a hundredth of it.
    pub tolerance: f64,
    /// Score the round's model on the held-out rows every this many rounds
    /// (0: only after training).
    pub evaluate_every: u32,
    /// Under secure aggregation: what a training round that cannot be
    /// summed does to the run.
    pub failed_round: FailedRound,
}

impl TaskConfig {
    /// The aggregation strategy this configuration asks for.
    ///
    /// # Errors
    /// A `trim_fraction` or `clip_norm` out of range (checked already when
    /// the configuration comes from a task file), naming the key.
    pub fn strategy(&self) -> Result<Box<dyn medfed_aggregate::Strategy>, ConfigError> {
        use medfed_aggregate::{FedAvg, Median, NormClip, Strategy, TrimmedMean};
        let invalid = |key: &str, value: f64| ConfigError::Invalid {
            path: "(task)".into(),
            line: None,
            key: key.into(),
            problem: format!("{value} is out of range"),
        };
        let clipped = |s: Box<dyn Strategy>| -> Result<Box<dyn Strategy>, ConfigError> {
            match self.clip_norm {
                Some(c) => NormClip::new(s, c)
                    .map(|clipping| Box::new(clipping) as Box<dyn Strategy>)
                    .map_err(|v| invalid("training.clip_norm", v)),
                None => Ok(s),
            }
        };
        match self.aggregation {
            Aggregation::Fedavg => clipped(Box::new(FedAvg)),
            Aggregation::Median => clipped(Box::new(Median)),
            Aggregation::TrimmedMean => clipped(Box::new(
                TrimmedMean::new(self.trim_fraction)
                    .map_err(|v| invalid("training.trim_fraction", v))?,
            )),
        }
    }
}

impl TaskConfig {
    /// Reads and checks a task file.
    ///
    /// # Errors
    /// The file is unreadable, not TOML, has an unknown key, or a value out of
    /// range; the error names the file and the key.
    pub fn load(path: &Path) -> Result<TaskConfig, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses and checks task-file text; `path` is only used in errors.
    ///
    /// # Errors
    /// See [`TaskConfig::load`].
    pub fn parse(text: &str, path: &str) -> Result<TaskConfig, ConfigError> {
        let file: TaskFile =
            toml::from_str(text).map_err(|e| error::parse_error(text, path, &e))?;
        let invalid = |key: &str, problem: String| ConfigError::Invalid {
            path: path.to_owned(),
            line: locate::line_of(text, key),
            key: key.to_owned(),
            problem,
        };
        let TaskFile {
            task,
            columns: specs,
            training,
            evaluation,
            timeouts,
            privacy,
        } = file;
        for (i, spec) in specs.iter().enumerate() {
            if !task.features.contains(&spec.name) {
                return Err(invalid(
                    &format!("columns[{i}].name"),
                    format!("{:?} is not one of task.features", spec.name),
                ));
            }
            if specs[..i].iter().any(|s| s.name == spec.name) {
                return Err(invalid(
                    &format!("columns[{i}].name"),
                    format!("{:?} is specified twice", spec.name),
                ));
            }
            spec.validate()
                .map_err(|e| invalid(&format!("columns[{i}] ({})", spec.name), e.to_string()))?;
        }
        let columns: Vec<medfed_model::ColumnSpec> = task
            .features
            .iter()
            .map(|f| {
                specs
                    .iter()
                    .find(|s| &s.name == f)
                    .cloned()
                    .unwrap_or_else(|| medfed_model::ColumnSpec::numeric(f.clone()))
            })
            .collect();
        for (key, names) in [
            ("task.members", &task.members),
            ("task.features", &task.features),
        ] {
            let mut seen = std::collections::BTreeSet::new();
            if let Some(dup) = names.iter().find(|n| !seen.insert(n.as_str())) {
                return Err(invalid(key, format!("lists {dup:?} twice")));
            }
        }
        for (key, seconds) in [
            ("timeouts.join_seconds", timeouts.join_seconds),
            ("timeouts.step_seconds", timeouts.step_seconds),
        ] {
            if !(1..=86_400).contains(&seconds) {
                return Err(invalid(
                    key,
                    format!("{seconds} is out of range 1 to 86400"),
                ));
            }
        }
        let secure_aggregation = privacy::privacy_settings(&privacy, task.members.len(), &invalid)?;
        let differential_privacy = privacy::dp_settings(&privacy, &invalid)?;
        // A DP site releases nothing un-noised with a training round: the
        // rounds of a DP task ask for no held-out counts.
        let evaluate_every = if differential_privacy.is_some() {
            0
        } else {
            evaluation.every_rounds
        };
        let mut task = Task {
            task_id: task.id,
            features: task.features,
            columns,
            target: task.target,
            model: task.model,
            l2: training.l2,
            local_steps: training.local_steps,
            learning_rate: training.learning_rate,
            holdout_fraction: evaluation.holdout_fraction,
            split_seed: evaluation.split_seed,
            rounds: training.rounds,
            score_bins: evaluation.score_bins,
            members: task.members,
            secure_aggregation,
            differential_privacy,
            // Set below, once resolved; FedAvg passes every check that
            // needs the rest of the task first.
            algorithm: medfed_wire::TrainingAlgorithm::Fedavg,
            baselines: evaluation.baselines,
            evaluate_every,
        };
        medfed_wire::convert::validate_task(&task)
            .map_err(|e| invalid(&error::file_key(e.field().unwrap_or("task")), e.to_string()))?;
        let quorum = training::check_training(&training, task.members.len(), &invalid)?;
        let algorithm = training::resolve_algorithm(&training, &task, &invalid)?;
        task.algorithm = algorithm.announced();
        privacy::check_privacy(&privacy, &training, &evaluation, &task, algorithm, &invalid)?;
        Ok(TaskConfig {
            algorithm,
            prox_mu: if algorithm == Algorithm::Fedprox {
                training.prox_mu
            } else {
                0.0
            },
            tolerance: training.tolerance,
            evaluate_every,
            failed_round: privacy.failed_round.unwrap_or_default(),
            task,
            baselines: evaluation.baselines,
            join_timeout: Duration::from_secs(timeouts.join_seconds),
            step_timeout: Duration::from_secs(timeouts.step_seconds),
            quorum,
            aggregation: training.aggregation,
            trim_fraction: training.trim_fraction,
            clip_norm: training.clip_norm,
            max_update_norm: training.max_update_norm,
        })
    }
}
