//! End-to-end: real `coordinator` and `node` processes on 127.0.0.1 over
//! mutual TLS, trained on the bundled heart-disease sites.

use medfed::{Federation, Intruder, Site, files_below, heart_csv, pooled_fit};

const HEART_FEATURES: &str = r#"["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg",
  "thalach", "exang", "oldpeak", "slope", "thal"]"#;

/// A logistic task on the heart sites; `algorithm` is a task-file value
/// ("newton", "fedavg", ...).
fn heart_task(members: &[&str], rounds: u32, baselines: bool, algorithm: &str) -> String {
    let members: Vec<String> = members.iter().map(|m| format!("{m:?}")).collect();
    format!(
        r#"
[task]
id = "heart-test"
members = [{}]
model = "logistic"
features = {HEART_FEATURES}
target = "target"

[training]
algorithm = "{algorithm}"
rounds = {rounds}
local_steps = 5
learning_rate = 0.5
l2 = 0.001
tolerance = 1e-10

[evaluation]
holdout_fraction = 0.25
split_seed = 2026
baselines = {baselines}

[timeouts]
join_seconds = 60
step_seconds = 60
"#,
        members.join(", ")
    )
}

fn f64_at(value: &serde_json::Value, pointer: &str) -> f64 {
    value
        .pointer(pointer)
        .and_then(serde_json::Value::as_f64)
        .unwrap_or_else(|| panic!("{pointer} missing in {value:#}"))
}

/// Intercept then coefficients of a run's model file.
fn parameters(run: &medfed::Outcome) -> Vec<f64> {
    let model = run.model.as_ref().expect("model.json");
    let mut params = vec![f64_at(model, "/intercept")];
    params.extend(
        model["coefficients"]
            .as_array()
            .expect("coefficients")
            .iter()
            .map(|v| v.as_f64().expect("number")),
    );
    params
}

/// Largest difference between `federated` and `pooled`, each entry measured
/// relative to the pooled value, or absolutely where that is below `floor`.
fn max_relative_difference(federated: &[f64], pooled: &[f64], floor: f64) -> f64 {
    assert_eq!(federated.len(), pooled.len());
    federated
        .iter()
        .zip(pooled)
        .map(|(f, p)| (f - p).abs() / p.abs().max(floor))
        .fold(0.0, f64::max)
}

fn check_all_finished(run: &medfed::Outcome) {
    assert!(
        run.coordinator.success(),
        "coordinator failed: {}",
        run.coordinator_stderr
    );
    for node in &run.nodes {
        assert!(
            node.status.success(),
            "{} failed: {}",
            node.name,
            node.stderr
        );
        assert!(
            node.stdout.contains("finished"),
            "{}: {}",
            node.name,
            node.stdout
        );
    }
}

const SITES: [&str; 4] = ["cleveland", "hungarian", "switzerland", "va"];

