//! The algorithms driven by hand with sums of the tests' own: no member,
//! no network, only `configure` / `check` / `aggregate` / `model`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use medfed_aggregate::FedAvg as Mean;
use medfed_model::FittedPreprocessor;
use medfed_wire::message::RefusalReason;
use medfed_wire::summed::PooledUpdate;
use medfed_wire::{BudgetRefusal, Instruction};
use ndarray::{Array1, array};

use super::closed_form::ClosedForm;
use super::dp::Dp;
use super::fedavg::FedAvg;
use super::newton::Newton;
use super::{Algorithm, CollectedBy, Control};
use crate::collect::Collected;
use crate::config::TaskConfig;
use crate::run_error::RunError;
use crate::state::Shared;

const TASK: &str = r#"
[task]
id = "t"
members = ["a", "b", "c"]
model = "logistic"
features = ["x1", "x2"]
target = "y"

[training]
rounds = 3
algorithm = "fedavg"
"#;

const SECURE: &str = "\n[privacy]\nsecure_aggregation = true\nfailed_round = \"skip\"\n";
const DP: &str = "\n[privacy.dp]\nnoise_multiplier = 1.0\nclip_norm = 0.5\n";

fn setup(extra: &str) -> (TaskConfig, Arc<Shared>, FittedPreprocessor) {
    let config = TaskConfig::parse(&format!("{TASK}{extra}"), "task.toml").expect("valid task");
    let shared = Shared::new(config.task.clone(), None);
    (config, shared, FittedPreprocessor { columns: vec![] })
}

fn update_sum(delta: Array1<f64>, weight: f64, members: &[&str]) -> CollectedBy<FedAvg<'static>> {
    update_sum_clipped(delta, weight, members, 0)
}

/// [`update_sum`] of which `clipped_only` updates came clipped only (their
/// members trust the coordinator to noise the sum).
fn update_sum_clipped(
    delta: Array1<f64>,
    weight: f64,
    members: &[&str],
    clipped_only: u32,
) -> CollectedBy<FedAvg<'static>> {
    Collected {
        sum: PooledUpdate {
            delta,
            weight,
            train_loss: 0.25,
            evaluation: None,
            clipped_only,
        },
        kept: BTreeMap::new(),
        contributors: members
            .iter()
            .map(|m| m.to_string())
            .collect::<BTreeSet<_>>(),
        missing: Vec::new(),
    }
}

fn spent(site: &str) -> RunError {
    RunError::BudgetSpent {
        site: site.into(),
        refusal: BudgetRefusal {
            step: 0,
            round: 0,
            spent_epsilon: 0.0,
            delta: 0.0,
            epsilon_after_round: 0.0,
            budget_epsilon: 0.0,
            rounds_spent: 0,
            reason: RefusalReason::NoBudget,
        },
    }
}

fn timeout() -> RunError {
    RunError::Timeout {
        what: "round 2".into(),
        seconds: 1,
        missing: "c".into(),
    }
}

#[test]
fn fedavg_moves_the_model_by_the_sum_and_stops_once_it_barely_moves() {
    let (config, shared, pre) = setup("");
    let mut fedavg = FedAvg::new(&shared, &config, &Mean, &pre, Array1::zeros(3));
    let Some(work) = fedavg.configure(1) else {
        panic!("round 1 has work");
    };
    assert!(matches!(
        work.instruction,
        Instruction::Train { round: 1, .. }
    ));
    let control = fedavg
        .aggregate(1, Ok(update_sum(array![0.5, -1.0, 2.0], 10.0, &["a"])))
        .unwrap();
    let Control::Continue(absorbed) = control else {
        panic!("a large change goes on: {control:?}");
    };
    assert_eq!(absorbed.train_loss, 0.25);
    assert_eq!(fedavg.model(), array![0.5, -1.0, 2.0]);
    let tiny = array![config.tolerance / 2.0, 0.0, 0.0];
    let control = fedavg
        .aggregate(2, Ok(update_sum(tiny, 10.0, &["a"])))
        .unwrap();
    assert!(
        matches!(&control, Control::Stop(_, reason) if reason.starts_with("converged after round 2")),
        "{control:?}"
    );
}

#[test]
fn a_failed_round_is_skipped_only_under_secure_aggregation_with_skip() {
    let (config, shared, pre) = setup(SECURE);
    let mut fedavg = FedAvg::new(&shared, &config, &Mean, &pre, array![1.0, 2.0, 3.0]);
    let control = fedavg.aggregate(2, Err(timeout())).unwrap();
    assert!(
        matches!(&control, Control::Skip(note) if note.contains("model is unchanged")),
        "{control:?}"
    );
    assert_eq!(fedavg.model(), array![1.0, 2.0, 3.0]);

    let (config, shared, pre) = setup("");
    let mut fedavg = FedAvg::new(&shared, &config, &Mean, &pre, Array1::zeros(3));
    assert!(matches!(
        fedavg.aggregate(2, Err(timeout())),
        Err(RunError::Timeout { .. })
    ));
}

