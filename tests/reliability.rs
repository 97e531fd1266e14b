//! Reliability end to end: real processes on 127.0.0.1 over mutual TLS,
//! with a node killed mid-run.

use std::time::Duration;

use medfed::{CoordinatorCrash, Crash, Federation, Site, synthetic_csv};

const MEMBERS: [&str; 5] = ["site-1", "site-2", "site-3", "site-4", "site-5"];

fn task(quorum: usize) -> String {
    let members: Vec<String> = MEMBERS.iter().map(|m| format!("{m:?}")).collect();
    format!(
        r#"
[task]
id = "crash-test"
members = [{}]
model = "logistic"
features = ["x1", "x2", "x3"]
target = "y"

[training]
algorithm = "fedavg"
rounds = 12
quorum = {quorum}

[evaluation]
holdout_fraction = 0.3
split_seed = 7

[timeouts]
join_seconds = 30
step_seconds = 2
"#,
        members.join(", ")
    )
}

fn federation(dir: &std::path::Path, crash: Option<Crash>) -> Federation {
    Federation {
        task_toml: task(4),
        sites: MEMBERS
            .iter()
            .zip(1u64..)
            .map(|(name, seed)| Site {
                name: (*name).into(),
                csv: synthetic_csv(dir, name, seed, 150),
                node_args: Vec::new(),
            })
            .collect(),
        intruders: vec![],
        import_args: vec!["--target".into(), "y".into()],
        crash,
        coordinator_crash: None,
        coordinator_args: Vec::new(),
        pause: None,
        vanish: Vec::new(),
        // These runs are compared by their held-out AUC; on these small
        // synthetic sites a confusion-matrix cell holds fewer than 5
        // patients, which the default min_cell withholds, so the hospitals
        // here release cells of any size.
        node_policy: Some("min_cell = 1".into()),
    }
}

fn auc(run: &medfed::Outcome) -> f64 {
    run.summary.as_ref().expect("summary.json")["federated"]["overall"]["auc"]
        .as_f64()
        .expect("overall AUC")
}