#[test]
fn four_heart_sites_reach_the_pooled_optimum_with_federated_newton() {
    // Stop at a gradient norm of 1e-8, as the demo does: on these 12
    // features the objective's rounding (about 1e-12) stalls the line search
    // before a norm of 1e-10 is reached, though the model is then already
    // within 1e-8 of the pooled one.
    let task =
        heart_task(&SITES, 10, true, "newton").replace("tolerance = 1e-10", "tolerance = 1e-8");
    // The held-out counts are checked here to equal the pooled ones exactly
    // (every site, every bin), so the hospitals release cells of any size:
    // with the default min_cell, Switzerland and VA withhold theirs (a
    // confusion-matrix cell of fewer than 5 patients) and the bins are
    // merged, as tests/hostile.rs shows.
    let mut federation = Federation::heart(&SITES, task.clone());
    federation.node_policy = Some("min_cell = 1".into());
    let run = federation.run();
    check_all_finished(&run);
    let summary = run.summary.as_ref().expect("summary.json");

    // The same model fitted on every site's training rows pooled in one
    // process (same split, standardisation, loss and L2).
    let csvs: Vec<_> = SITES.iter().map(|s| heart_csv(s)).collect();
    let pooled = pooled_fit(&task, &csvs);
    assert!(pooled.gradient_norm < 1e-10, "pooled fit: {pooled:?}");
    let federated = parameters(&run);
    let difference = max_relative_difference(&federated, &pooled.params.to_vec(), 1e-2);
    let rounds = summary["rounds"].as_array().expect("rounds");
    println!(
        "federated Newton: {} rounds, max relative coefficient difference {difference:.2e}; \
         stop: {}",
        rounds.len(),
        summary["stop_reason"]
    );
    assert!(rounds.len() <= 10, "{} rounds", rounds.len());
    assert!(
        difference < 1e-6,
        "federated {federated:?} vs pooled {:?}",
        pooled.params
    );
    assert!(
        summary["stop_reason"]
            .as_str()
            .is_some_and(|r| r.contains("converged")),
        "{}",
        summary["stop_reason"]
    );
    // The loss reported per round is the mean log-loss at the round's
    // parameters (without the L2 term), which fell.
    let first = f64_at(&rounds[0], "/train_loss");
    let last = f64_at(&rounds[rounds.len() - 1], "/train_loss");
    assert!(last < first * 0.7, "loss {first} -> {last}");

    let auc = f64_at(summary, "/federated/overall/auc");
    let pooled_auc = pooled.auc.expect("both classes held out");
    assert!(auc >= 0.85, "federated AUC over all held-out rows: {auc}");
    assert!(
        (auc - pooled_auc).abs() < 1e-3,
        "AUC {auc} vs pooled {pooled_auc}"
    );
    let rows = f64_at(summary, "/federated/overall/rows");
    assert_eq!(pooled.holdout_rows as f64, rows);
    assert!(f64_at(summary, "/federated/overall/auc_error_bound") < 0.001);
    // Every round was scored on the held-out rows, per site and overall.
    for round in rounds {
        assert!(round.pointer("/held_out/overall/auc").is_some(), "{round}");
        assert_eq!(
            round["held_out"]["per_site"].as_object().map(|o| o.len()),
            Some(4)
        );
    }
    // Federation beats the sites alone, scored on the same rows.
    let mean_alone = f64_at(summary, "/mean_single_site_headline");
    assert!(
        auc > mean_alone,
        "federated {auc} vs site-alone mean {mean_alone}"
    );
    assert_eq!(summary["baselines"].as_array().map(Vec::len), Some(4));
    // The calibration summary, built from per-site decile counts, is the
    // one computed on the pooled held-out rows.
    let expected = pooled.calibration(&ndarray::Array1::from(federated.clone()));
    let bins = summary["calibration"].as_array().expect("calibration");
    let nonempty: Vec<usize> = (0..10).filter(|&i| expected.count[i] > 0).collect();
    assert_eq!(bins.len(), nonempty.len(), "{bins:?}");
    for (bin, &i) in bins.iter().zip(&nonempty) {
        assert_eq!(bin["count"].as_u64(), Some(expected.count[i]));
        let observed = expected.label_sum[i] as f64 / expected.count[i] as f64;
        assert!((f64_at(bin, "/observed_rate") - observed).abs() < 1e-12);
    }
    assert!(
        run.coordinator_stdout
            .contains("Calibration of the federated model")
    );
    let model = run.model.as_ref().expect("model.json");
    assert_eq!(model["coefficients"].as_array().map(Vec::len), Some(12));
    assert_eq!(model["algorithm"], "newton");
    assert!(run.coordinator_stdout.contains("cleveland alone"));
    assert!(run.coordinator_stdout.contains("held-out AUC"));
}

#[test]
fn per_column_preprocessing_is_applied_identically_at_every_site() {
    // Switzerland records cholesterol as 0 in every row (unknown), VA in
    // some: declared unknown, filled with the global median, flagged by an
    // indicator. Chest-pain type and thal are codes, one-hot encoded.
    let mut task = heart_task(&SITES, 10, false, "newton");
    task.push_str(
        r#"
[[columns]]
name = "chol"
unknown_values = [0]
missing = "median"
missing_indicator = true

[[columns]]
name = "cp"
categories = [1, 2, 3, 4]

[[columns]]
name = "thal"
categories = [3, 6, 7]
missing_indicator = true

[[columns]]
name = "oldpeak"
transform = "min_max"
"#,
    );
    // One-hot chest-pain codes hold 4 patients at Switzerland and the thal
    // indicator 2 at Cleveland: the hospitals' default min_cell refuses
    // them (tests/hostile.rs). This test is of the preprocessing itself, so
    // its hospitals allow cells of any size.
    let mut federation = Federation::heart(&SITES, task.clone());
    federation.node_policy = Some("min_cell = 1".into());
    let run = federation.run();
    check_all_finished(&run);
    let summary = run.summary.as_ref().expect("summary.json");
    let model = run.model.as_ref().expect("model.json");
    let design: Vec<&str> = model["design_columns"]
        .as_array()
        .expect("design columns")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    for name in ["cp=1", "cp=4", "thal=7", "chol_missing", "thal_missing"] {
        assert!(design.contains(&name), "{name} not in {design:?}");
    }
    assert_eq!(design.len() + 1, parameters(&run).len());
    // The run reports what it noticed about the columns, site by site.
    let notes = summary["notes"].to_string();
    assert!(
        notes.contains("switzerland") && notes.contains("chol"),
        "{notes}"
    );
    assert!(notes.contains("approximate global median"), "{notes}");

    let csvs: Vec<_> = SITES.iter().map(|s| heart_csv(s)).collect();
    let pooled = pooled_fit(&task, &csvs);
    let difference = max_relative_difference(&parameters(&run), &pooled.params.to_vec(), 1e-2);
    println!("with per-column preprocessing: max relative coefficient difference {difference:.2e}");
    assert!(difference < 1e-6, "{difference}");
    let auc = f64_at(summary, "/federated/overall/auc");
    assert!(auc >= 0.85, "{auc}");
}

