//! A hostile coordinator against a hospital's differential privacy: in a
//! DP task the real `node` releases nothing but clipped training updates
//! noised with the σ it agreed to at join, whatever the coordinator asks.
//! Each attack is played over the real protocol (a real `node` process, a
//! scripted coordinator over mutual TLS on 127.0.0.1): exact Newton or
//! normal-equation sums, a site-alone model, per-site held-out counts in
//! clear and un-noised statistics are refused in a signed notice naming the
//! rule, with nothing computed from the rows sent or logged; a σ below the
//! hospital's floor is refused at join; without secure aggregation the
//! update that reaches the coordinator is noised by the node itself unless
//! the hospital trusts the coordinator's noise; a round's held-out counts
//! never leave.

use std::process::ExitStatus;

use medfed::NodeRun;
use medfed::hostile::{
    Hospital, HostileCoordinator, ROW_DERIVED_KINDS, Script, Submitted, plain_preprocessing,
    two_feature_csv, two_feature_task,
};
use medfed_model::ModelKind;
use medfed_wire::pb::{self, submission::Body};
use medfed_wire::{DifferentialPrivacy, Instruction, Task, TrainingAlgorithm};
use ndarray::Array1;

/// The member the hospital's certificate names.
const MEMBER: &str = "st-elsewhere";
/// Patients at the site.
const ROWS: usize = 80;
/// The exit status of a policy refusal.
const POLICY_EXIT: i32 = 7;
/// The `[privacy]` table of a hospital that takes part in DP tasks.
const BUDGET: &str = "[privacy]\nepsilon = 10.0\ndelta = 1e-5\n";
/// The noise multiplier of the tasks here: large, so that one noised
/// update is told from a clipped one with a false-failure probability far
/// below 1e-9 (see [`chance_noised_update_looks_clipped`]); it costs a
/// tiny ε.
const SIGMA: f64 = 1000.0;
/// The clip norm: far below the norm of a raw update, so clipping shows.
const CLIP: f64 = 0.01;

/// A logistic DP-FedAvg task over `x1` and `x2` at σ = [`SIGMA`] and
/// C = [`CLIP`], without secure aggregation, for this one member.
fn dp_task(id: &str) -> Task {
    Task {
        learning_rate: 0.5,
        differential_privacy: Some(DifferentialPrivacy {
            noise_multiplier: SIGMA,
            clip_norm: CLIP,
        }),
        ..two_feature_task(id, &[MEMBER])
    }
}

/// Round 1 of `task` from the zero model.
fn train(task: &Task, evaluate: bool) -> Instruction {
    Instruction::Train {
        round: 1,
        global: Array1::zeros(task.dimension()),
        preprocessing: plain_preprocessing(task),
        prox_mu: 0.0,
        evaluate,
    }
}

/// A hospital facing a hostile coordinator that serves `script`, run once
/// with `policy` in its `[policy]` table and a privacy budget.
struct Attack {
    hospital: Hospital,
    coordinator: HostileCoordinator,
    run: NodeRun,
}

impl Attack {
    fn run(script: Script, policy: &str) -> Attack {
        let hospital = Hospital::new(MEMBER, &two_feature_csv(ROWS), "y");
        let coordinator = hospital.coordinator(script);
        let node_file = hospital.node_file(&coordinator.url(), policy, BUDGET);
        let run = hospital.run(&node_file);
        Attack {
            hospital,
            coordinator,
            run,
        }
    }

    fn output(&self) -> String {
        format!("{}{}", self.run.stdout, self.run.stderr)
    }

    /// Checks that the node sent nothing but one signed refusal of `step`
    /// by `rule`, said so, exited with the policy status, and logged the
    /// refusal as sent and nothing computed from its rows. Returns the
    /// refusal.
    fn refused(&self, rule: &str, step: u64) -> pb::Refusal {
        let output = self.output();
        let received = self.coordinator.received();
        assert_eq!(received.kinds(), ["refusal"], "node output:\n{output}");
        assert_exit(self.run.status, POLICY_EXIT, &output);
        let submitted = &received.submissions[0];
        assert!(submitted.signature_valid, "the refusal is not signed");
        assert_eq!(submitted.peer.as_deref(), Some(MEMBER));
        let refusal = submitted.refusal().expect("a refusal").clone();
        assert_eq!(
            (refusal.rule.as_str(), refusal.step),
            (rule, step),
            "{refusal:?}"
        );
        assert!(
            output.contains(&format!("`{rule}`")),
            "the output does not name the rule `{rule}`:\n{output}"
        );
        let log = self.hospital.exchange_log();
        let refusals: Vec<_> = log.iter().filter(|e| e.kind == "refusal").collect();
        assert_eq!(refusals.len(), 1, "{log:#?}");
        assert_eq!(
            refusals[0].sha256,
            medfed_audit::Digest::of(&submitted.signed.body).to_string(),
            "the log holds another refusal than the one sent"
        );
        let row_derived: Vec<&str> = log
            .iter()
            .filter(|e| ROW_DERIVED_KINDS.contains(&e.kind.as_str()))
            .map(|e| e.kind.as_str())
            .collect();
        assert!(
            row_derived.is_empty(),
            "row-derived entries: {row_derived:?}"
        );
        refusal
    }

