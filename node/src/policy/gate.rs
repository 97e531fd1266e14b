//! The gate every step passes: on arrival, before anything is computed
//! ([`Gate::admit`]: the query budget, and instructions the task never
//! announced), and on the exact values about to leave ([`Gate::answer`]:
//! rows behind each value, category counts, score and histogram bins merged
//! until every non-empty cell holds `min_cell` rows, held-out counts withheld
//! when they cannot be). Both the clear and the securely aggregated paths
//! compute through [`Gate::answer`], so no value is formed past it.

use std::collections::BTreeSet;

use medfed_model::preprocess::{ColumnHistogram, ColumnSummary, Encoding};
use medfed_model::{CalibrationCounts, ColumnSpec, EvaluationCounts, FittedPreprocessor};
use medfed_wire::{Instruction, Step, Submission, Task, TrainingAlgorithm};

use super::cells::side_ok;
use super::{Policy, Refused};
use crate::data::SiteData;
use crate::work::Answer;

/// The policy applied step by step, with what the task has used of its
/// query budget so far.
#[derive(Debug)]
pub struct Gate {
    policy: Policy,
    /// Steps answered (a step asked again after a lost connection counts
    /// once).
    steps: BTreeSet<u64>,
    /// Steps whose held-out counts were counted.
    evaluated: BTreeSet<u64>,
    /// Models scored on the held-out rows so far.
    evaluations: u64,
    /// Why no held-out counts leave in this task, if so.
    withhold_held_out: Option<String>,
}

impl Gate {
    /// A gate applying `policy` to one task.
    pub fn new(policy: Policy) -> Gate {
        Gate {
            policy,
            steps: BTreeSet::new(),
            evaluated: BTreeSet::new(),
            evaluations: 0,
            withhold_held_out: None,
        }
    }

    /// No held-out counts leave in this task, for `why` (the task check
    /// found a held-out patient alone in a design column).
    pub fn withhold_held_out(&mut self, why: String) {
        self.withhold_held_out = Some(why);
    }

    /// The policy it applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Checks `step` on arrival, before anything is computed for it.
    ///
    /// # Errors
    /// [`Refused`] by `max_steps`, `max_evaluations`, or `task` for an
    /// instruction the task did not announce (another algorithm, a round
    /// past the last, a site-alone model it did not ask for or in a DP
    /// task, preprocessing other than the task's columns).
    pub fn admit(&mut self, task: &Task, step: &Step) -> Result<(), Refused> {
        if matches!(
            step.instruction,
            Instruction::Wait | Instruction::Finished { .. }
        ) {
            return Ok(());
        }
        if self.steps.insert(step.step)
            && self.steps.len() as u64 > u64::from(self.policy.max_steps)
        {
            return Err(Refused::task(
                "max_steps",
                format!(
                    "the task asks for more than max_steps = {} steps",
                    self.policy.max_steps
                ),
            )
            .at(step.step));
        }
        self.instruction(task, step.step, &step.instruction)
            .map_err(|refused| refused.at(step.step))
    }

