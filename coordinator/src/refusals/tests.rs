//! Refusals against the real shared state: the waits stop waiting for a
//! member that refused, close a step at once when the others make the
//! quorum, end the run at once when they cannot, and the secure roster
//! leaves the member out.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medfed_aggregate::{FedAvg, Strategy};
use medfed_wire::{Instruction, ModelUpdate, Refusal, Step, Submission};
use ndarray::Array1;

use super::{Awaited, Need, notice};
use crate::config::TaskConfig;
use crate::mailbox::answers::UpdateSum;
use crate::mailbox::clear::ClearInbox;
use crate::mailbox::{Mailbox, SubmitError};
use crate::progress::Progress;
use crate::run_error::{RunError, Shortfall};
use crate::state::Shared;
use crate::step::StepCounter;
use crate::wait::{wait_for_answers, wait_until};

/// Long enough that a test passing within [`AT_ONCE`] did not wait for
/// it.
const DEADLINE: Duration = Duration::from_secs(600);
/// What "at once" allows.
const AT_ONCE: Duration = Duration::from_secs(10);

const MIN_ROWS: &str = "fewer training rows than min_rows = 10";

/// A task of members a, b and c with `quorum` (and `extra` appended to
/// the task file), with long deadlines.
fn setup(quorum: usize, extra: &str) -> (TaskConfig, Arc<Shared>) {
    let text = format!(
        "[task]\nid = \"t\"\nmembers = [\"a\", \"b\", \"c\"]\nmodel = \"logistic\"\n\
         features = [\"x\"]\ntarget = \"y\"\n\n[training]\nrounds = 2\nalgorithm = \"fedavg\"\n\
         quorum = {quorum}\n{extra}"
    );
    let mut config = TaskConfig::parse(&text, "task.toml").expect("a valid task");
    config.join_timeout = DEADLINE;
    config.step_timeout = DEADLINE;
    let shared = Shared::new(config.task.clone(), None);
    (config, shared)
}

/// Publishes training round `round` as `step`, expecting every member.
fn open_round(shared: &Shared, step: u64, round: u32) {
    let inbox = Arc::new(Mutex::new(ClearInbox::<ModelUpdate>::new(UpdateSum::new(
        FedAvg.start_round(2),
    ))));
    let expected = shared.task.members.iter().cloned().collect();
    shared.publish(
        Step {
            step,
            instruction: Instruction::Wait,
        },
        Some(Mailbox::new(step, Some(round), expected, inbox)),
    );
}

fn update(step: u64, round: u32) -> Submission {
    Submission::Update(ModelUpdate {
        step,
        round,
        delta: Array1::from(vec![1.0, 2.0]),
        num_rows: 20,
        train_loss: 0.5,
        evaluation: None,
        privacy_spend: None,
    })
}

#[tokio::test]
async fn a_refusal_closes_the_step_at_once_when_the_others_make_the_quorum() {
    let (config, shared) = setup(2, "");
    open_round(&shared, 1, 1);
    let waiting = {
        let (shared, config) = (Arc::clone(&shared), config.clone());
        tokio::spawn(async move { wait_for_answers(&shared, &config, "round 1").await })
    };
    shared.accept("a", update(1, 1)).unwrap();
    shared.accept("b", update(1, 1)).unwrap();
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "c has not answered nor refused yet");
    shared
        .accept(
            "c",
            Submission::Refusal(Refusal::new(1, "min_rows", MIN_ROWS)),
        )
        .unwrap();
    let missing = tokio::time::timeout(AT_ONCE, waiting)
        .await
        .expect("the step closes at once")
        .expect("the wait task ran")
        .expect("a and b make the quorum of 2");
    assert_eq!(missing, ["c"]);
    assert_eq!(
        shared.lock().noticed_refusals.get("c").map(String::as_str),
        Some("step 1 (round 1)")
    );
    // It said it leaves: a later answer is refused, and so is a second
    // notice.
    assert!(matches!(
        shared.accept("c", update(1, 1)),
        Err(SubmitError::Invalid(e)) if e.contains("c refused step 1") && e.contains("left the task")
    ));
    assert!(matches!(
        shared.refuse("c", Refusal::new(2, "min_rows", MIN_ROWS)),
        Err(SubmitError::Duplicate { .. })
    ));

    // No later step waits for it either, and it is announced only once.
    shared.close();
    open_round(&shared, 2, 2);
    shared.accept("a", update(2, 2)).unwrap();
    shared.accept("b", update(2, 2)).unwrap();
    let missing = tokio::time::timeout(AT_ONCE, wait_for_answers(&shared, &config, "round 2"))
        .await
        .expect("the step closes at once")
        .unwrap();
    assert_eq!(missing, ["c"]);
    assert!(notice(&mut shared.lock(), 2, "round 2", true).is_empty());
    assert_eq!(shared.members_in_task(), ["a", "b"]);
}