#[test]
fn fedavg_comes_close_to_the_pooled_fit() {
    let task = heart_task(&SITES, 30, false, "fedavg");
    let run = Federation::heart(&SITES, task.clone()).run();
    check_all_finished(&run);
    let summary = run.summary.as_ref().expect("summary.json");
    let csvs: Vec<_> = SITES.iter().map(|s| heart_csv(s)).collect();
    let pooled = pooled_fit(&task, &csvs);
    let auc = f64_at(summary, "/federated/overall/auc");
    let pooled_auc = pooled.auc.expect("both classes held out");
    let rounds = summary["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len(), 30);
    let first = f64_at(&rounds[0], "/train_loss");
    let last = f64_at(&rounds[29], "/train_loss");
    println!(
        "FedAvg, 30 rounds: held-out AUC {auc:.4} (pooled {pooled_auc:.4}); \
         training loss {last:.5} (pooled optimum {:.5})",
        pooled.train_loss
    );
    assert!(auc >= 0.85, "{auc}");
    // Held-out counts a site's min_cell cannot release (a confusion-matrix
    // cell of fewer than 5 patients) are withheld, so the federated AUC may
    // cover fewer rows than the pooled one: compare them only on the same
    // rows; the training loss is compared in any case.
    let rows = f64_at(summary, "/federated/overall/rows") as usize;
    assert!(
        rows > 0 && rows <= pooled.holdout_rows,
        "{rows} held-out rows"
    );
    if rows == pooled.holdout_rows {
        assert!((auc - pooled_auc).abs() < 0.01, "{auc} vs {pooled_auc}");
    }
    assert!(last < first * 0.8, "loss {first} -> {last}");
    assert!(last >= pooled.train_loss - 1e-9 && last - pooled.train_loss < 0.005);
    assert!(run.coordinator_stdout.contains("round 30/30"));
}

#[test]
fn fedprox_trains_and_stays_close_to_fedavg() {
    let fedavg = heart_task(&SITES, 15, false, "fedavg");
    let fedprox = heart_task(&SITES, 15, false, "fedprox")
        .replace("tolerance = 1e-10", "tolerance = 1e-10\nprox_mu = 0.05");
    let auc = |task: String| {
        let run = Federation::heart(&SITES, task).run();
        check_all_finished(&run);
        let summary = run.summary.as_ref().expect("summary.json");
        assert_eq!(summary["rounds"].as_array().map(Vec::len), Some(15));
        (
            f64_at(summary, "/federated/overall/auc"),
            summary["algorithm"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let (plain, _) = auc(fedavg);
    let (proximal, algorithm) = auc(fedprox);
    assert_eq!(algorithm, "fedprox");
    assert!(proximal >= 0.85, "FedProx AUC {proximal}");
    assert!(
        (proximal - plain).abs() < 0.02,
        "FedProx {proximal} vs FedAvg {plain}"
    );
}

#[test]
fn linear_closed_form_matches_pooled_least_squares_in_one_round() {
    // A numeric target from the heart data: maximum heart rate achieved.
    // (Not on `sex`: VA has 6 women, and with this split fewer than 5 train,
    // so its min_cell refuses the column.)
    let members: Vec<String> = SITES.iter().map(|m| format!("{m:?}")).collect();
    let task = format!(
        r#"
[task]
id = "thalach"
members = [{}]
model = "linear"
features = ["age", "cp", "trestbps", "chol", "fbs", "restecg", "exang", "oldpeak"]
target = "thalach"

[training]
l2 = 0.01

[evaluation]
holdout_fraction = 0.25
split_seed = 5
"#,
        members.join(", ")
    );
    let mut federation = Federation::heart(&SITES, task.clone());
    federation.import_args = vec!["--target".into(), "thalach".into()];
    let run = federation.run();
    check_all_finished(&run);
    let summary = run.summary.as_ref().expect("summary.json");
    assert_eq!(summary["algorithm"], "closed-form");
    assert_eq!(summary["rounds"].as_array().map(Vec::len), Some(1));
    // A linear model gets its training curves, and no ROC or calibration.
    medfed::assert_charts(&run.dir.path().join("run"), summary, &["training"]);
    let csvs: Vec<_> = SITES.iter().map(|s| heart_csv(s)).collect();
    let pooled = pooled_fit(&task, &csvs);
    let federated = parameters(&run);
    let difference = max_relative_difference(&federated, &pooled.params.to_vec(), 1.0);
    println!(
        "closed form: max coefficient difference {difference:.2e} against pooled least squares"
    );
    assert!(
        difference < 1e-8,
        "federated {federated:?} vs pooled {:?}",
        pooled.params
    );
    let r2 = f64_at(summary, "/federated/overall/r2");
    let pooled_r2 = pooled.r2.expect("R²");
    assert!(
        (r2 - pooled_r2).abs() < 1e-9,
        "R² {r2} vs pooled {pooled_r2}"
    );
}

#[test]
fn outsiders_are_refused_and_change_nothing() {
    let members = ["cleveland", "hungarian"];
    let task = heart_task(&members, 5, false, "fedavg");
    let clean = Federation::heart(&members, task.clone()).run();
    let mut attacked = Federation::heart(&members, task);
    attacked.intruders = vec![
        // Same name as a member, but issued by another CA.
        Intruder::OtherCa("cleveland".into()),
        // Issued by the consortium CA, but not on the member list.
        Intruder::NotMember("mallory".into()),
    ];
    let attacked = attacked.run();

    for run in [&clean, &attacked] {
        assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
    }
    let rogue = attacked.node("intruder-cleveland");
    assert!(!rogue.status.success(), "rogue-CA node was admitted");
    let mallory = attacked.node("intruder-mallory");
    assert!(!mallory.status.success(), "non-member was admitted");
    assert!(
        mallory.stderr.contains("PermissionDenied") && mallory.stderr.contains("not a member"),
        "{}",
        mallory.stderr
    );
    assert!(!mallory.stdout.contains("joined task"));
    assert!(!rogue.stdout.contains("joined task"));

    let summary = attacked.summary.as_ref().expect("summary.json");
    assert!(f64_at(summary, "/refused_handshakes") >= 1.0, "{summary:#}");
    assert!(f64_at(summary, "/refused_calls") >= 1.0, "{summary:#}");
    let trained: Vec<&String> = summary["train_rows"]
        .as_object()
        .expect("train_rows")
        .keys()
        .collect();
    assert_eq!(trained, ["cleveland", "hungarian"]);
    assert!(
        attacked
            .coordinator_stderr
            .contains("not on the member list"),
        "refusal not logged: {}",
        attacked.coordinator_stderr
    );
    assert!(
        attacked
            .coordinator_stderr
            .contains("refused a TLS handshake"),
        "handshake refusal not logged: {}",
        attacked.coordinator_stderr
    );

    // Nothing the intruders sent reached the model: it equals the clean run's.
    let coefficients = |run: &medfed::Outcome| -> Vec<f64> {
        run.model.as_ref().expect("model.json")["coefficients"]
            .as_array()
            .expect("coefficients")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect()
    };
    let (a, b) = (coefficients(&clean), coefficients(&attacked));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() < 1e-9, "clean {a:?} vs attacked {b:?}");
    }
}

/// Distinctive values planted in the records; none may appear anywhere but
/// inside the encrypted vaults.
const CANARIES: [f64; 4] = [73_519.286_4, -48_207.913_7, 61_043.577_1, 0.918_273_645_5];

fn canary_csv(dir: &std::path::Path, name: &str, seed: u64, plant: bool) -> std::path::PathBuf {
    // A small synthetic cohort: y depends on x1 and x2.
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64) / ((1u64 << 53) as f64)
    };
    let mut text = String::from("x1,x2,x3,y\n");
    for row in 0..120 {
        let (mut x1, mut x2, mut x3) = (next() * 10.0, next() * 5.0 - 2.5, next());
        let y = u8::from(x1 / 10.0 + x2 / 5.0 + 0.3 * next() > 0.75);
        if plant {
            match row {
                7 => x1 = CANARIES[0],
                19 => x2 = CANARIES[1],
                33 => x1 = CANARIES[2],
                41 => x3 = CANARIES[3],
                _ => {}
            }
        }
        if row % 17 == 0 {
            x3 = f64::NAN;
        }
        let cell = |v: f64| {
            if v.is_nan() {
                String::new()
            } else {
                format!("{v}")
            }
        };
        text.push_str(&format!("{},{},{},{y}\n", cell(x1), cell(x2), cell(x3)));
    }
    let path = dir.join(format!("{name}.csv"));
    std::fs::write(&path, text).expect("write csv");
    path
}