    /// The one update the coordinator received (the node then finished).
    fn update(&self) -> pb::ModelUpdate {
        let output = self.output();
        assert_exit(self.run.status, 0, &output);
        let received = self.coordinator.received();
        assert_eq!(received.kinds(), ["update"], "node output:\n{output}");
        update_of(&received.submissions[0])
    }
}

fn update_of(submitted: &Submitted) -> pb::ModelUpdate {
    assert!(submitted.signature_valid, "the update is not signed");
    match &submitted.body {
        Some(Body::Update(update)) => update.clone(),
        other => panic!("expected an update, got {other:?}"),
    }
}

fn assert_exit(status: ExitStatus, code: i32, output: &str) {
    assert_eq!(
        status.code(),
        Some(code),
        "node exit status ({status}); output:\n{output}"
    );
}

/// The L2 norm of a delta as sent, by the function the node clips with.
fn norm(update: &pb::ModelUpdate) -> f64 {
    let delta = update.delta.as_ref().expect("a delta");
    medfed_secure::dp::l2_norm(&delta.values)
}

/// An upper bound on the chance that a noised update of dimension 3 has
/// norm at most C, i.e. that the test of local noise fails although the
/// node noised. The update is `u + z` with `|u| <= C` and `z ~ N(0, s² I₃)`,
/// `s = σC`; its norm is at most C only if `z` falls in the ball of radius
/// C around `-u`, whose probability is at most the ball's volume times the
/// largest density: `(4/3)πC³ · (2πs²)^(-3/2) = (4/3)π(2π)^(-3/2) / σ³`,
/// about 0.266 / σ³ = 2.7e-10 at σ = 1000.
fn chance_noised_update_looks_clipped(dimension: usize) -> f64 {
    assert_eq!(dimension, 3, "the bound below is for three coordinates");
    let pi = std::f64::consts::PI;
    4.0 / 3.0 * pi * (2.0 * pi).powf(-1.5) / SIGMA.powi(3)
}

/// A DP task that announces federated Newton: its exact gradient and
/// Hessian sums are neither clipped nor noised. Refused at join.
#[test]
fn a_dp_task_announcing_newton_is_refused_at_join_by_task() {
    let mut task = dp_task("dp-newton");
    task.algorithm = TrainingAlgorithm::Newton;
    let script = Script::new(&task).then(Instruction::Newton {
        round: 1,
        params: Array1::zeros(task.dimension()),
        preprocessing: plain_preprocessing(&task),
        evaluate: false,
    });
    let refusal = Attack::run(script, "").refused("task", 0);
    assert!(refusal.reason.contains("newton"), "{refusal:?}");
}

/// A DP task that announces the closed form (X'X and X'y in clear).
#[test]
fn a_dp_task_announcing_the_closed_form_is_refused_at_join_by_task() {
    let mut task = dp_task("dp-closed-form");
    task.model = ModelKind::Linear;
    task.algorithm = TrainingAlgorithm::ClosedForm;
    let script = Script::new(&task).then(Instruction::Normal {
        preprocessing: plain_preprocessing(&task),
    });
    let refusal = Attack::run(script, "").refused("task", 0);
    assert!(refusal.reason.contains("closed-form"), "{refusal:?}");
}

/// A DP FedAvg task whose coordinator asks, at a step, for the closed
/// form's terms anyway.
#[test]
fn normal_equation_terms_asked_in_a_dp_task_are_refused_by_task() {
    let task = dp_task("dp-then-normal");
    let script = Script::new(&task).then(Instruction::Normal {
        preprocessing: plain_preprocessing(&task),
    });
    let refusal = Attack::run(script, "").refused("task", 1);
    assert!(refusal.reason.contains("normal-equation"), "{refusal:?}");
}

/// A DP task whose coordinator asks for a model trained on this site's
/// rows alone, sent without clipping or noise.
#[test]
fn a_site_alone_model_asked_in_a_dp_task_is_refused_by_task() {
    let task = dp_task("dp-then-baseline");
    let script = Script::new(&task).then(Instruction::Baseline {
        preprocessing: plain_preprocessing(&task),
        steps: 50,
    });
    let refusal = Attack::run(script, "").refused("task", 1);
    assert!(refusal.reason.contains("rows alone"), "{refusal:?}");
}