#[tokio::test]
async fn a_refusal_that_leaves_fewer_than_the_quorum_ends_the_run_at_once() {
    let (config, shared) = setup(3, "");
    open_round(&shared, 4, 2);
    shared.accept("a", update(4, 2)).unwrap();
    shared
        .refuse("c", Refusal::new(4, "min_rows", MIN_ROWS))
        .unwrap();
    // b has not answered and could: but without c only 2 of the 3 the
    // quorum needs remain, so nobody waits for b.
    let waited = tokio::time::timeout(AT_ONCE, wait_for_answers(&shared, &config, "round 2"))
        .await
        .expect("the wait ends at once");
    let Err(error @ RunError::Refused(_)) = waited else {
        panic!("expected the refusal, got {waited:?}");
    };
    assert_eq!(
        error.to_string(),
        format!(
            "c refused step 4 (round 2) by its rule `min_rows`: {MIN_ROWS}; 2 of 3 members \
             remain, fewer than the quorum of 3"
        )
    );
    let RunError::Refused(shortfall) = error else {
        unreachable!("matched above");
    };
    let Shortfall {
        site,
        rule,
        remaining,
        needed,
        ..
    } = *shortfall;
    assert_eq!((site.as_str(), rule.as_str()), ("c", "min_rows"));
    assert_eq!((remaining, needed), (2, 3));
}

#[tokio::test]
async fn a_member_that_refuses_the_task_is_awaited_neither_to_join_nor_for_statistics() {
    let (config, shared) = setup(2, "");
    let members: BTreeSet<String> = shared.task.members.iter().cloned().collect();
    let progress = Progress::new(shared.task.model);
    shared.join("a");
    shared.join("b");
    shared
        .refuse(
            "c",
            Refusal::new(0, "approved_tasks", "task t is not approved"),
        )
        .unwrap();
    tokio::time::timeout(
        AT_ONCE,
        crate::orchestrator::join(&shared, &config, &progress, &members),
    )
    .await
    .expect("joining ends at once")
    .expect("a and b make the quorum");
    assert_eq!(
        shared.lock().noticed_refusals.get("c").map(String::as_str),
        Some("the task")
    );
    open_round(&shared, 1, 1);
    shared.accept("a", update(1, 1)).unwrap();
    shared.accept("b", update(1, 1)).unwrap();
    let missing = tokio::time::timeout(AT_ONCE, wait_for_answers(&shared, &config, "statistics"))
        .await
        .expect("the statistics step closes at once")
        .unwrap();
    assert_eq!(missing, ["c"]);
}

#[tokio::test]
async fn a_member_that_joined_then_refused_still_counts_against_the_quorum() {
    // Joined, so joining closes; but the statistics step cannot reach the
    // quorum of 3 without it.
    let (config, shared) = setup(3, "");
    let members: BTreeSet<String> = shared.task.members.iter().cloned().collect();
    for member in &members {
        shared.join(member);
    }
    shared
        .refuse("c", Refusal::new(0, "columns", "column x is not shared"))
        .unwrap();
    let progress = Progress::new(shared.task.model);
    crate::orchestrator::join(&shared, &config, &progress, &members)
        .await
        .expect("every member joined");
    open_round(&shared, 1, 1);
    shared.accept("a", update(1, 1)).unwrap();
    let waited = tokio::time::timeout(AT_ONCE, wait_for_answers(&shared, &config, "statistics"))
        .await
        .expect("the wait ends at once");
    assert!(
        matches!(&waited, Err(e @ RunError::Refused(_))
            if e.to_string().starts_with("c refused the task by its rule `columns`")),
        "{waited:?}"
    );

    // Before joining ends, the same refusal ends joining at once.
    let (config, shared) = setup(3, "");
    shared.join("a");
    shared
        .refuse("c", Refusal::new(0, "columns", "column x is not shared"))
        .unwrap();
    let joining = Awaited {
        what: "joining",
        expected: &members,
        need: Need::quorum(config.quorum),
    };
    let waited = tokio::time::timeout(
        AT_ONCE,
        wait_until(&shared, DEADLINE, &joining, |s| s.joined.clone()),
    )
    .await
    .expect("joining ends at once");
    assert!(
        matches!(&waited, Err(e @ RunError::Refused(_))
            if e.to_string().ends_with("2 of 3 members remain, fewer than the quorum of 3")),
        "{waited:?}"
    );
}