#[test]
fn a_node_killed_mid_round_rejoins_and_the_run_completes_with_quorum() {
    let data = tempfile::tempdir().expect("temp dir");
    let clean = federation(data.path(), None).run();
    assert!(clean.coordinator.success(), "{}", clean.coordinator_stderr);

    let crashed = federation(
        data.path(),
        Some(Crash {
            node: "site-3".into(),
            after: "sent update for round 3:".into(),
            // Longer than the 2 s step deadline: at least one round closes
            // without site-3, on the quorum of 4.
            restart_after: Duration::from_millis(2500),
        }),
    )
    .run();
    assert!(
        crashed.coordinator.success(),
        "{}",
        crashed.coordinator_stderr
    );
    for node in &crashed.nodes {
        assert!(node.status.success(), "{}: {}", node.name, node.stderr);
    }
    let victim = crashed.node("site-3");
    let before = victim.killed_stdout.as_ref().expect("site-3 was killed");
    assert!(before.contains("sent update for round 3:"), "{before}");
    assert!(!before.contains("finished"), "killed too late: {before}");
    // The restarted process rejoined, trained again and saw the end.
    assert!(
        victim.stdout.contains("joined task crash-test"),
        "{}",
        victim.stdout
    );
    assert!(
        victim.stdout.contains("sent update for round"),
        "{}",
        victim.stdout
    );
    assert!(victim.stdout.contains("finished"), "{}", victim.stdout);

    let summary = crashed.summary.as_ref().expect("summary.json");
    let rounds = summary["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 12);
    let short: Vec<&serde_json::Value> = rounds
        .iter()
        .filter(|r| r["contributors"].as_u64() == Some(4))
        .collect();
    assert!(
        !short.is_empty(),
        "no round closed on the quorum: {rounds:?}"
    );
    for round in &short {
        assert_eq!(round["missing"], serde_json::json!(["site-3"]), "{round}");
    }
    for round in rounds {
        assert!(round["contributors"].as_u64() >= Some(4), "{round}");
    }
    // Some later round had all five again.
    let last_short = short.last().expect("short round")["round"].as_u64();
    assert!(
        rounds
            .iter()
            .any(|r| r["round"].as_u64() > last_short && r["contributors"].as_u64() == Some(5)),
        "site-3 never contributed again: {rounds:?}"
    );
    // A correct model: as good as the uninterrupted run on the same rows.
    let (a, b) = (auc(&clean), auc(&crashed));
    assert!(a > 0.8, "clean AUC {a}");
    assert!((a - b).abs() < 0.02, "clean AUC {a}, with a crash {b}");
}

/// Ten sites, the last of which is hostile when `hostile` is set: it sends
/// every update multiplied by -100.
fn ten_sites(dir: &std::path::Path, aggregation: &str, hostile: bool) -> Federation {
    let names: Vec<String> = (1..=10).map(|i| format!("h{i:02}")).collect();
    let members: Vec<String> = names.iter().map(|m| format!("{m:?}")).collect();
    let task = format!(
        r#"
[task]
id = "hostile-test"
members = [{}]
model = "logistic"
features = ["x1", "x2", "x3"]
target = "y"

[training]
algorithm = "fedavg"
rounds = 10
aggregation = "{aggregation}"
trim_fraction = 0.2

[evaluation]
holdout_fraction = 0.3
split_seed = 11

[timeouts]
join_seconds = 30
step_seconds = 10
"#,
        members.join(", ")
    );
    Federation {
        task_toml: task,
        sites: names
            .iter()
            .zip(100u64..)
            .map(|(name, seed)| Site {
                name: name.clone(),
                csv: synthetic_csv(dir, name, seed, 120),
                node_args: if hostile && name == "h10" {
                    vec!["--danger-scale-updates=-100".into()]
                } else {
                    Vec::new()
                },
            })
            .collect(),
        intruders: vec![],
        import_args: vec!["--target".into(), "y".into()],
        crash: None,
        coordinator_crash: None,
        coordinator_args: Vec::new(),
        pause: None,
        vanish: Vec::new(),
        // Compared by held-out AUC, as above: small synthetic sites.
        node_policy: Some("min_cell = 1".into()),
    }
}

#[test]
fn median_and_trimmed_mean_withstand_a_hostile_member_that_fedavg_does_not() {
    let data = tempfile::tempdir().expect("temp dir");
    let run = |aggregation: &str, hostile: bool| {
        let outcome = ten_sites(data.path(), aggregation, hostile).run();
        assert!(
            outcome.coordinator.success(),
            "{aggregation}: {}",
            outcome.coordinator_stderr
        );
        auc(&outcome)
    };
    let clean = run("fedavg", false);
    let fedavg = run("fedavg", true);
    let median = run("median", true);
    let trimmed = run("trimmed-mean", true);
    println!(
        "held-out AUC with 1 of 10 members sending updates x -100: clean FedAvg {clean:.4}, \
         FedAvg {fedavg:.4}, median {median:.4}, trimmed mean {trimmed:.4}"
    );
    assert!(clean > 0.8, "clean AUC {clean}");
    assert!(
        (median - clean).abs() < 0.02,
        "median {median} vs clean {clean}"
    );
    assert!(
        (trimmed - clean).abs() < 0.02,
        "trimmed {trimmed} vs clean {clean}"
    );
    assert!(
        fedavg < clean - 0.1,
        "FedAvg was not hurt: {fedavg} vs {clean}"
    );
}

#[test]
fn updates_over_the_norm_bound_are_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut federation = ten_sites(data.path(), "fedavg", true);
    federation.task_toml = federation
        .task_toml
        .replace("trim_fraction = 0.2", "max_update_norm = 50.0\nquorum = 9")
        .replace("rounds = 10", "rounds = 3")
        .replace("step_seconds = 10", "step_seconds = 2");
    let outcome = federation.run();
    assert!(
        outcome.coordinator.success(),
        "{}",
        outcome.coordinator_stderr
    );
    let hostile = outcome.node("h10");
    assert!(
        !hostile.status.success(),
        "the hostile node was not refused"
    );
    assert!(
        hostile.stderr.contains("exceeds the task's bound 50"),
        "{}",
        hostile.stderr
    );
    assert!(
        outcome
            .coordinator_stderr
            .contains("exceeds the task's bound"),
        "{}",
        outcome.coordinator_stderr
    );
    let rounds = outcome.summary.as_ref().expect("summary")["rounds"]
        .as_array()
        .expect("rounds")
        .clone();
    assert!(
        rounds.iter().all(|r| r["contributors"].as_u64() == Some(9)),
        "{rounds:?}"
    );
}

