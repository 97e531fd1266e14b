//! The coordinator's shared state: who joined, what the current step expects,
//! and what has been received for it.
//!
//! Service handlers validate a submission against the current step and fold
//! it in under a std `Mutex`; the lock is never held across an `.await`, so a
//! blocking mutex is right here (and cheaper than an async one). The
//! orchestrator publishes steps through a `watch` channel and is woken by a
//! `Notify` whenever a submission lands.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use medfed_aggregate::Aggregator;
use medfed_model::preprocess::{ColumnHistogram, HistogramPlan, merge_histograms};
use medfed_model::{NewtonTerms, NormalTerms};
use medfed_secure::secagg::{Server, ServerMasking, ServerSharing, ServerUnmasking};
use medfed_wire::{
    BaselineModel, BudgetRefusal, EvaluationCounts, EvaluationReport, HistogramReport, Instruction,
    ModelUpdate, NewtonReport, NormalReport, PrivacySpend, RosterMember, SecAggMessage,
    SecAggSubmission, StatisticsReport, Step, Submission, Task,
};
use tokio::sync::{Notify, watch};

use crate::exchange::Exchange;
use crate::metrics::Metrics;

/// Why a submission was refused. Turned into a gRPC status in one place
/// (`service`).
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum SubmitError {
    /// The submission answers a step other than the current one.
    #[error("{kind} answers step {got}, but the current step is {current} ({expected})")]
    WrongStep {
        /// What was submitted.
        kind: &'static str,
        /// Step it named.
        got: u64,
        /// Current step.
        current: u64,
        /// What the current step expects.
        expected: &'static str,
    },
    /// The member already answered this step.
    #[error("{member} already sent its {kind} for step {step}")]
    Duplicate {
        /// Who.
        member: String,
        /// What.
        kind: &'static str,
        /// Which step.
        step: u64,
    },
    /// The submission's content does not fit (round, dimension...).
    #[error("{0}")]
    Invalid(String),
}

/// The coordinator's side of one secure-aggregation stage: the medfed-secure
/// server state machine, which adds masked inputs and never holds a
/// member's update in clear.
pub enum SecAggServer {
    /// Stage 0: collecting signed keys.
    Keys(Server),
    /// Stage 1: collecting encrypted shares.
    Shares(ServerSharing),
    /// Stage 2: adding masked inputs.
    Masked(ServerMasking),
    /// Stage 3: collecting the shares that remove the masks.
    Unmask(ServerUnmasking),
}

impl SecAggServer {
    fn stage(&self) -> &'static str {
        match self {
            SecAggServer::Keys(_) => "advertised keys",
            SecAggServer::Shares(_) => "encrypted shares",
            SecAggServer::Masked(_) => "masked inputs",
            SecAggServer::Unmask(_) => "unmasking shares",
        }
    }
}

