//! Secure aggregation end to end: real `coordinator` and `node` processes on
//! 127.0.0.1 over mutual TLS, with members masking every update so the
//! coordinator learns only the sum.

use std::time::Duration;

use medfed::{Crash, Federation, Site, Vanish, synthetic_csv};

const HEART_SITES: [&str; 4] = ["cleveland", "hungarian", "switzerland", "va"];

fn heart_task(privacy: &str) -> String {
    format!(
        r#"
[task]
id = "heart-secagg"
members = ["cleveland", "hungarian", "switzerland", "va"]
model = "logistic"
features = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg",
  "thalach", "exang", "oldpeak", "slope", "thal"]
target = "target"

[training]
algorithm = "fedavg"
rounds = 8
local_steps = 5
learning_rate = 0.5
l2 = 0.001
tolerance = 0.0

[evaluation]
holdout_fraction = 0.25
split_seed = 2026

[timeouts]
join_seconds = 60
step_seconds = 60
{privacy}
"#
    )
}

/// Intercept then coefficients of a run's model file.
fn parameters(run: &medfed::Outcome) -> Vec<f64> {
    let model = run.model.as_ref().expect("model.json");
    let mut params = vec![model["intercept"].as_f64().expect("intercept")];
    params.extend(
        model["coefficients"]
            .as_array()
            .expect("coefficients")
            .iter()
            .map(|v| v.as_f64().expect("number")),
    );
    params
}

/// Every entry of the coordinator's exchange log, decrypted: (kind, peer,
/// direction, payload).
fn coordinator_log(run: &medfed::Outcome) -> Vec<(String, String, String, Vec<u8>)> {
    let root = run.dir.path();
    let key =
        medfed_audit::AuditKey::from_file(&root.join("coordinator-audit.key")).expect("audit key");
    medfed_audit::read_log(&root.join("run/exchange.log"))
        .expect("exchange log")
        .into_iter()
        .map(|entry| {
            let payload = key.decrypt(&entry.payload).expect("payload decrypts");
            (
                entry.kind.clone(),
                entry.peer.clone(),
                format!("{:?}", entry.direction),
                payload,
            )
        })
        .collect()
}