/// The heart sites with a coordinator killed (SIGKILL) once round `kill_at`
/// has been reported, and started again with the same command.
fn heart_with_coordinator_crash(algorithm: &str, kill_at: Option<u32>) -> medfed::Outcome {
    let sites = ["cleveland", "hungarian", "switzerland", "va"];
    let members: Vec<String> = sites.iter().map(|m| format!("{m:?}")).collect();
    let task = format!(
        r#"
[task]
id = "restart"
members = [{}]
model = "logistic"
features = ["age", "sex", "cp", "trestbps", "chol", "thalach", "exang", "oldpeak"]
target = "target"

[training]
algorithm = "{algorithm}"
rounds = 12
tolerance = 1e-12
l2 = 0.01

[evaluation]
baselines = false
"#,
        members.join(", ")
    );
    let mut federation = Federation::heart(&sites, task);
    federation.coordinator_crash = kill_at.map(|round| CoordinatorCrash {
        after: format!("round {round:>2}/"),
        restart_after: Duration::from_millis(500),
    });
    let run = federation.run();
    assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
    for node in &run.nodes {
        assert!(node.status.success(), "{}: {}", node.name, node.stderr);
    }
    run
}

fn final_parameters(run: &medfed::Outcome) -> Vec<f64> {
    let model = run.model.as_ref().expect("model.json");
    std::iter::once(&model["intercept"])
        .chain(model["coefficients"].as_array().expect("coefficients"))
        .map(|v| v.as_f64().expect("number"))
        .collect()
}

#[test]
fn a_coordinator_killed_mid_run_resumes_and_ends_with_the_same_model() {
    // A different round on different runs of the test.
    let kill_at = 2 + std::process::id() % 8;
    let clean = heart_with_coordinator_crash("fedavg", None);
    let crashed = heart_with_coordinator_crash("fedavg", Some(kill_at));
    let before = crashed
        .coordinator_killed_stdout
        .as_ref()
        .expect("the coordinator was killed");
    assert!(before.contains(&format!("round {kill_at:>2}/")), "{before}");
    assert!(
        !before.contains("summary written"),
        "killed too late: {before}"
    );
    assert!(
        crashed.coordinator_stdout.contains("resuming from"),
        "{}",
        crashed.coordinator_stdout
    );
    let summary = crashed.summary.as_ref().expect("summary.json");
    assert_eq!(summary["rounds"].as_array().map(Vec::len), Some(12));
    // FedAvg is deterministic: the resumed run's model is the same model.
    let (a, b) = (final_parameters(&clean), final_parameters(&crashed));
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() <= 1e-12,
            "uninterrupted {a:?}\nresumed {b:?} (killed after round {kill_at})"
        );
    }
    // The task state is gone once the run is complete.
    assert!(!crashed.dir.path().join("run/state.json").exists());
    // The coordinator's exchange log went on after the restart and verifies.
    let verified = std::process::Command::new(medfed::bin("medfed-audit"))
        .arg("verify")
        .arg(crashed.dir.path().join("run/exchange.log"))
        .output()
        .expect("medfed-audit");
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}

#[test]
fn a_coordinator_killed_during_newton_resumes_to_the_same_optimum() {
    let clean = heart_with_coordinator_crash("newton", None);
    let crashed = heart_with_coordinator_crash("newton", Some(2));
    let before = crashed
        .coordinator_killed_stdout
        .as_ref()
        .expect("the coordinator was killed");
    assert!(!before.contains("converged"), "killed too late: {before}");
    assert!(crashed.coordinator_stdout.contains("resuming from"));
    // The line search restarts from the last accepted point, so the path
    // may differ; the optimum does not.
    let (a, b) = (final_parameters(&clean), final_parameters(&crashed));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-9 * x.abs().max(1.0), "{a:?}\n{b:?}");
    }
}