/// What the current step is collecting.
pub enum Collecting {
    /// Nothing: waiting for members, or finished.
    Nothing,
    /// Per-feature statistics.
    Statistics {
        /// Step number.
        step: u64,
        /// Reports so far, by member.
        reports: BTreeMap<String, StatisticsReport>,
    },
    /// Per-column histograms (for medians), summed as they arrive.
    Histograms {
        /// Step number.
        step: u64,
        /// The plan the histograms follow.
        plan: HistogramPlan,
        /// The sum so far, one entry per column of the plan.
        merged: Vec<Option<ColumnHistogram>>,
        /// Who has contributed.
        received: BTreeSet<String>,
    },
    /// Model updates of one round, folded in as they arrive.
    Updates {
        /// Step number.
        step: u64,
        /// Round number.
        round: u32,
        /// The round's aggregate.
        aggregate: Box<dyn Aggregator>,
        /// Who has contributed.
        received: BTreeSet<String>,
        /// Sum of rows x mean loss, for the round's training loss.
        loss_sum: f64,
        /// Sum of rows.
        rows: u64,
        /// Held-out counts of the round's model, by member (when asked).
        evaluations: BTreeMap<String, EvaluationCounts>,
    },
    /// Newton terms of one round, summed as they arrive.
    Newton {
        /// Step number.
        step: u64,
        /// Round number.
        round: u32,
        /// The sum so far.
        terms: NewtonTerms,
        /// Who has contributed.
        received: BTreeSet<String>,
        /// Held-out counts of the round's parameters, by member (when asked).
        evaluations: BTreeMap<String, EvaluationCounts>,
    },
    /// Normal-equation terms, summed as they arrive.
    Normal {
        /// Step number.
        step: u64,
        /// The sum so far.
        terms: NormalTerms,
        /// Who has contributed.
        received: BTreeSet<String>,
    },
    /// Site-alone models.
    Baselines {
        /// Step number.
        step: u64,
        /// Models so far, by member.
        models: BTreeMap<String, BaselineModel>,
    },
    /// One stage of a securely aggregated training round.
    SecAgg {
        /// Step number.
        step: u64,
        /// Round number.
        round: u32,
        /// The server state machine of this stage.
        server: SecAggServer,
        /// The round's roster: member name to id.
        ids: BTreeMap<String, u32>,
        /// Who this stage waits for (those still in the round).
        expected: BTreeSet<String>,
        /// Who has answered.
        received: BTreeSet<String>,
    },
    /// Evaluation counts.
    Evaluations {
        /// Step number.
        step: u64,
        /// Models each report must cover.
        models: usize,
        /// Reports so far, by member.
        reports: BTreeMap<String, EvaluationReport>,
    },
}

impl Collecting {
    fn name(&self) -> &'static str {
        match self {
            Collecting::Nothing => "no submission",
            Collecting::Statistics { .. } => "statistics",
            Collecting::Histograms { .. } => "histograms",
            Collecting::Updates { .. } => "model updates",
            Collecting::Newton { .. } => "Newton terms",
            Collecting::Normal { .. } => "normal-equation terms",
            Collecting::Baselines { .. } => "baseline models",
            Collecting::Evaluations { .. } => "evaluation counts",
            Collecting::SecAgg { server, .. } => server.stage(),
        }
    }

    fn step(&self) -> u64 {
        match self {
            Collecting::Nothing => 0,
            Collecting::Statistics { step, .. }
            | Collecting::Histograms { step, .. }
            | Collecting::Updates { step, .. }
            | Collecting::Newton { step, .. }
            | Collecting::Normal { step, .. }
            | Collecting::Baselines { step, .. }
            | Collecting::SecAgg { step, .. }
            | Collecting::Evaluations { step, .. } => *step,
        }
    }

    /// Members that have answered the current step.
    pub fn answered(&self) -> BTreeSet<String> {
        match self {
            Collecting::Nothing => BTreeSet::new(),
            Collecting::Statistics { reports, .. } => reports.keys().cloned().collect(),
            Collecting::Histograms { received, .. }
            | Collecting::Updates { received, .. }
            | Collecting::Newton { received, .. }
            | Collecting::Normal { received, .. }
            | Collecting::SecAgg { received, .. } => received.clone(),
            Collecting::Baselines { models, .. } => models.keys().cloned().collect(),
            Collecting::Evaluations { reports, .. } => reports.keys().cloned().collect(),
        }
    }
}

/// Mutable state behind the lock.
pub struct State {
    /// Members that have joined.
    pub joined: BTreeSet<String>,
    /// Members that have been told the task is finished.
    pub told_finished: BTreeSet<String>,
    /// What the current step collects.
    pub collecting: Collecting,
    /// Calls refused because the caller is not a member.
    pub refused_calls: u64,
    /// Training rows each member declared with its statistics; its updates
    /// must claim the same weight.
    pub declared_rows: BTreeMap<String, u64>,
    /// Under secure aggregation: the members of the statistics passes'
    /// sum and their total training rows. A round summed over the same
    /// members must unmask the same row count.
    pub pooled_rows: Option<(BTreeSet<String>, u64)>,
    /// Each member's certificate (DER) as presented at its last join: sent
    /// in secure-aggregation rosters, where every member checks it.
    pub certificates: BTreeMap<String, Vec<u8>>,
    /// By recipient: the SHA-256 of each roster certificate sent to it in
    /// full since it last joined; later rosters name those by digest only.
    pub sent_certificates: BTreeMap<String, BTreeSet<[u8; 32]>>,
    /// DP tasks: the last spend each member reported with its update.
    pub privacy_spent: BTreeMap<String, PrivacySpend>,
    /// DP tasks: members that declined a round their budget cannot pay for,
    /// and left.
    pub budget_refusals: BTreeMap<String, BudgetRefusal>,
    /// Members training stopped for (their budget is spent): no step waits
    /// for them any more.
    pub departed: BTreeSet<String>,
}