#[test]
fn heart_sites_with_secure_aggregation_train_the_same_model_as_without() {
    let clear = Federation::heart(&HEART_SITES, heart_task("")).run();
    assert!(clear.coordinator.success(), "{}", clear.coordinator_stderr);
    let secure = Federation::heart(
        &HEART_SITES,
        heart_task("[privacy]\nsecure_aggregation = true\nthreshold = 3\n"),
    )
    .run();
    assert!(
        secure.coordinator.success(),
        "{}",
        secure.coordinator_stderr
    );
    for node in &secure.nodes {
        assert!(node.status.success(), "{}: {}", node.name, node.stderr);
        assert!(
            node.stdout.contains("sent masked input for round 8"),
            "{}",
            node.stdout
        );
        assert!(!node.stdout.contains("sent update"), "{}", node.stdout);
    }

    // Fixed point with 24 fractional bits: each summed value of a round is
    // within n x 2^-25 (n = 4) of the exact sum, i.e. about 1.2e-7 before
    // the division by the round's rows (hundreds), so each round's mean
    // update is within 1e-9; over 8 rounds the models agree to far better
    // than 1e-6.
    let (a, b) = (parameters(&clear), parameters(&secure));
    assert_eq!(a.len(), b.len());
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    println!("largest coefficient difference with secure aggregation: {worst:.3e}");
    for (label, run) in [("clear", &clear), ("secure aggregation", &secure)] {
        let summary = run.summary.as_ref().expect("summary.json");
        println!(
            "heart, fedavg, 8 rounds, {label}: AUC {:.4}, median round {:.1} ms",
            summary["federated"]["overall"]["auc"]
                .as_f64()
                .unwrap_or(f64::NAN),
            summary["median_round_ms"].as_f64().unwrap_or(f64::NAN)
        );
    }
    assert!(worst < 1e-6, "models differ by {worst}: {a:?} vs {b:?}");
    assert!(worst > 0.0 || a.iter().all(|v| *v != 0.0), "{a:?}");

    let summary = secure.summary.as_ref().expect("summary.json");
    assert_eq!(
        summary["privacy"]["secure_aggregation"], true,
        "{summary:#}"
    );
    assert_eq!(summary["privacy"]["threshold"], 3);
    assert_eq!(summary["privacy"]["fixed_point_bits"], 24);
    for round in summary["rounds"].as_array().expect("rounds") {
        assert_eq!(round["contributors"], 4, "{round}");
    }

    // No clear-text update from any node: the coordinator logged only
    // secure-aggregation messages from them in the training rounds, and
    // none of those payloads decodes as a model update.
    let log = coordinator_log(&secure);
    let from_nodes: Vec<&str> = log
        .iter()
        .filter(|(_, _, direction, _)| direction == "In")
        .map(|(kind, ..)| kind.as_str())
        .collect();
    assert_nothing_in_clear(&from_nodes.iter().map(|k| k.to_string()).collect::<Vec<_>>());
    let secagg = from_nodes.iter().filter(|k| **k == "secagg").count();
    // 5 stages (keys, shares, masked input, consistency check, unmasking)
    // x (2 statistics passes + 8 rounds + the final evaluation) x 4 members.
    assert_eq!(secagg, 5 * 11 * 4, "{from_nodes:?}");
    // The statistics, and so the preprocessing, are the clear run's within
    // the fixed point (the models above agree to 1e-6 through them); what
    // is reported is the sum over the sites only.
    let clear_summary = clear.summary.as_ref().expect("summary.json");
    let clear_rows: u64 = clear_summary["train_rows"]
        .as_object()
        .expect("train_rows")
        .values()
        .map(|v| v.as_u64().expect("rows"))
        .sum();
    assert_eq!(summary["total_train_rows"], clear_rows, "{summary:#}");
    assert_eq!(summary["train_rows"], serde_json::json!({}), "{summary:#}");
    assert_eq!(
        summary["federated"]["per_site"],
        serde_json::json!({}),
        "{summary:#}"
    );
    let auc = |s: &serde_json::Value| s["federated"]["overall"]["auc"].as_f64().expect("auc");
    assert!(
        (auc(summary) - auc(clear_summary)).abs() < 1e-6,
        "{} vs {}",
        auc(summary),
        auc(clear_summary)
    );
    assert_eq!(
        summary["federated"]["overall"]["rows"],
        clear_summary["federated"]["overall"]["rows"]
    );
    for (kind, peer, _, payload) in &log {
        if kind == "secagg" {
            let decoded = medfed_audit::describe_payload(kind, payload);
            assert_eq!(
                decoded.message_type, "medfed.v2.SecAggSubmission",
                "{peer}: {decoded:?}"
            );
        }
    }
    // Roster certificates go to each member in full once; later key
    // requests name them by digest.
    let mut key_requests: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
    for (kind, peer, direction, payload) in &log {
        if kind == "secagg-keys-request" && direction == "Out" {
            let decoded = medfed_audit::describe_payload(kind, payload);
            let roster = decoded.content["body"]["roster"]
                .as_array()
                .expect("roster");
            assert_eq!(roster.len(), 4, "{decoded:?}");
            let full = roster
                .iter()
                .filter(|m| m["certificate_bytes"].as_u64().is_some_and(|b| b > 0))
                .count();
            key_requests.entry(peer.as_str()).or_default().push(full);
        }
    }
    assert_eq!(key_requests.len(), 4, "{key_requests:?}");
    for (peer, full) in &key_requests {
        assert_eq!(full.len(), 11, "{peer}: {full:?}");
        assert_eq!(full[0], 4, "{peer}: {full:?}");
        assert!(full[1..].iter().all(|&f| f == 0), "{peer}: {full:?}");
    }
    // Each member received only the shares encrypted for it.
    for (kind, peer, direction, payload) in &log {
        if kind == "secagg-routed-shares" && direction == "Out" {
            let decoded = medfed_audit::describe_payload(kind, payload);
            let routed = decoded.content["body"]["routed"]
                .as_array()
                .expect("routed");
            assert_eq!(routed.len(), 1, "{decoded:?}");
            assert_eq!(routed[0]["member"].as_str(), Some(peer.as_str()));
        }
    }
}