#[test]
fn each_refusal_is_announced_once_naming_site_step_rule_and_reason() {
    let (_, shared) = setup(2, "");
    shared
        .refuse("c", Refusal::new(2, "min_rows", MIN_ROWS))
        .unwrap();
    let lines = notice(&mut shared.lock(), 2, "statistics", true);
    assert_eq!(
        lines,
        [format!(
            "coordinator: c refused step 2 (statistics) by its rule `min_rows`: {MIN_ROWS}; \
             going on without it"
        )]
    );
    assert!(notice(&mut shared.lock(), 3, "round 1", true).is_empty());
    shared
        .refuse("b", Refusal::new(3, "min_cell", "a cell below 5"))
        .unwrap();
    let lines = notice(&mut shared.lock(), 3, "round 1", false);
    assert_eq!(
        lines,
        [
            "coordinator: b refused step 3 (round 1) by its rule `min_cell`: a cell below 5; too \
          few members remain to go on without it"
        ]
    );
    // The latest refusal is the one an error names.
    let state = shared.lock();
    assert_eq!(state.latest_refusal().map(|(s, _)| s.as_str()), Some("b"));
}

/// A secure task of members a, b, c (and `more`) with every member's
/// certificate, all joined.
fn secure_setup(quorum: usize, threshold: u32, more: &[&str]) -> (TaskConfig, Arc<Shared>) {
    let mut names = vec!["a", "b", "c"];
    names.extend(more);
    let list: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let text = format!(
        "[task]\nid = \"t\"\nmembers = [{}]\nmodel = \"logistic\"\nfeatures = [\"x\"]\n\
         target = \"y\"\n\n[training]\nrounds = 2\nalgorithm = \"fedavg\"\nquorum = {quorum}\n\n\
         [privacy]\nsecure_aggregation = true\nthreshold = {threshold}\n",
        list.join(", ")
    );
    let mut config = TaskConfig::parse(&text, "task.toml").expect("a valid task");
    config.step_timeout = Duration::from_millis(200);
    let shared = Shared::new(config.task.clone(), None);
    let dir = tempfile::tempdir().expect("temp dir");
    let members: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    medfed_certs::demo(dir.path(), &members, &["localhost".into()]).expect("certificates");
    for name in &members {
        let pem = dir.path().join(name).join(format!("{name}.pem"));
        let der = medfed_tls::load_certs(&pem).expect("certificate")[0].to_vec();
        shared.lock().certificates.insert(name.clone(), der);
        shared.join(name);
    }
    (config, shared)
}

#[tokio::test]
async fn the_secure_roster_leaves_out_a_member_that_refused() {
    let (config, shared) = secure_setup(2, 2, &[]);
    shared
        .refuse("c", Refusal::new(0, "min_rows", MIN_ROWS))
        .unwrap();
    let settings = shared.task.secure_aggregation.expect("secure task");
    let mut steps = StepCounter::default();
    let summed = crate::secure_sum::secure_sum(
        &shared,
        &config,
        settings,
        &mut steps,
        Instruction::CollectStatistics,
    )
    .await;
    // Nobody answers the keys stage: its deadline names a and b, not c.
    assert!(
        matches!(&summed, Err(RunError::Timeout { missing, .. }) if missing == "a, b"),
        "{:?}",
        summed.err()
    );
    let step = shared.subscribe().borrow().clone();
    let Instruction::SecAggKeys { roster, .. } = &step.instruction else {
        panic!("the keys stage was published: {:?}", step.instruction);
    };
    let names: Vec<&str> = roster.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
}

#[tokio::test]
async fn refusals_that_leave_the_roster_below_the_threshold_are_an_error() {
    let (config, shared) = secure_setup(2, 3, &["d"]);
    shared
        .refuse("c", Refusal::new(0, "min_rows", MIN_ROWS))
        .unwrap();
    shared
        .refuse("d", Refusal::new(0, "task", "this site takes no part in t"))
        .unwrap();
    let settings = shared.task.secure_aggregation.expect("secure task");
    let mut steps = StepCounter::default();
    let summed = crate::secure_sum::secure_sum(
        &shared,
        &config,
        settings,
        &mut steps,
        Instruction::CollectStatistics,
    )
    .await;
    let Err(error @ RunError::Refused(_)) = summed else {
        panic!("expected the refusal, got {:?}", summed.err());
    };
    assert_eq!(
        error.to_string(),
        format!(
            "c refused the task by its rule `min_rows`: {MIN_ROWS}; 2 of 4 members remain, \
             fewer than the secure-aggregation threshold of 3"
        )
    );
    // Nothing was published: no stage could have closed.
    assert_eq!(steps.current(), 0);
}