/// State shared by the service handlers and the orchestrator.
pub struct Shared {
    /// The task.
    pub task: Task,
    state: Mutex<State>,
    steps: watch::Sender<Arc<Step>>,
    /// Signalled whenever a join or a submission lands.
    pub progress: Notify,
    /// Updates longer than this (Euclidean norm) are refused.
    pub max_update_norm: Option<f64>,
    /// What the metrics endpoint shows.
    pub metrics: Arc<Metrics>,
    /// The exchange log, told when a step closes (absent in unit tests).
    log: OnceLock<Arc<Exchange>>,
}

impl Shared {
    /// New shared state for `task`, with step 0 (wait) published; updates
    /// longer than `max_update_norm` will be refused.
    pub fn new(task: Task, max_update_norm: Option<f64>) -> Arc<Shared> {
        let (steps, _) = watch::channel(Arc::new(Step {
            step: 0,
            instruction: medfed_wire::Instruction::Wait,
        }));
        let metrics = Arc::new(Metrics::new(task.members.len()));
        Arc::new(Shared {
            task,
            state: Mutex::new(State {
                joined: BTreeSet::new(),
                told_finished: BTreeSet::new(),
                collecting: Collecting::Nothing,
                refused_calls: 0,
                declared_rows: BTreeMap::new(),
                pooled_rows: None,
                certificates: BTreeMap::new(),
                sent_certificates: BTreeMap::new(),
                privacy_spent: BTreeMap::new(),
                budget_refusals: BTreeMap::new(),
                departed: BTreeSet::new(),
            }),
            steps,
            progress: Notify::new(),
            max_update_norm,
            metrics,
            log: OnceLock::new(),
        })
    }