#[test]
fn a_spent_budget_ends_training_after_a_round_and_the_run_before_any() {
    let (config, shared, pre) = setup(DP);
    let mut fedavg = Dp::new(
        FedAvg::new(&shared, &config, &Mean, &pre, Array1::zeros(3)),
        &shared.task,
    );
    assert!(matches!(
        fedavg.aggregate(1, Err(spent("b"))),
        Err(RunError::BudgetSpent { .. })
    ));
    assert!(!shared.lock().departed.contains("b"));
    let control = fedavg.aggregate(2, Err(spent("b"))).unwrap();
    assert!(
        matches!(&control, Control::End(reason) if reason.starts_with("stopped before round 2: b declined")),
        "{control:?}"
    );
    assert!(shared.lock().departed.contains("b"));
}

/// One of the two updates came clipped only: the whole sum is noised.
#[test]
fn dp_in_clear_noises_a_sum_holding_a_clipped_only_update_and_withholds_the_loss() {
    let (config, shared, pre) = setup(DP);
    let mut dp = Dp::new(
        FedAvg::new(&shared, &config, &Mean, &pre, Array1::zeros(3)),
        &shared.task,
    );
    let mean = array![0.1, 0.2, 0.3];
    let control = dp
        .aggregate(1, Ok(update_sum_clipped(mean.clone(), 0.0, &["a", "b"], 1)))
        .unwrap();
    let Control::Continue(absorbed) = control else {
        panic!("noise of σ·C = 0.5 moves the model: {control:?}");
    };
    assert!(absorbed.train_loss.is_nan());
    let model = dp.model();
    assert!(model.iter().all(|v| v.is_finite()));
    assert_ne!(model, mean, "the model moved by the clean mean: no noise");
}

/// Every update was noised in full by its member: the coordinator adds no
/// noise on top (the model moves by exactly the mean), and still withholds
/// the loss.
#[test]
fn dp_in_clear_adds_nothing_to_updates_noised_by_their_members() {
    let (config, shared, pre) = setup(DP);
    let mut dp = Dp::new(
        FedAvg::new(&shared, &config, &Mean, &pre, Array1::zeros(3)),
        &shared.task,
    );
    let mean = array![0.1, 0.2, 0.3];
    let control = dp
        .aggregate(1, Ok(update_sum_clipped(mean.clone(), 0.0, &["a", "b"], 0)))
        .unwrap();
    let Control::Continue(absorbed) = control else {
        panic!("the mean moves the model: {control:?}");
    };
    assert!(absorbed.train_loss.is_nan());
    assert_eq!(dp.model(), mean, "noise was added on top of local noise");
}

#[test]
fn dp_under_secure_aggregation_checks_the_count_not_the_rows() {
    let (config, shared, pre) = setup(&format!("{SECURE}{DP}"));
    let dp = Dp::new(
        FedAvg::new(&shared, &config, &Mean, &pre, Array1::zeros(3)),
        &shared.task,
    );
    let sum = update_sum(Array1::zeros(3), 2.0, &["a", "b"]);
    dp.check(1, &sum).expect("two survivors, weight two");
    let wrong = update_sum(Array1::zeros(3), 3.0, &["a", "b"]);
    assert!(matches!(
        dp.check(1, &wrong),
        Err(RunError::SecureAggregation { .. })
    ));
    // Without DP the weight is rows, and none were declared: a weight of 2
    // is accepted, none at all is not.
    let (config, shared, pre) = setup(SECURE);
    let fedavg = FedAvg::new(&shared, &config, &Mean, &pre, Array1::zeros(3));
    fedavg.check(1, &wrong).expect("undeclared rows");
    let empty = update_sum(Array1::zeros(3), 0.0, &["a", "b"]);
    assert!(fedavg.check(1, &empty).is_err());
}

#[test]
fn newton_starts_from_its_start_and_the_closed_form_checkpoints_no_round() {
    let (config, shared, pre) = setup("");
    let mut newton = Newton::new(&shared, &config, &pre, array![0.5, 0.0, -0.5]).unwrap();
    assert_eq!(newton.model(), array![0.5, 0.0, -0.5]);
    assert!(matches!(
        newton.configure(4).map(|w| w.instruction),
        Some(Instruction::Newton { round: 4, .. })
    ));
    assert!(matches!(
        newton.aggregate(1, Err(timeout())),
        Err(RunError::Timeout { .. })
    ));
    const {
        assert!(!<ClosedForm<'static> as Algorithm>::CHECKPOINTS_ROUNDS);
        assert!(<Dp<FedAvg<'static>> as Algorithm>::CHECKPOINTS_ROUNDS);
    }
    assert_eq!(ClosedForm::new(&shared, &pre).rounds(), 1);
}