    fn instruction(
        &mut self,
        task: &Task,
        step: u64,
        instruction: &Instruction,
    ) -> Result<(), Refused> {
        let unannounced = |what: &str| {
            Refused::task(
                "task",
                format!(
                    "the coordinator asked for {what}, which the task (a {} model trained by {}{}) \
                     did not announce",
                    task.model,
                    task.algorithm,
                    if task.differential_privacy.is_some() {
                        " with differential privacy"
                    } else {
                        ""
                    }
                ),
            )
        };
        let in_rounds = |round: u32| {
            if (1..=task.rounds).contains(&round) {
                Ok(())
            } else {
                Err(unannounced(&format!("round {round} of {}", task.rounds)))
            }
        };
        match instruction {
            Instruction::CollectStatistics
            | Instruction::CollectHistograms { .. }
            | Instruction::Wait
            | Instruction::Finished { .. }
            | Instruction::SecAggShares { .. }
            | Instruction::SecAggMask { .. }
            | Instruction::SecAggCheck { .. }
            | Instruction::SecAggUnmask { .. } => Ok(()),
            Instruction::SecAggKeys { work, .. } => self.instruction(task, step, work),
            Instruction::Train {
                round,
                preprocessing,
                prox_mu,
                evaluate,
                ..
            } => {
                match task.algorithm {
                    TrainingAlgorithm::Fedavg if *prox_mu != 0.0 => {
                        return Err(unannounced("a FedProx round"));
                    }
                    TrainingAlgorithm::Fedavg | TrainingAlgorithm::Fedprox => {}
                    _ => return Err(unannounced("a FedAvg round")),
                }
                in_rounds(*round)?;
                if *evaluate && task.evaluate_every == 0 {
                    return Err(unannounced("held-out counts with a round"));
                }
                self.preprocessing(task, preprocessing)?;
                self.evaluating(step, *evaluate, 1)
            }
            Instruction::Newton {
                round,
                preprocessing,
                evaluate,
                ..
            } => {
                if task.algorithm != TrainingAlgorithm::Newton {
                    return Err(unannounced(
                        "Newton terms (loss, gradient and Hessian sums)",
                    ));
                }
                in_rounds(*round)?;
                if *evaluate && task.evaluate_every == 0 {
                    return Err(unannounced("held-out counts with a round"));
                }
                self.preprocessing(task, preprocessing)?;
                self.evaluating(step, *evaluate, 1)
            }
            Instruction::Normal { preprocessing } => {
                if task.algorithm != TrainingAlgorithm::ClosedForm {
                    return Err(unannounced("normal-equation terms (X'X, X'y)"));
                }
                self.preprocessing(task, preprocessing)
            }
            Instruction::Baseline { preprocessing, .. } => {
                if !task.baselines || task.differential_privacy.is_some() {
                    return Err(unannounced("a model trained on this site's rows alone"));
                }
                self.preprocessing(task, preprocessing)
            }
            Instruction::Evaluate {
                preprocessing,
                models,
            } => {
                self.preprocessing(task, preprocessing)?;
                self.evaluating(step, true, models.len() as u64)
            }
        }
    }

    /// Counts `models` scored on the held-out rows at `step` (once per step).
    fn evaluating(&mut self, step: u64, evaluate: bool, models: u64) -> Result<(), Refused> {
        if !evaluate || !self.evaluated.insert(step) {
            return Ok(());
        }
        self.evaluations += models;
        if self.evaluations > u64::from(self.policy.max_evaluations) {
            return Err(Refused::task(
                "max_evaluations",
                format!(
                    "the task asks to score more than max_evaluations = {} models on this site's \
                     held-out rows",
                    self.policy.max_evaluations
                ),
            ));
        }
        Ok(())
    }

    /// The preprocessing of an instruction must be the task's: the same
    /// columns, unknown-value codes, indicators and categories (only the
    /// fitted fill, centre and scale come from the coordinator).
    fn preprocessing(&self, task: &Task, fitted: &FittedPreprocessor) -> Result<(), Refused> {
        match matches_specs(fitted, &task.columns) {
            Ok(()) => Ok(()),
            Err(what) => Err(Refused::task(
                "task",
                format!("the coordinator sent a preprocessing that is not the task's: {what}"),
            )),
        }
    }

    /// Computes the answer to `step` and checks the exact values about to
    /// leave; `notes` says what was coarsened or withheld.
    ///
    /// # Errors
    /// What the computation refuses, or [`Refused`] (in the chain) by
    /// `min_rows` or `min_cell`.
    pub fn answer(
        &self,
        site: &mut SiteData,
        task: &Task,
        step: &Step,
        notes: &mut Vec<String>,
    ) -> anyhow::Result<Answer> {
        let mut answer = crate::work::answer(site, task, step)?;
        if let Answer::Send(submission) = &mut answer {
            self.release(task, submission, notes)
                .map_err(|refused| refused.at(step.step))?;
        }
        Ok(answer)
    }

    /// Checks (and coarsens) `submission`, the exact values about to leave.
    ///
    /// # Errors
    /// [`Refused`] by `min_rows` (fewer rows behind a value) or `min_cell`
    /// (a category or histogram count that cannot be merged to it).
    pub fn release(
        &self,
        task: &Task,
        submission: &mut Submission,
        notes: &mut Vec<String>,
    ) -> Result<(), Refused> {
        match submission {
            Submission::Statistics(report) => {
                self.rows(report.train_rows, "column statistics")?;
                self.summaries(&task.columns, &report.summaries)
            }
            Submission::Histograms(report) => self.histograms(&mut report.histograms),
            Submission::Update(update) => {
                self.rows(update.num_rows, "a training update")?;
                self.held_out(task, update.evaluation.as_mut(), notes)
            }
            Submission::Newton(report) => {
                self.rows(report.terms.n, "Newton terms")?;
                self.held_out(task, report.evaluation.as_mut(), notes)
            }
            Submission::Normal(report) => self.rows(report.terms.n, "normal-equation terms"),
            Submission::Baseline(model) => self.rows(model.num_rows, "a site-alone model"),
            Submission::Evaluation(report) => {
                for counts in &mut report.models {
                    self.held_out(task, Some(counts), notes)?;
                }
                for calibration in &mut report.calibration {
                    self.calibration(calibration, notes);
                }
                Ok(())
            }
            Submission::SecAgg(_) | Submission::BudgetRefusal(_) | Submission::Refusal(_) => Ok(()),
        }
    }