/// Largest absolute difference between two parameter vectors.
fn largest_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

/// Kinds of the coordinator's log entries that came in from nodes.
/// Fails if any message computed from a member's rows reached the
/// coordinator in clear (the exchange-log kinds of the clear calls).
fn assert_nothing_in_clear(from_nodes: &[String]) {
    let clear = [
        "statistics",
        "histograms",
        "update",
        "newton-terms",
        "normal-terms",
        "baseline",
        "evaluation",
    ];
    assert!(
        !from_nodes.iter().any(|k| clear.contains(&k.as_str())),
        "{from_nodes:?}"
    );
}

fn kinds_from_nodes(run: &medfed::Outcome) -> Vec<String> {
    coordinator_log(run)
        .into_iter()
        .filter(|(_, _, direction, _)| direction == "In")
        .map(|(kind, ..)| kind)
        .collect()
}

#[test]
fn heart_sites_with_secure_aggregation_reach_the_same_newton_model_as_without() {
    let task = |privacy: &str| {
        heart_task(privacy)
            .replace("algorithm = \"fedavg\"", "algorithm = \"newton\"")
            .replace("rounds = 8", "rounds = 12")
            .replace("tolerance = 0.0", "tolerance = 1e-10")
    };
    let clear = Federation::heart(&HEART_SITES, task("")).run();
    assert!(clear.coordinator.success(), "{}", clear.coordinator_stderr);
    let secure = Federation::heart(
        &HEART_SITES,
        task("[privacy]\nsecure_aggregation = true\nthreshold = 3\n"),
    )
    .run();
    assert!(
        secure.coordinator.success(),
        "{}",
        secure.coordinator_stderr
    );
    for node in &secure.nodes {
        assert!(node.status.success(), "{}: {}", node.name, node.stderr);
        assert!(node.stdout.contains("Newton terms of"), "{}", node.stdout);
        assert!(
            node.stdout.contains("sent masked input for round 1"),
            "{}",
            node.stdout
        );
    }

    // Each summed value is within m x 2^-(f+1) = 4 x 2^-25 ≈ 1.2e-7 of the
    // exact sum (f = 24 fractional bits, m = 4 members). Newton stops where
    // the objective's gradient, sum / N + l2 w, vanishes; a gradient-sum
    // error e moves that point by at most |e| sqrt(D) / (N l2) (the
    // objective's curvature is at least l2): with D = 14 parameters,
    // N ≈ 690 training rows and l2 = 0.001, about 6.4e-7. Hessian errors
    // change only the path, not the point, and both runs stop within the
    // 1e-10 tolerance of theirs.
    let (a, b) = (parameters(&clear), parameters(&secure));
    let worst = largest_difference(&a, &b);
    println!("Newton, heart: largest coefficient difference with secure aggregation: {worst:.3e}");
    for (label, run) in [("clear", &clear), ("secure aggregation", &secure)] {
        let summary = run.summary.as_ref().expect("summary.json");
        println!(
            "heart, newton, {label}: {} rounds, AUC {:.4}, {}",
            summary["rounds"].as_array().map_or(0, Vec::len),
            summary["federated"]["overall"]["auc"]
                .as_f64()
                .unwrap_or(f64::NAN),
            summary["stop_reason"]
        );
    }
    assert!(worst < 1e-6, "models differ by {worst}: {a:?} vs {b:?}");
    assert!(a.iter().any(|v| *v != 0.0), "{a:?}");
    let summary = secure.summary.as_ref().expect("summary.json");
    assert_eq!(summary["algorithm"], "newton", "{summary:#}");
    for round in summary["rounds"].as_array().expect("rounds") {
        assert_eq!(round["contributors"], 4, "{round}");
    }

    // Held-out counts are summed masked too: each round has overall scores
    // only, the same as the clear run's pooled ones up to the fixed point.
    for round in 1..=3 {
        let (loss, rows) = overall_loss(&secure, round);
        let clear_record = &clear.summary.as_ref().expect("summary.json")["rounds"][round - 1];
        let clear_loss = clear_record["held_out"]["overall"]["log_loss"]
            .as_f64()
            .expect("clear log-loss");
        assert_eq!(
            Some(rows),
            clear_record["held_out"]["overall"]["rows"].as_f64()
        );
        assert!(
            clear_record["held_out"]["per_site"]
                .as_object()
                .is_some_and(|p| p.len() == 4),
            "{clear_record}"
        );
        assert!(
            (loss - clear_loss).abs() < 1e-6,
            "round {round}: held-out log-loss {loss} vs {clear_loss} in clear"
        );
    }
    assert!(
        summary["privacy"]["round_held_out"]
            .as_str()
            .is_some_and(|s| s.starts_with("overall only")),
        "{summary:#}"
    );

    // Newton terms (and everything else from the rows) reach the
    // coordinator only masked.
    let from_nodes = kinds_from_nodes(&secure);
    assert_nothing_in_clear(&from_nodes);
    assert!(from_nodes.iter().any(|k| k == "secagg"), "{from_nodes:?}");
    assert!(
        kinds_from_nodes(&clear).iter().any(|k| k == "newton-terms"),
        "the clear run sends Newton terms"
    );
}