/// Per-site held-out counts of a model the coordinator chose, in clear:
/// not noised, so refused whatever `dp_unnoised` says.
#[test]
fn per_site_evaluation_counts_in_a_dp_task_are_refused_by_task() {
    let task = dp_task("dp-then-evaluate");
    let mut model = Array1::zeros(task.dimension());
    model[1] = 3.0;
    let script = Script::new(&task).then(Instruction::Evaluate {
        preprocessing: plain_preprocessing(&task),
        models: vec![model],
    });
    let attack = Attack::run(script, "dp_unnoised = \"clear-statistics\"");
    let refusal = attack.refused("task", 1);
    assert!(refusal.reason.contains("held-out"), "{refusal:?}");
}

/// The statistics pass in clear (this site's counts, sums and ranges) in a
/// DP task, under the default `dp_unnoised = "secure-sums"`.
#[test]
fn clear_statistics_in_a_dp_task_are_refused_by_dp_unnoised() {
    let task = dp_task("dp-statistics");
    let script = Script::new(&task).then(Instruction::CollectStatistics);
    let refusal = Attack::run(script, "").refused("dp_unnoised", 1);
    assert!(refusal.reason.contains("secure-sums"), "{refusal:?}");
}

/// A σ below the hospital's floor is refused at join, before anything is
/// computed or charged.
#[test]
fn a_noise_multiplier_below_the_floor_is_refused_at_join() {
    let task = dp_task("dp-thin-noise");
    let script = Script::new(&task).then(train(&task, false));
    let attack = Attack::run(script, "min_noise_multiplier = 2000.0");
    let refusal = attack.refused("min_noise_multiplier", 0);
    assert!(refusal.reason.contains("2000"), "{refusal:?}");
    let record = attack.hospital.root().join("records.vault.privacy.json");
    assert!(
        !record.exists(),
        "a round was charged: {}",
        record.display()
    );
}

/// Without secure aggregation and with the default policy the node does
/// not trust the coordinator with the noise: the update it sends is
/// clipped to C and noised with σ·C itself, so its norm exceeds C (the
/// chance of a false failure is below 1e-9), and its spend says so.
#[test]
fn without_secure_aggregation_the_node_noises_its_own_update_by_default() {
    let task = dp_task("dp-local");
    let bound = chance_noised_update_looks_clipped(task.dimension());
    assert!(bound < 1e-9, "{bound}");
    let attack = Attack::run(Script::new(&task).then(train(&task, false)), "");
    let update = attack.update();
    let norm = norm(&update);
    assert!(
        norm > CLIP,
        "norm {norm} <= C = {CLIP}: the update left un-noised (chance of this with noise < {bound:e})"
    );
    let spend = update.privacy_spend.expect("a spend");
    assert_eq!(spend.noise(), pb::SpendNoise::Full, "{spend:?}");
    assert_eq!(spend.noise_multiplier, SIGMA, "the task's σ, charged");
    assert_eq!((update.num_rows, update.train_loss), (0, 0.0));
    let output = attack.output();
    assert!(
        output.contains("local noise") && output.contains("trust_coordinator_noise = false"),
        "the node does not say where its noise goes:\n{output}"
    );
}

/// With `trust_coordinator_noise = true` the node clips only (the
/// coordinator is to noise the sum): the update's norm is C to rounding,
/// and its spend says it was clipped only.
#[test]
fn a_node_that_trusts_the_coordinator_noise_sends_its_update_clipped_only() {
    let task = dp_task("dp-central");
    let script = Script::new(&task).then(train(&task, false));
    let attack = Attack::run(script, "trust_coordinator_noise = true");
    let update = attack.update();
    let norm = norm(&update);
    // A raw update here is many times C (a logistic model moving from
    // zero), so clipping leaves it at C.
    assert!(
        norm <= CLIP && norm > CLIP * (1.0 - 1e-9),
        "norm {norm} is not C = {CLIP}"
    );
    let spend = update.privacy_spend.expect("a spend");
    assert_eq!(spend.noise(), pb::SpendNoise::ClippedOnly, "{spend:?}");
    let output = attack.output();
    assert!(
        output.contains("central noise") && output.contains("trust_coordinator_noise = true"),
        "the node does not say where its noise goes:\n{output}"
    );
}

/// A training round of a DP task that asks for the round's held-out counts
/// gets the round's update and no counts: the counts sent are those of no
/// rows, and the node says why.
#[test]
fn held_out_counts_asked_with_a_dp_round_are_not_sent() {
    let mut task = dp_task("dp-round-counts");
    task.evaluate_every = 1;
    let attack = Attack::run(Script::new(&task).then(train(&task, true)), "");
    let update = attack.update();
    if let Some(counts) = &update.evaluation {
        assert!(
            counts.values.iter().all(|v| *v == 0.0),
            "held-out counts left: {:?}",
            &counts.values[..counts.values.len().min(8)]
        );
    }
    let output = attack.output();
    assert!(
        output.contains("held-out counts of the round withheld"),
        "{output}"
    );
    assert!(norm(&update) > CLIP, "the update itself is noised as ever");
}