    /// Checks the two parts of the second statistics pass under secure
    /// aggregation (column sums and median histograms).
    ///
    /// # Errors
    /// As [`Gate::release`].
    pub fn release_moments(
        &self,
        task: &Task,
        rows: u64,
        summaries: &[ColumnSummary],
        histograms: &mut [Option<ColumnHistogram>],
    ) -> Result<(), Refused> {
        self.rows(rows, "column statistics")?;
        self.summaries(&task.columns, summaries)?;
        self.histograms(histograms)
    }

    fn rows(&self, rows: u64, what: &str) -> Result<(), Refused> {
        if rows >= self.policy.min_rows {
            return Ok(());
        }
        Err(Refused::task(
            "min_rows",
            format!(
                "{what} would be computed from fewer rows than min_rows = {}",
                self.policy.min_rows
            ),
        ))
    }

    fn summaries(&self, specs: &[ColumnSpec], summaries: &[ColumnSummary]) -> Result<(), Refused> {
        let min_cell = self.policy.min_cell;
        for (spec, summary) in specs.iter().zip(summaries) {
            if let Some(i) = summary
                .category_counts
                .iter()
                .position(|count| !side_ok(*count, min_cell))
            {
                let code = spec
                    .categories
                    .as_ref()
                    .and_then(|codes| codes.get(i))
                    .map_or_else(|| format!("#{}", i + 1), ToString::to_string);
                return Err(Refused::task(
                    "min_cell",
                    format!(
                        "the count of category {code} of column `{}` would be between 1 and {}, \
                         fewer than min_cell = {min_cell}",
                        spec.name,
                        min_cell - 1
                    ),
                ));
            }
        }
        Ok(())
    }

    fn histograms(&self, histograms: &mut [Option<ColumnHistogram>]) -> Result<(), Refused> {
        for histogram in histograms.iter_mut().flatten() {
            let min_cell = self.policy.min_cell;
            histogram
                .coarsen(min_cell)
                .and_then(|()| histogram.check_cells(min_cell))
                .map_err(|e| {
                    Refused::task(
                        "min_cell",
                        format!("a column histogram cannot be merged to min_cell: {e}"),
                    )
                })?;
        }
        Ok(())
    }

    /// Held-out counts about to leave: merged to `min_cell`, or withheld
    /// (sent as the counts of no rows) when they come from fewer than
    /// `min_rows` rows or a class or confusion cell cannot be merged.
    fn held_out(
        &self,
        task: &Task,
        counts: Option<&mut EvaluationCounts>,
        notes: &mut Vec<String>,
    ) -> Result<(), Refused> {
        let Some(counts) = counts else {
            return Ok(());
        };
        let rows = counts.rows();
        if rows == 0 {
            return Ok(());
        }
        let withheld = if let Some(why) = &self.withhold_held_out {
            Some(why.clone())
        } else if rows < self.policy.min_rows {
            Some(format!(
                "held-out counts withheld: fewer held-out rows than min_rows = {}",
                self.policy.min_rows
            ))
        } else {
            match counts {
                EvaluationCounts::Binary(binary) => binary
                    .coarsen(self.policy.min_cell)
                    .and_then(|()| binary.check_cells(self.policy.min_cell))
                    .err()
                    .map(|e| format!("held-out counts withheld by min_cell: {e}")),
                _ => None,
            }
        };
        if let Some(note) = withheld {
            // The counts of no rows, in the same layout; counts that cannot
            // be emptied do not leave either.
            let bins = counts.as_binary().map_or(0, |b| b.pos_hist.len());
            *counts = EvaluationCounts::empty(task.model, bins).map_err(|e| {
                Refused::task(
                    "min_cell",
                    format!("held-out counts can be neither released nor withheld: {e}"),
                )
            })?;
            notes.push(note);
        }
        Ok(())
    }