/// A closed-form linear task on the heart sites' maximum heart rate, with
/// `privacy` appended.
fn thalach_task(privacy: &str) -> String {
    format!(
        r#"
[task]
id = "thalach-secagg"
members = ["cleveland", "hungarian", "switzerland", "va"]
model = "linear"
features = ["age", "cp", "trestbps", "chol", "fbs", "restecg", "exang", "oldpeak"]
target = "thalach"

[training]
algorithm = "closed-form"
l2 = 0.01

[evaluation]
holdout_fraction = 0.25
split_seed = 5

[timeouts]
join_seconds = 60
step_seconds = 60
{privacy}
"#
    )
}

fn thalach_run(task_toml: String) -> medfed::Outcome {
    let mut federation = Federation::heart(&HEART_SITES, task_toml);
    federation.import_args = vec!["--target".into(), "thalach".into()];
    federation.run()
}

#[test]
fn heart_sites_with_secure_aggregation_reach_the_same_closed_form_model_as_without() {
    let task = thalach_task;
    let clear = thalach_run(task(""));
    assert!(clear.coordinator.success(), "{}", clear.coordinator_stderr);
    let secure = thalach_run(task(
        "[privacy]\nsecure_aggregation = true\nthreshold = 3\n",
    ));
    assert!(
        secure.coordinator.success(),
        "{}",
        secure.coordinator_stderr
    );
    for node in &secure.nodes {
        assert!(node.status.success(), "{}: {}", node.name, node.stderr);
        assert!(
            node.stdout.contains("normal-equation terms of"),
            "{}",
            node.stdout
        );
    }

    // Each summed value is within 4 x 2^-25 ≈ 1.2e-7 of the exact sum. The
    // solution solves (XᵀX / N + l2 I') w = Xᵀy / N; an error e in the
    // sums moves it by at most about |e| sqrt(D) (1 + |w|) / (N λ), with λ
    // the smallest eigenvalue of XᵀX / N + l2 I' (at least l2 = 0.01 on the
    // weights). With D = 10, N ≈ 690 and |w| around 150 (heart rates),
    // that is below 1e-5 × (1 + |w|) / 690 x 1e2 < 1e-3; the sums are in
    // the hundreds of thousands, so rounding is relative 1e-12 and the
    // models agree far more closely in practice.
    let (a, b) = (parameters(&clear), parameters(&secure));
    let worst = largest_difference(&a, &b);
    println!(
        "closed form, heart thalach: largest coefficient difference with secure aggregation: \
         {worst:.3e}"
    );
    assert!(worst < 1e-3, "models differ by {worst}: {a:?} vs {b:?}");
    assert!(a.iter().any(|v| *v != 0.0), "{a:?}");
    let summary = secure.summary.as_ref().expect("summary.json");
    assert_eq!(summary["algorithm"], "closed-form", "{summary:#}");
    assert_eq!(summary["rounds"][0]["contributors"], 4, "{summary:#}");

    let from_nodes = kinds_from_nodes(&secure);
    assert_nothing_in_clear(&from_nodes);
    assert!(from_nodes.iter().any(|k| k == "secagg"), "{from_nodes:?}");
    let clear_kinds = kinds_from_nodes(&clear);
    for kind in ["normal-terms", "statistics", "evaluation"] {
        assert!(
            clear_kinds.iter().any(|k| k == kind),
            "the clear run sends {kind}: {clear_kinds:?}"
        );
    }
}