    /// Locks the state. A poisoned lock means a handler panicked mid-update;
    /// the state is still structurally valid (every update is a single
    /// insert), so carry on rather than take the whole federation down.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes to published steps.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Step>> {
        self.steps.subscribe()
    }

    /// Gives the state the exchange log to flush when a step closes.
    pub fn attach_log(&self, log: Arc<Exchange>) {
        let _ = self.log.set(log);
    }

    /// A step closed (its answers are in): the exchange log flushes them
    /// if its policy says so, before anything is computed from them.
    ///
    /// # Errors
    /// The fsync failed.
    pub fn step_closed(&self) -> Result<(), medfed_audit::AuditError> {
        match self.log.get() {
            Some(log) => log.step_closed(),
            None => Ok(()),
        }
    }

    /// Publishes a new step, replacing what the state collects.
    pub fn publish(&self, step: Step, collecting: Collecting) {
        self.lock().collecting = collecting;
        self.metrics.set_step(step.step);
        self.steps.send_replace(Arc::new(step));
    }

    /// Records a join. A member that joins again (after a restart or a
    /// lost connection) may have lost what it was sent: roster
    /// certificates go to it in full again.
    pub fn join(&self, member: &str) {
        let joined = {
            let mut state = self.lock();
            state.joined.insert(member.to_owned());
            state.sent_certificates.remove(member);
            state.joined.len()
        };
        self.metrics.set_joined(joined);
        self.progress.notify_waiters();
    }

    /// `step` as `recipient` is to receive it: a secure-aggregation key
    /// request names the roster certificates already sent to it by digest
    /// only, and the others in full (remembered as sent).
    pub fn step_for(&self, step: &Arc<Step>, recipient: &str) -> Arc<Step> {
        let Instruction::SecAggKeys { work, roster } = &step.instruction else {
            return Arc::clone(step);
        };
        let mut state = self.lock();
        let sent = state
            .sent_certificates
            .entry(recipient.to_owned())
            .or_default();
        let roster = roster
            .iter()
            .map(|m| RosterMember {
                certificate: m
                    .certificate
                    .clone()
                    .filter(|_| sent.insert(m.certificate_sha256)),
                ..m.clone()
            })
            .collect();
        Arc::new(Step {
            step: step.step,
            instruction: Instruction::SecAggKeys {
                work: work.clone(),
                roster,
            },
        })
    }

    /// Applies `f` to the state and wakes the orchestrator if it succeeded.
    fn submit<T>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T, SubmitError>,
    ) -> Result<T, SubmitError> {
        let result = f(&mut self.lock());
        if result.is_ok() {
            self.progress.notify_waiters();
        }
        result
    }

    /// Accepts `submission` from `member`: the one entry for every kind a
    /// member sends.
    ///
    /// # Errors
    /// Wrong step or round, a duplicate, or a value the step's sum refuses.
    pub fn accept(&self, member: &str, submission: Submission) -> Result<(), SubmitError> {
        match submission {
            Submission::Statistics(report) => self.submit_statistics(member, report),
            Submission::Histograms(report) => self.submit_histograms(member, report),
            Submission::Update(update) => self.submit_update(member, update),
            Submission::Newton(report) => self.submit_newton(member, report),
            Submission::Normal(report) => self.submit_normal(member, report),
            Submission::Baseline(model) => self.submit_baseline(member, model),
            Submission::Evaluation(report) => self.submit_evaluation(member, report),
            Submission::SecAgg(submission) => self.submit_secagg(member, submission),
            Submission::BudgetRefusal(refusal) => self.refuse_budget(member, refusal),
        }
    }

    /// Accepts a statistics report from `member`.
    ///
    /// # Errors
    /// Wrong step or duplicate.
    pub fn submit_statistics(
        &self,
        member: &str,
        report: StatisticsReport,
    ) -> Result<(), SubmitError> {
        self.submit(|state| {
            let current = state.collecting.step();
            let expected = state.collecting.name();
            match &mut state.collecting {
                Collecting::Statistics { step, reports } if *step == report.step => {
                    if reports.contains_key(member) {
                        return Err(duplicate(member, "statistics", *step));
                    }
                    state
                        .declared_rows
                        .insert(member.to_owned(), report.train_rows);
                    self.metrics.set_rows(member, report.train_rows);
                    reports.insert(member.to_owned(), report);
                    Ok(())
                }
                _ => Err(wrong_step("statistics", report.step, current, expected)),
            }
        })
    }

    /// Folds a model update from `member` into the round's aggregate.
    ///
    /// # Errors
    /// Wrong step or round, duplicate, or an update the aggregate refuses.
    pub fn submit_update(&self, member: &str, update: ModelUpdate) -> Result<(), SubmitError> {
        self.submit(|state| {
            let current = state.collecting.step();
            let expected = state.collecting.name();
            match &mut state.collecting {
                Collecting::Updates {
                    step,
                    round,
                    aggregate,
                    received,
                    loss_sum,
                    rows,
                    evaluations,
                } if *step == update.step => {
                    if update.round != *round {
                        return Err(SubmitError::Invalid(format!(
                            "update is for round {}, the current round is {round}",
                            update.round
                        )));
                    }
                    if received.contains(member) {
                        return Err(duplicate(member, "update", *step));
                    }
                    // DP: every member weighs the same (the sensitivity of
                    // the sum is one clipped update), and sends no rows or
                    // loss; otherwise its declared rows are its weight.
                    let dp = update.privacy_spend.is_some();
                    if !dp {
                        check_declared(&state.declared_rows, member, update.num_rows)?;
                    }
                    let norm = update.delta.dot(&update.delta).sqrt();
                    if let Some(bound) = self.max_update_norm
                        && norm > bound
                    {
                        return Err(SubmitError::Invalid(format!(
                            "the update's norm {norm:.6} exceeds the task's bound {bound}"
                        )));
                    }
                    // Row counts are far below 2^53, so the f64 weight is exact.
                    let weight = if dp { 1.0 } else { update.num_rows as f64 };
                    aggregate
                        .add(update.delta.view(), weight)
                        .map_err(|e| SubmitError::Invalid(e.to_string()))?;
                    received.insert(member.to_owned());
                    if let Some(spend) = update.privacy_spend {
                        self.metrics.set_epsilon_spent(member, spend.epsilon);
                        state.privacy_spent.insert(member.to_owned(), spend);
                    }
                    *loss_sum += update.train_loss * update.num_rows as f64;
                    *rows += update.num_rows;
                    if let Some(counts) = update.evaluation {
                        evaluations.insert(member.to_owned(), counts);
                    }
                    Ok(())
                }
                _ => Err(wrong_step("update", update.step, current, expected)),
            }
        })
    }

    /// Feeds a member's secure-aggregation message to the stage's server.
    ///
    /// # Errors
    /// Wrong step or round, duplicate, a member outside the round's roster
    /// or no longer expected, a sender id other than the member's own, a
    /// message of another stage, or one the protocol refuses.
    pub fn submit_secagg(
        &self,
        member: &str,
        submission: SecAggSubmission,
    ) -> Result<(), SubmitError> {
        self.submit(|state| {
            let current = state.collecting.step();
            let expected_name = state.collecting.name();
            let kind = submission.message.kind();
            match &mut state.collecting {
                Collecting::SecAgg {
                    step,
                    round,
                    server,
                    ids,
                    expected,
                    received,
                } if *step == submission.step => {
                    if submission.round != *round {
                        return Err(SubmitError::Invalid(format!(
                            "{kind} is for round {}, the current round is {round}",
                            submission.round
                        )));
                    }
                    if received.contains(member) {
                        return Err(duplicate(member, kind, *step));
                    }
                    let Some(&id) = ids.get(member) else {
                        return Err(SubmitError::Invalid(format!(
                            "{member} is not on the roster of round {round}"
                        )));
                    };
                    if !expected.contains(member) {
                        return Err(SubmitError::Invalid(format!(
                            "{member} dropped out of round {round} at an earlier stage"
                        )));
                    }
                    // TLS and the signature say who sent it; the id inside
                    // must agree, or one member could speak for another.
                    let sender = submission.message.sender();
                    if sender != id {
                        return Err(SubmitError::Invalid(format!(
                            "{kind} names sender {sender}, but {member} is member {id} of \
                             round {round}"
                        )));
                    }
                    let refused =
                        |e: medfed_secure::secagg::SecAggError| SubmitError::Invalid(e.to_string());
                    match (server, submission.message) {
                        (SecAggServer::Keys(s), SecAggMessage::Keys(m)) => {
                            s.receive(m).map_err(refused)?;
                            if let Some(spend) = submission.privacy_spend {
                                self.metrics.set_epsilon_spent(member, spend.epsilon);
                                state.privacy_spent.insert(member.to_owned(), spend);
                            }
                        }
                        (SecAggServer::Shares(s), SecAggMessage::Shares(m)) => {
                            s.receive(m).map_err(refused)?;
                        }
                        (SecAggServer::Masked(s), SecAggMessage::Masked(m)) => {
                            s.receive(m).map_err(refused)?;
                        }
                        (SecAggServer::Unmask(s), SecAggMessage::Unmask(m)) => {
                            s.receive(m).map_err(refused)?;
                        }
                        _ => {
                            return Err(SubmitError::Invalid(format!(
                                "{kind} does not answer step {current}, which collects \
                                 {expected_name}"
                            )));
                        }
                    }
                    received.insert(member.to_owned());
                    Ok(())
                }
                _ => Err(wrong_step(kind, submission.step, current, expected_name)),
            }
        })
    }

    /// Records that `member` declined a DP round its own budget cannot pay
    /// for and left the task; training ends at the next wait.
    ///
    /// # Errors
    /// A second refusal from the same member.
    pub fn refuse_budget(&self, member: &str, refusal: BudgetRefusal) -> Result<(), SubmitError> {
        self.submit(|state| {
            if state.budget_refusals.contains_key(member) {
                return Err(duplicate(member, "budget refusal", refusal.step));
            }
            state.budget_refusals.insert(member.to_owned(), refusal);
            Ok(())
        })
    }

    /// The plan of the histogram step in progress, if one is.
    pub fn histogram_plan(&self) -> Option<HistogramPlan> {
        match &self.lock().collecting {
            Collecting::Histograms { plan, .. } => Some(plan.clone()),
            _ => None,
        }
    }

    /// Adds a member's histograms to the sum.
    ///
    /// # Errors
    /// Wrong step, duplicate, or histograms that do not fit the sum.
    pub fn submit_histograms(
        &self,
        member: &str,
        report: HistogramReport,
    ) -> Result<(), SubmitError> {
        self.submit(|state| {
            let current = state.collecting.step();
            let expected = state.collecting.name();
            match &mut state.collecting {
                Collecting::Histograms {
                    step,
                    merged,
                    received,
                    ..
                } if *step == report.step => {
                    if received.contains(member) {
                        return Err(duplicate(member, "histograms", *step));
                    }
                    merge_histograms(merged, &report.histograms)
                        .map_err(|e| SubmitError::Invalid(e.to_string()))?;
                    received.insert(member.to_owned());
                    Ok(())
                }
                _ => Err(wrong_step("histograms", report.step, current, expected)),
            }
        })
    }

    /// Adds a member's Newton terms to the round's sum.
    ///
    /// # Errors
    /// Wrong step or round, duplicate, a row count other than the member
    /// declared, or terms that do not fit the sum.
    pub fn submit_newton(&self, member: &str, report: NewtonReport) -> Result<(), SubmitError> {
        self.submit(|state| {
            let current = state.collecting.step();
            let expected = state.collecting.name();
            match &mut state.collecting {
                Collecting::Newton {
                    step,
                    round,
                    terms,
                    received,
                    evaluations,
                } if *step == report.step => {
                    if report.round != *round {
                        return Err(SubmitError::Invalid(format!(
                            "Newton terms are for round {}, the current round is {round}",
                            report.round
                        )));
                    }
                    if received.contains(member) {
                        return Err(duplicate(member, "Newton terms", *step));
                    }
                    check_declared(&state.declared_rows, member, report.terms.n)?;
                    terms
                        .merge(&report.terms)
                        .map_err(|e| SubmitError::Invalid(e.to_string()))?;
                    received.insert(member.to_owned());
                    if let Some(counts) = report.evaluation {
                        evaluations.insert(member.to_owned(), counts);
                    }
                    Ok(())
                }
                _ => Err(wrong_step("Newton terms", report.step, current, expected)),
            }
        })
    }

    /// Adds a member's normal-equation terms to the sum.
    ///
    /// # Errors
    /// Wrong step, duplicate, a row count other than the member declared, or
    /// terms that do not fit the sum.
    pub fn submit_normal(&self, member: &str, report: NormalReport) -> Result<(), SubmitError> {
        self.submit(|state| {
            let current = state.collecting.step();
            let expected = state.collecting.name();
            match &mut state.collecting {
                Collecting::Normal {
                    step,
                    terms,
                    received,
                } if *step == report.step => {
                    if received.contains(member) {
                        return Err(duplicate(member, "normal-equation terms", *step));
                    }
                    check_declared(&state.declared_rows, member, report.terms.n)?;
                    terms
                        .merge(&report.terms)
                        .map_err(|e| SubmitError::Invalid(e.to_string()))?;
                    received.insert(member.to_owned());
                    Ok(())
                }
                _ => Err(wrong_step(
                    "normal-equation terms",
                    report.step,
                    current,
                    expected,
                )),
            }
        })
    }

    /// Accepts a baseline model from `member`.
    ///
    /// # Errors
    /// Wrong step or duplicate.
    pub fn submit_baseline(&self, member: &str, model: BaselineModel) -> Result<(), SubmitError> {
        self.submit(|state| {
            let current = state.collecting.step();
            let expected = state.collecting.name();
            match &mut state.collecting {
                Collecting::Baselines { step, models } if *step == model.step => {
                    if models.contains_key(member) {
                        return Err(duplicate(member, "baseline", *step));
                    }
                    models.insert(member.to_owned(), model);
                    Ok(())
                }
                _ => Err(wrong_step("baseline", model.step, current, expected)),
            }
        })
    }

    /// Models the current evaluation step asks for (0 when not evaluating).
    pub fn evaluation_models(&self) -> usize {
        match &self.lock().collecting {
            Collecting::Evaluations { models, .. } => *models,
            _ => 0,
        }
    }

    /// Accepts evaluation counts from `member`.
    ///
    /// # Errors
    /// Wrong step or duplicate.
    pub fn submit_evaluation(
        &self,
        member: &str,
        report: EvaluationReport,
    ) -> Result<(), SubmitError> {
        self.submit(|state| {
            let current = state.collecting.step();
            let expected = state.collecting.name();
            match &mut state.collecting {
                Collecting::Evaluations { step, reports, .. } if *step == report.step => {
                    if reports.contains_key(member) {
                        return Err(duplicate(member, "evaluation", *step));
                    }
                    reports.insert(member.to_owned(), report);
                    Ok(())
                }
                _ => Err(wrong_step("evaluation", report.step, current, expected)),
            }
        })
    }

    /// Takes what the current step collected, leaving nothing collecting.
    pub fn take_collected(&self) -> Collecting {
        std::mem::replace(&mut self.lock().collecting, Collecting::Nothing)
    }
}