    fn calibration(&self, calibration: &mut CalibrationCounts, notes: &mut Vec<String>) {
        let rows: u64 = calibration.count.iter().sum();
        if rows == 0 {
            return;
        }
        let min_cell = self.policy.min_cell;
        let withheld = self.withhold_held_out.is_some()
            || rows < self.policy.min_rows
            || calibration
                .coarsen(min_cell)
                .and_then(|()| calibration.check_cells(min_cell))
                .is_err();
        if withheld {
            // Zeros in every bin: the layout stays the one the (secure)
            // sum expects.
            let bins = calibration.count.len();
            *calibration = CalibrationCounts {
                count: vec![0; bins],
                prediction_sum: vec![0.0; bins],
                label_sum: vec![0; bins],
            };
            notes.push(format!(
                "calibration counts withheld: they cannot hold min_cell = {} rows in every bin",
                self.policy.min_cell
            ));
        }
    }
}

/// Whether `fitted` is the preprocessing of `specs`, but for the fitted
/// scalings.
fn matches_specs(fitted: &FittedPreprocessor, specs: &[ColumnSpec]) -> Result<(), String> {
    if fitted.columns.len() != specs.len() {
        return Err(format!(
            "{} columns where the task has {}",
            fitted.columns.len(),
            specs.len()
        ));
    }
    for (column, spec) in fitted.columns.iter().zip(specs) {
        let name = &spec.name;
        if column.name != *name {
            return Err(format!(
                "column `{}` where the task has `{name}`",
                column.name
            ));
        }
        if column.unknown_values != spec.unknown_values {
            return Err(format!("other unknown-value codes for column `{name}`"));
        }
        if column.missing_indicator != spec.missing_indicator {
            return Err(format!("another missing indicator for column `{name}`"));
        }
        let same = match (&column.encoding, &spec.categories) {
            (Encoding::Numeric(_), None) => true,
            (Encoding::Categorical { codes, .. }, Some(categories)) => codes == categories,
            _ => false,
        };
        if !same {
            return Err(format!("another encoding (categories) for column `{name}`"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use medfed_model::{CalibrationCounts, EvaluationCounts, ModelKind};
    use medfed_wire::{EvaluationReport, Submission};
    use ndarray::{Array1, Array2};

    use super::*;

    fn task() -> Task {
        Task {
            task_id: "t".into(),
            features: vec!["a".into()],
            columns: vec![ColumnSpec::numeric("a")],
            target: "y".into(),
            model: ModelKind::Logistic,
            l2: 0.0,
            local_steps: 1,
            learning_rate: 0.1,
            holdout_fraction: 0.25,
            split_seed: 1,
            rounds: 3,
            score_bins: 10,
            members: vec!["h".into()],
            secure_aggregation: None,
            differential_privacy: None,
            algorithm: TrainingAlgorithm::Fedavg,
            baselines: false,
            evaluate_every: 1,
        }
    }

    /// Held-out counts of 20 rows of which 2 are negatives: no merging can
    /// hide a class of 2, so they leave as the counts of no rows, in the
    /// same layout (the secure sum needs it), calibration included.
    #[test]
    fn withheld_counts_are_zeros_in_the_layout_of_the_counts_they_replace() {
        let task = task();
        let x = Array2::from_shape_fn((20, 1), |(i, _)| i as f64 / 10.0 - 1.0);
        let y = Array1::from_iter((0..20).map(|i| if i < 2 { 0.0 } else { 1.0 }));
        let params = Array1::from(vec![0.5, 1.0]);
        let counts =
            medfed_model::evaluate(task.model, x.view(), y.view(), params.view(), 10).unwrap();
        let scores = medfed_model::predict(task.model, x.view(), params.view()).unwrap();
        let calibration = CalibrationCounts::from_scores(scores.view(), y.view()).unwrap();
        let flat = |c: &EvaluationCounts| {
            let mut out = Vec::new();
            c.write_flat(&mut out);
            out
        };
        let before = flat(&counts);
        let mut sent = Submission::Evaluation(EvaluationReport {
            step: 4,
            models: vec![counts],
            calibration: vec![calibration.clone()],
        });
        let mut notes = Vec::new();
        Gate::new(Policy::default())
            .release(&task, &mut sent, &mut notes)
            .unwrap();
        let Submission::Evaluation(report) = sent else {
            panic!("an evaluation");
        };
        let after = flat(&report.models[0]);
        assert_eq!(after.len(), before.len());
        assert!(after.iter().all(|v| *v == 0.0), "{after:?}");
        let withheld = &report.calibration[0];
        assert_eq!(withheld.count.len(), calibration.count.len());
        assert!(withheld.count.iter().all(|n| *n == 0));
        assert_eq!(notes.len(), 2, "{notes:?}");
    }
}