#[test]
fn terms_too_large_for_the_fixed_point_stop_the_run_and_write_no_model() {
    // With 52 fractional bits and 4 members a value may be at most
    // 2^11 / 4 = 512 in magnitude; each site's sum of squared heart rates
    // (about 150² per row) is far above it.
    let run = thalach_run(
        thalach_task(
            "[privacy]\nsecure_aggregation = true\nthreshold = 3\nfixed_point_bits = 52\n",
        )
        .replace("step_seconds = 60", "step_seconds = 5"),
    );
    assert!(!run.coordinator.success(), "{}", run.coordinator_stdout);
    assert!(run.model.is_none(), "a model was written");
    for node in &run.nodes {
        assert!(!node.status.success(), "{}: {}", node.name, node.stdout);
        assert!(
            node.stderr.contains("does not fit the fixed-point range"),
            "{}: {}",
            node.name,
            node.stderr
        );
    }
}

const FIVE: [&str; 5] = ["site-1", "site-2", "site-3", "site-4", "site-5"];

fn five_sites(dir: &std::path::Path, quorum: usize) -> Federation {
    let members: Vec<String> = FIVE.iter().map(|m| format!("{m:?}")).collect();
    Federation {
        task_toml: format!(
            r#"
[task]
id = "secagg-dropout"
members = [{}]
model = "logistic"
features = ["x1", "x2", "x3"]
target = "y"

[training]
algorithm = "fedavg"
rounds = 6
quorum = {quorum}
tolerance = 0.0

[evaluation]
holdout_fraction = 0.3
split_seed = 7

[timeouts]
join_seconds = 30
step_seconds = 4

[privacy]
secure_aggregation = true
threshold = 3
"#,
            members.join(", ")
        ),
        sites: FIVE
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
        crash: None,
        coordinator_crash: None,
        coordinator_args: Vec::new(),
        pause: None,
        vanish: Vec::new(),
        node_policy: None,
    }
}

/// Per-site held-out log-loss of a round's starting model.
/// A round's held-out log-loss over every contributor's held-out rows and
/// its row count: under secure aggregation the counts are summed masked, so
/// there are no per-site scores.
fn overall_loss(run: &medfed::Outcome, round: usize) -> (f64, f64) {
    let summary = run.summary.as_ref().expect("summary.json");
    let record = &summary["rounds"][round - 1];
    let per_site = record["held_out"]["per_site"].as_object();
    assert!(per_site.is_none_or(|p| p.is_empty()), "{record}");
    let overall = &record["held_out"]["overall"];
    (
        overall["log_loss"]
            .as_f64()
            .unwrap_or_else(|| panic!("no held-out log-loss in {record}")),
        overall["rows"].as_f64().unwrap_or(f64::NAN),
    )
}