/// A submission's row count must be the one the member declared with its
/// statistics: a weight is a claim, and a hostile member could inflate it.
fn check_declared(
    declared: &BTreeMap<String, u64>,
    member: &str,
    claimed: u64,
) -> Result<(), SubmitError> {
    match declared.get(member) {
        Some(&rows) if rows != claimed => Err(SubmitError::Invalid(format!(
            "the submission claims {claimed} rows, but {member} declared {rows} \
             training rows with its statistics"
        ))),
        _ => Ok(()),
    }
}

fn duplicate(member: &str, kind: &'static str, step: u64) -> SubmitError {
    SubmitError::Duplicate {
        member: member.to_owned(),
        kind,
        step,
    }
}

fn wrong_step(kind: &'static str, got: u64, current: u64, expected: &'static str) -> SubmitError {
    SubmitError::WrongStep {
        kind,
        got,
        current,
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medfed_aggregate::{FedAvg, Strategy};
    use medfed_model::ModelKind;
    use ndarray::Array1;

    fn task() -> Task {
        Task {
            task_id: "t".into(),
            features: vec!["x".into()],
            columns: vec![medfed_model::ColumnSpec::numeric("x")],
            target: "y".into(),
            model: ModelKind::Logistic,
            l2: 0.0,
            local_steps: 1,
            learning_rate: 0.1,
            holdout_fraction: 0.2,
            split_seed: 1,
            rounds: 2,
            score_bins: 10,
            members: vec!["a".into(), "b".into()],
            secure_aggregation: None,
            differential_privacy: None,
        }
    }

    fn update(step: u64, round: u32, delta: Vec<f64>, rows: u64) -> ModelUpdate {
        ModelUpdate {
            step,
            round,
            delta: Array1::from(delta),
            num_rows: rows,
            train_loss: 0.5,
            evaluation: None,
            privacy_spend: None,
        }
    }

    fn open_round(shared: &Shared, step: u64, round: u32) {
        shared.publish(
            Step {
                step,
                instruction: medfed_wire::Instruction::Wait,
            },
            Collecting::Updates {
                step,
                round,
                aggregate: FedAvg.start_round(2),
                received: BTreeSet::new(),
                loss_sum: 0.0,
                rows: 0,
                evaluations: BTreeMap::new(),
            },
        );
    }

    #[test]
    fn updates_fold_in_and_refuse_duplicates_and_stale_steps() {
        let shared = Shared::new(task(), None);
        open_round(&shared, 5, 1);
        shared
            .submit_update("a", update(5, 1, vec![1.0, 2.0], 1))
            .unwrap();
        assert!(matches!(
            shared.submit_update("a", update(5, 1, vec![1.0, 2.0], 1)),
            Err(SubmitError::Duplicate { .. })
        ));
        assert!(matches!(
            shared.submit_update("b", update(4, 1, vec![1.0, 2.0], 1)),
            Err(SubmitError::WrongStep {
                got: 4,
                current: 5,
                ..
            })
        ));
        assert!(matches!(
            shared.submit_update("b", update(5, 2, vec![1.0, 2.0], 1)),
            Err(SubmitError::Invalid(_))
        ));
        assert!(
            shared
                .submit_update("b", update(5, 1, vec![1.0], 1))
                .is_err()
        );
        shared
            .submit_update("b", update(5, 1, vec![4.0, 5.0], 2))
            .unwrap();
        match shared.take_collected() {
            Collecting::Updates {
                aggregate,
                received,
                rows,
                ..
            } => {
                assert_eq!(received.len(), 2);
                assert_eq!(rows, 3);
                assert_eq!(aggregate.finish().unwrap().to_vec(), vec![3.0, 4.0]);
            }
            _ => panic!("expected updates"),
        }
        // Nothing is collecting any more: a late update is refused.
        assert!(
            shared
                .submit_update("b", update(5, 1, vec![1.0, 1.0], 1))
                .is_err()
        );
    }

    /// A member that declines (its privacy budget) ends the wait at once,
    /// even when the others already make a quorum: the quorum closes a step
    /// at its deadline, it does not drop a member that has said it leaves.
    #[tokio::test]
    async fn a_budget_refusal_is_reported_even_with_a_quorum_in() {
        let mut task = task();
        task.members.push("c".into());
        let config = crate::config::TaskConfig {
            task: task.clone(),
            baselines: false,
            join_timeout: std::time::Duration::from_secs(600),
            step_timeout: std::time::Duration::from_secs(600),
            quorum: 2,
            aggregation: crate::config::Aggregation::Fedavg,
            trim_fraction: 0.0,
            clip_norm: None,
            max_update_norm: None,
            algorithm: crate::config::Algorithm::Fedavg,
            prox_mu: 0.0,
            tolerance: 0.0,
            evaluate_every: 0,
            failed_round: Default::default(),
        };
        let shared = Shared::new(task, None);
        open_round(&shared, 5, 1);
        shared
            .submit_update("a", update(5, 1, vec![1.0, 2.0], 1))
            .unwrap();
        shared
            .submit_update("b", update(5, 1, vec![1.0, 2.0], 1))
            .unwrap();
        shared
            .refuse_budget("c", BudgetRefusal::no_budget())
            .unwrap();
        assert!(matches!(
            shared.refuse_budget("c", BudgetRefusal::no_budget()),
            Err(SubmitError::Duplicate { .. })
        ));
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            crate::wait::wait_for_answers(&shared, &config, "round 1"),
        )
        .await
        .expect("the wait ends at once");
        match waited {
            Err(crate::run_error::RunError::BudgetSpent { site, refusal }) => {
                assert_eq!(site, "c");
                assert_eq!(refusal, BudgetRefusal::no_budget());
            }
            other => panic!("expected the refusal, got {other:?}"),
        }
        // Once it has departed, nobody waits for it.
        shared.lock().departed.insert("c".into());
        let waited = crate::wait::wait_for_answers(&shared, &config, "round 1").await;
        assert_eq!(waited.unwrap(), Vec::<String>::new());
    }

    #[test]
    fn updates_must_claim_the_declared_rows_and_respect_the_norm_bound() {
        let shared = Shared::new(task(), Some(10.0));
        shared.lock().declared_rows.insert("a".into(), 7);
        open_round(&shared, 3, 1);
        let error = shared
            .submit_update("a", update(3, 1, vec![1.0, 2.0], 7_000))
            .unwrap_err();
        assert!(
            error.to_string().contains("claims 7000 rows")
                && error.to_string().contains("declared 7"),
            "{error}"
        );
        let error = shared
            .submit_update("a", update(3, 1, vec![6.0, 8.0001], 7))
            .unwrap_err();
        assert!(
            error.to_string().contains("exceeds the task's bound 10"),
            "{error}"
        );
        // Refusals leave the round untouched; a good update still lands.
        shared
            .submit_update("a", update(3, 1, vec![6.0, 8.0], 7))
            .unwrap();
        assert_eq!(shared.lock().collecting.answered().len(), 1);
    }
}
