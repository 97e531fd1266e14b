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

use medfed_model::preprocess::HistogramPlan;
use medfed_wire::{
    BudgetRefusal, Instruction, PrivacySpend, Refusal, RosterMember, Step, Submission, Task,
};
use tokio::sync::{Notify, watch};

use crate::exchange::Exchange;
pub use crate::mailbox::SubmitError;
use crate::mailbox::{Context, Mailbox, duplicate, label, wrong_step};
use crate::metrics::Metrics;
use crate::progress::Progress;

/// Mutable state behind the lock.
pub struct State {
    /// Members that have joined.
    pub joined: BTreeSet<String>,
    /// Members that have been told the task is finished.
    pub told_finished: BTreeSet<String>,
    /// The current step's mailbox (none while waiting for members, or
    /// once finished).
    pub mailbox: Option<Mailbox>,
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
    /// Members that refused the task or a step under their own policy (or
    /// for a data reason), and left: no step waits for them any more.
    pub refusals: BTreeMap<String, Refusal>,
    /// Refusals already reported to the operator, with what each member
    /// refused in words (`the task`, `step 3 (statistics)`), as named when
    /// first noticed.
    pub noticed_refusals: BTreeMap<String, String>,
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
    /// Where lines for the operator go (standard output when none is
    /// attached, as in unit tests).
    operator: OnceLock<Arc<Progress>>,
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
                mailbox: None,
                refused_calls: 0,
                declared_rows: BTreeMap::new(),
                pooled_rows: None,
                certificates: BTreeMap::new(),
                sent_certificates: BTreeMap::new(),
                privacy_spent: BTreeMap::new(),
                budget_refusals: BTreeMap::new(),
                refusals: BTreeMap::new(),
                noticed_refusals: BTreeMap::new(),
                departed: BTreeSet::new(),
            }),
            steps,
            progress: Notify::new(),
            max_update_norm,
            metrics,
            log: OnceLock::new(),
            operator: OnceLock::new(),
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

    /// Gives the state the operator's progress lines, where notices of
    /// members that left are printed.
    pub fn attach_progress(&self, progress: Arc<Progress>) {
        let _ = self.operator.set(progress);
    }

    /// Prints `line` for the operator (above the progress bar when there
    /// is one).
    pub fn say(&self, line: &str) {
        match self.operator.get() {
            Some(progress) => progress.message(line),
            None => println!("{line}"),
        }
    }

    /// The number of the step published last (0 before the first).
    pub fn current_step(&self) -> u64 {
        self.steps.borrow().step
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

    /// Publishes a new step, replacing the mailbox (none for a step that
    /// collects nothing).
    pub fn publish(&self, step: Step, mailbox: Option<Mailbox>) {
        self.lock().mailbox = mailbox;
        self.metrics.set_step(step.step);
        self.steps.send_replace(Arc::new(step));
    }

    /// Records a join. A member that joins again (after a restart or a
    /// lost connection) may have lost what it was sent: roster
    /// certificates go to it in full again.
    pub fn join(&self, member: &str) {
        {
            let mut state = self.lock();
            state.joined.insert(member.to_owned());
            state.sent_certificates.remove(member);
        }
        self.count_joined();
        self.progress.notify_waiters();
    }

    /// Updates the joined-members gauge: members that joined and have not
    /// left.
    fn count_joined(&self) {
        let joined = {
            let state = self.lock();
            state.joined.iter().filter(|m| !state.has_left(m)).count()
        };
        self.metrics.set_joined(joined);
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
    /// member sends. A refusal (of its budget, or under its own policy) is
    /// recorded whatever the step; every other kind goes to the current
    /// step's mailbox.
    ///
    /// # Errors
    /// Wrong step or round, a duplicate, a value the step's sum refuses, or
    /// an answer from a member that has refused the task and left.
    pub fn accept(&self, member: &str, submission: Submission) -> Result<(), SubmitError> {
        let submission = match submission {
            Submission::BudgetRefusal(refusal) => return self.refuse_budget(member, refusal),
            Submission::Refusal(refusal) => return self.refuse(member, refusal),
            other => other,
        };
        self.submit(|state| {
            if let Some(refusal) = state.refusals.get(member) {
                return Err(SubmitError::Invalid(format!(
                    "{member} refused step {} by its rule `{}` and left the task; its answers \
                     are no longer taken",
                    refusal.step, refusal.rule
                )));
            }
            let State {
                mailbox,
                declared_rows,
                privacy_spent,
                ..
            } = state;
            let Some(mailbox) = mailbox else {
                return Err(wrong_step(
                    label(&submission),
                    submission.step(),
                    0,
                    "no submission",
                ));
            };
            let expected = mailbox.expected.clone();
            mailbox.accept(
                member,
                submission,
                Context {
                    declared_rows,
                    privacy_spent,
                    metrics: &self.metrics,
                    max_update_norm: self.max_update_norm,
                    expected: &expected,
                },
            )
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

    /// Records that `member` refused the task or a step under its own
    /// policy (or for a data reason) and left it: the wait in progress
    /// stops waiting for it (see [`crate::refusals`]).
    ///
    /// # Errors
    /// A second refusal from the same member.
    pub fn refuse(&self, member: &str, refusal: Refusal) -> Result<(), SubmitError> {
        self.submit(|state| {
            if state.refusals.contains_key(member) {
                return Err(duplicate(member, "refusal", refusal.step));
            }
            state.refusals.insert(member.to_owned(), refusal);
            Ok(())
        })?;
        self.count_joined();
        Ok(())
    }

    /// Records that training stopped for `member` (its privacy budget is
    /// spent): no later step waits for it.
    pub fn depart(&self, member: &str) {
        self.lock().departed.insert(member.to_owned());
        self.count_joined();
    }

    /// The task's members that have not left it (see
    /// [`State::has_left`]), in task order.
    pub fn members_in_task(&self) -> Vec<String> {
        let state = self.lock();
        self.task
            .members
            .iter()
            .filter(|m| !state.has_left(m))
            .cloned()
            .collect()
    }

    /// The plan of the histogram step in progress, if one is.
    pub fn histogram_plan(&self) -> Option<HistogramPlan> {
        self.lock().mailbox.as_ref()?.histogram_plan()
    }

    /// Models the current evaluation step asks for (0 when not evaluating).
    pub fn evaluation_models(&self) -> usize {
        self.lock()
            .mailbox
            .as_ref()
            .map_or(0, Mailbox::evaluation_models)
    }

    /// Closes the current step and returns who answered it: its mailbox
    /// is dropped, so later answers are refused and the phase that opened
    /// it can take its inbox back.
    pub fn close(&self) -> BTreeSet<String> {
        self.lock()
            .mailbox
            .take()
            .map(|m| m.received)
            .unwrap_or_default()
    }
}

impl State {
    /// Members that have answered the current step.
    pub fn answered(&self) -> BTreeSet<String> {
        self.mailbox
            .as_ref()
            .map(|m| m.received.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::answers::UpdateSum;
    use crate::mailbox::clear::ClearInbox;
    use crate::mailbox::{self, Handle};
    use medfed_aggregate::{FedAvg, Strategy};
    use medfed_model::ModelKind;
    use medfed_wire::ModelUpdate;
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
            algorithm: medfed_wire::TrainingAlgorithm::Fedavg,
            baselines: false,
            evaluate_every: 1,
        }
    }

    fn update(step: u64, round: u32, delta: Vec<f64>, rows: u64) -> Submission {
        Submission::Update(ModelUpdate {
            step,
            round,
            delta: Array1::from(delta),
            num_rows: rows,
            train_loss: 0.5,
            evaluation: None,
            privacy_spend: None,
        })
    }

    fn open_round(shared: &Shared, step: u64, round: u32) -> Handle<ClearInbox<ModelUpdate>> {
        let inbox = Arc::new(Mutex::new(ClearInbox::new(UpdateSum::new(
            FedAvg.start_round(2),
        ))));
        let expected = shared.task.members.iter().cloned().collect();
        shared.publish(
            Step {
                step,
                instruction: medfed_wire::Instruction::Wait,
            },
            Some(Mailbox::new(step, Some(round), expected, inbox.clone())),
        );
        inbox
    }

    #[test]
    fn updates_fold_in_and_refuse_duplicates_and_stale_steps() {
        let shared = Shared::new(task(), None);
        let inbox = open_round(&shared, 5, 1);
        shared.accept("a", update(5, 1, vec![1.0, 2.0], 1)).unwrap();
        assert!(matches!(
            shared.accept("a", update(5, 1, vec![1.0, 2.0], 1)),
            Err(SubmitError::Duplicate { .. })
        ));
        assert!(matches!(
            shared.accept("b", update(4, 1, vec![1.0, 2.0], 1)),
            Err(SubmitError::WrongStep {
                got: 4,
                current: 5,
                ..
            })
        ));
        assert!(matches!(
            shared.accept("b", update(5, 2, vec![1.0, 2.0], 1)),
            Err(SubmitError::Invalid(_))
        ));
        assert!(shared.accept("b", update(5, 1, vec![1.0], 1)).is_err());
        shared.accept("b", update(5, 1, vec![4.0, 5.0], 2)).unwrap();
        assert_eq!(shared.close().len(), 2);
        let (sum, _) = mailbox::take(inbox, "round 1").unwrap().into_parts();
        assert_eq!(sum.rows, 3);
        assert_eq!(sum.aggregate.contributors(), 2);
        assert_eq!(sum.aggregate.finish().unwrap().to_vec(), vec![3.0, 4.0]);
        // Nothing is collecting any more: a late update is refused.
        assert!(shared.accept("b", update(5, 1, vec![1.0, 1.0], 1)).is_err());
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
        shared.accept("a", update(5, 1, vec![1.0, 2.0], 1)).unwrap();
        shared.accept("b", update(5, 1, vec![1.0, 2.0], 1)).unwrap();
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
            .accept("a", update(3, 1, vec![1.0, 2.0], 7_000))
            .unwrap_err();
        assert!(
            error.to_string().contains("claims 7000 rows")
                && error.to_string().contains("declared 7"),
            "{error}"
        );
        let error = shared
            .accept("a", update(3, 1, vec![6.0, 8.0001], 7))
            .unwrap_err();
        assert!(
            error.to_string().contains("exceeds the task's bound 10"),
            "{error}"
        );
        // Refusals leave the round untouched; a good update still lands.
        shared.accept("a", update(3, 1, vec![6.0, 8.0], 7)).unwrap();
        assert_eq!(shared.lock().answered().len(), 1);
    }
}