#[test]
fn a_member_killed_after_its_masked_input_is_still_summed_and_the_run_completes() {
    let data = tempfile::tempdir().expect("temp dir");
    let clean = five_sites(data.path(), 4).run();
    assert!(clean.coordinator.success(), "{}", clean.coordinator_stderr);

    let mut crashed = five_sites(data.path(), 4);
    crashed.crash = Some(Crash {
        node: "site-3".into(),
        after: "sent masked input for round 3:".into(),
        // Longer than the 4 s stage deadline: round 3's consistency check
        // closes on the 4 others, who sign the survivor set (site-3
        // included) and unmask with their shares of site-3's self-mask
        // seed. Round 4's key stage then waits up to 4 s more, ample time
        // for site-3 to start again and rejoin.
        restart_after: Duration::from_millis(4500),
    });
    let crashed = crashed.run();
    assert!(
        crashed.coordinator.success(),
        "{}",
        crashed.coordinator_stderr
    );
    let victim = crashed.node("site-3");
    let before = victim.killed_stdout.as_ref().expect("site-3 was killed");
    assert!(
        before.contains("sent masked input for round 3:"),
        "{before}"
    );
    assert!(!before.contains("unmasking shares for round 3"), "{before}");
    assert!(victim.status.success(), "{}", victim.stderr);

    let summary = crashed.summary.as_ref().expect("summary.json");
    let rounds = summary["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 6);
    // site-3's masked input arrived, so it is in round 3's sum although it
    // never signed the survivor set nor answered the unmasking stage.
    assert_eq!(rounds[2]["contributors"], 5, "{}", rounds[2]);
    // The sum is exact: round 4 starts from the same model as in the
    // uninterrupted run, so the sites (site-3 back within round 4's key
    // deadline) find the same training loss for it (to the fixed-point
    // precision). (Their held-out counts are withheld: on these synthetic
    // rows a confusion-matrix cell holds fewer than min_cell patients.)
    assert_eq!(rounds[3]["contributors"], 5, "{}", rounds[3]);
    let train_loss = |run: &medfed::Outcome| {
        let summary = run.summary.as_ref().expect("summary.json");
        summary["rounds"][3]["train_loss"]
            .as_f64()
            .expect("round 4's training loss")
    };
    let (loss, reference) = (train_loss(&crashed), train_loss(&clean));
    assert!(
        (loss - reference).abs() < 1e-9,
        "round 4's training loss {loss} after the crash, {reference} without"
    );
}

#[test]
fn three_of_five_vanishing_fail_the_round_and_write_no_model() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut run = five_sites(data.path(), 2);
    run.vanish = ["site-1", "site-2", "site-3"]
        .iter()
        .map(|node| Vanish {
            node: (*node).into(),
            after: "sent encrypted key shares for round 2".into(),
            restart_after: None,
        })
        .collect();
    let run = run.run();
    assert!(!run.coordinator.success(), "{}", run.coordinator_stdout);
    assert!(run.model.is_none(), "a model was written");
    let error = &run.coordinator_stderr;
    assert!(
        error.contains("round 2") && error.contains("threshold"),
        "{error}"
    );
}

#[test]
fn with_failed_round_skip_a_round_three_of_five_miss_is_skipped_and_training_goes_on() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut run = five_sites(data.path(), 2);
    // The task file ends in its [privacy] table.
    run.task_toml.push_str("failed_round = \"skip\"\n");
    // Three members die after sharing their keys for round 2 and come back
    // a moment later, with no state for round 2: its masked inputs are 2,
    // below the threshold 3.
    run.vanish = ["site-1", "site-2", "site-3"]
        .iter()
        .map(|node| Vanish {
            node: (*node).into(),
            after: "sent encrypted key shares for round 2".into(),
            restart_after: Some(Duration::from_millis(300)),
        })
        .collect();
    let run = run.run();
    assert!(
        run.coordinator.success(),
        "{}\n{}",
        run.coordinator_stdout,
        run.coordinator_stderr
    );
    let summary = run.summary.as_ref().expect("summary.json");
    let rounds = summary["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 6, "{summary:#}");
    let failed = &rounds[1];
    assert_eq!(failed["round"], 2, "{failed}");
    assert_eq!(failed["contributors"], 0, "{failed}");
    assert!(
        failed["note"]
            .as_str()
            .is_some_and(|n| n.contains("skipped") && n.contains("threshold")),
        "{failed}"
    );
    // The members came back: later rounds sum all five again.
    assert_eq!(rounds[5]["contributors"], 5, "{summary:#}");
    assert!(
        summary["stop_reason"]
            .as_str()
            .is_some_and(|r| r.contains("round 2 failed and was skipped")),
        "{summary:#}"
    );
    assert!(run.model.is_some(), "a model was written");
}