#[test]
fn no_record_value_leaves_the_vault() {
    let sources = tempfile::tempdir().expect("temp dir");
    let sites = vec![
        Site {
            name: "north".into(),
            csv: canary_csv(sources.path(), "north", 1, true),
            node_args: Vec::new(),
        },
        Site {
            name: "south".into(),
            csv: canary_csv(sources.path(), "south", 2, false),
            node_args: Vec::new(),
        },
    ];
    let task = r#"
[task]
id = "canary"
members = ["north", "south"]
model = "logistic"
features = ["x1", "x2", "x3"]
target = "y"

[training]
rounds = 5

[evaluation]
baselines = true
"#;
    let run = Federation {
        task_toml: task.into(),
        sites,
        intruders: vec![],
        import_args: vec!["--target".into(), "y".into()],
        crash: None,
        coordinator_crash: None,
        coordinator_args: Vec::new(),
        pause: None,
        vanish: Vec::new(),
        node_policy: None,
    }
    .run();
    assert!(run.coordinator.success(), "{}", run.coordinator_stderr);

    let mut needles: Vec<(String, Vec<u8>)> = Vec::new();
    for value in CANARIES {
        needles.push((format!("{value} as text"), value.to_string().into_bytes()));
        // Shorter renderings too, e.g. in a table or a log with fewer digits.
        if value.abs() > 1000.0 {
            needles.push((
                format!("{value} as .2 text"),
                format!("{value:.2}").into_bytes(),
            ));
        }
        needles.push((format!("{value} as f64"), value.to_le_bytes().to_vec()));
        needles.push((
            format!("{value} as f32"),
            (value as f32).to_le_bytes().to_vec(),
        ));
    }
    // Check the needles work: they are in the source CSV.
    let source = std::fs::read(sources.path().join("north.csv")).expect("csv");
    assert!(contains(&source, CANARIES[0].to_string().as_bytes()));

    let files = files_below(run.dir.path());
    let mut scanned = 0;
    for file in &files {
        if file.extension().is_some_and(|e| e == "vault") {
            continue;
        }
        let bytes = std::fs::read(file).expect("read");
        scanned += 1;
        for (what, needle) in &needles {
            assert!(
                !contains(&bytes, needle),
                "{what} found in {}",
                file.display()
            );
        }
    }
    // The run wrote outputs and logs on both sides, and they were scanned.
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "model.json",
        "summary.json",
        "node.stdout",
        "coordinator.stderr",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} not written"
        );
    }
    assert!(scanned >= 8, "only {scanned} files scanned");
    // The vaults themselves do not hold the canaries in clear either.
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "vault"))
    {
        let bytes = std::fs::read(file).expect("read");
        for (what, needle) in &needles {
            assert!(
                !contains(&bytes, needle),
                "{what} in clear in {}",
                file.display()
            );
        }
    }
    // What went over the wire: every message either side exchanged is in its
    // exchange log, byte for byte. Decrypted with the audit keys, none holds
    // a record value: only aggregates and model vectors travel.
    let root = run.dir.path();
    let logs = [
        (
            root.join("run/exchange.log"),
            root.join("coordinator-audit.key"),
        ),
        (
            root.join("sites/north/exchange.log"),
            root.join("sites/north/audit.key"),
        ),
        (
            root.join("sites/south/exchange.log"),
            root.join("sites/south/audit.key"),
        ),
    ];
    let mut messages = 0;
    for (log, key) in &logs {
        let key = medfed_audit::AuditKey::from_file(key).expect("audit key");
        for entry in medfed_audit::read_log(log).expect("exchange log") {
            let payload = key.decrypt(&entry.payload).expect("payload decrypts");
            messages += 1;
            for (what, needle) in &needles {
                assert!(
                    !contains(&payload, needle),
                    "{what} sent over the wire: entry {} ({}) of {}",
                    entry.seq,
                    entry.kind,
                    log.display()
                );
            }
        }
    }
    assert!(messages > 40, "only {messages} messages checked");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}
