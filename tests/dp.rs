//! DP-FedAvg end to end: real `coordinator` and `node` processes on
//! 127.0.0.1 over mutual TLS, every site clipping and noising its update
//! under secure aggregation and charging each round to its own budget.

use medfed::Federation;
use medfed_secure::dp::{Accountant, Budget, max_rounds};

const HEART_SITES: [&str; 4] = ["cleveland", "hungarian", "switzerland", "va"];
const SIGMA: f64 = 1.0;
const DELTA: f64 = 1e-5;

fn dp_task(rounds: u32) -> String {
    dp_task_with(rounds, SIGMA, 1.0)
}

fn dp_task_with(rounds: u32, sigma: f64, clip_norm: f64) -> String {
    let dp = if sigma > 0.0 {
        format!("[privacy.dp]\nnoise_multiplier = {sigma}\nclip_norm = {clip_norm}\n")
    } else {
        String::new()
    };
    format!(
        r#"
[task]
id = "heart-dp"
members = ["cleveland", "hungarian", "switzerland", "va"]
model = "logistic"
features = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg",
  "thalach", "exang", "oldpeak", "slope", "ca", "thal"]
target = "target"

[training]
algorithm = "fedavg"
rounds = {rounds}
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

[privacy]
secure_aggregation = true
threshold = 3

{dp}"#
    )
}

/// ε after `rounds` rounds at σ, by the accountant the nodes use.
fn epsilon_after(rounds: u64) -> f64 {
    let budget = Budget::new(f64::MAX, DELTA).expect("budget");
    let mut accountant = Accountant::new(budget);
    for _ in 0..rounds {
        let _charge = accountant
            .try_spend(SIGMA, |_| Ok::<(), std::io::Error>(()))
            .expect("spend");
    }
    accountant.spent().epsilon
}

fn privacy_record(run: &medfed::Outcome, site: &str) -> serde_json::Value {
    let path = run
        .dir
        .path()
        .join("sites")
        .join(site)
        .join("records.vault.privacy.json");
    let text = std::fs::read_to_string(&path).expect("privacy record");
    serde_json::from_str(&text).expect("privacy record is JSON")
}

#[test]
fn a_site_stops_the_run_when_its_budget_is_spent() {
    // va's budget pays for exactly 3 rounds at σ; the others for plenty.
    let k = 3;
    let tight = (epsilon_after(k) + epsilon_after(k + 1)) / 2.0;
    let budget = Budget::new(tight, DELTA).expect("budget");
    assert_eq!(max_rounds(&budget, SIGMA).expect("rounds"), k);
    let mut federation = Federation::heart(&HEART_SITES, dp_task(6));
    for site in &mut federation.sites {
        let epsilon = if site.name == "va" { tight } else { 100.0 };
        site.node_args = vec![
            "--dp-epsilon".into(),
            epsilon.to_string(),
            "--dp-delta".into(),
            DELTA.to_string(),
        ];
    }
    let run = federation.run();
    assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
    let summary = run.summary.as_ref().expect("summary.json");
    let rounds = summary["rounds"].as_array().expect("rounds");
    assert_eq!(rounds.len() as u64, k, "{summary:#}");
    let stop = summary["stop_reason"].as_str().expect("stop reason");
    assert!(
        stop.contains("before round 4") && stop.contains("va") && stop.contains("budget"),
        "{stop}"
    );
    // The model of the last completed round is published.
    assert!(run.model.is_some());

    let va = run.node("va");
    assert!(va.status.success(), "{}", va.stderr);
    assert!(
        va.stdout
            .contains("stopped: this site's privacy budget is spent"),
        "{}",
        va.stdout
    );
    assert!(
        va.stdout.contains(&format!("over {k} rounds")),
        "{}",
        va.stdout
    );

    // The persisted record says k rounds; reopening it (a restart) refuses
    // the next round at the task's σ.
    let record = privacy_record(&run, "va");
    assert_eq!(
        record["accountant"]["noise_multipliers"]
            .as_array()
            .expect("rounds")
            .len() as u64,
        k,
        "{record:#}"
    );
    let vault = run.dir.path().join("sites/va/records.vault");
    let reopened = medfed_node::privacy::SitePrivacy::open(&vault, budget).expect("reopen");
    assert_eq!(reopened.accountant().rounds(), k);
    assert!(reopened.refusal(SIGMA, 0, 0).expect("check").is_some());

    // The summary states the mechanism and each site's ε as its accountant
    // reported it.
    let dp = &summary["privacy"]["differential_privacy"];
    assert_eq!(dp["placement"], "local", "{dp:#}");
    assert_eq!(dp["noise_multiplier"], SIGMA);
    assert_eq!(dp["clip_norm"], 1.0);
    let sites = dp["sites"].as_array().expect("sites");
    assert_eq!(sites.len(), 4, "{dp:#}");
    for site in sites {
        let name = site["site"].as_str().expect("site");
        let record = privacy_record(&run, name);
        let charged = record["accountant"]["noise_multipliers"]
            .as_array()
            .expect("rounds")
            .len() as u64;
        // A site may have charged the declined round before the notice
        // ended it (its keys then arrive too late to be taken): that
        // round is spent at the site but never reported.
        let reported_rounds = site["rounds"].as_u64().expect("rounds");
        assert!(
            reported_rounds == charged || reported_rounds + 1 == charged,
            "{site}: the record holds {charged} rounds"
        );
        let expected = epsilon_after(reported_rounds);
        let reported = site["epsilon"].as_f64().expect("epsilon");
        assert!(
            (reported - expected).abs() < 1e-9,
            "{name}: reported ε {reported}, accountant {expected}"
        );
        let analytic = site["analytic_epsilon"].as_f64().expect("analytic");
        assert!(analytic > 0.0 && analytic <= reported, "{site}");
    }
}

#[test]
fn dp_with_secure_aggregation_trains_and_logs_one_spend_per_round() {
    let rounds = 8;
    let mut federation = Federation::heart(&HEART_SITES, dp_task(rounds));
    for site in &mut federation.sites {
        site.node_args = vec![
            "--dp-epsilon".into(),
            "100".into(),
            "--dp-delta".into(),
            DELTA.to_string(),
        ];
    }
    let run = federation.run();
    assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
    let summary = run.summary.as_ref().expect("summary.json");
    assert_eq!(
        summary["rounds"].as_array().expect("rounds").len(),
        rounds as usize
    );
    let auc = summary["federated"]["overall"]["auc"]
        .as_f64()
        .expect("auc");
    println!("heart, DP-FedAvg σ = {SIGMA}, C = 1, secure aggregation: AUC {auc:.4}");
    assert!(auc > 0.7, "AUC {auc}");

    // One local spend entry per round in the node's own exchange log.
    let root = run.dir.path();
    let site = root.join("sites/cleveland");
    let key = medfed_audit::AuditKey::from_file(&site.join("audit.key")).expect("audit key");
    let log = medfed::files_below(&site)
        .into_iter()
        .find(|p| p.file_name().is_some_and(|n| n == "exchange.log"))
        .expect("node exchange log");
    let spends: Vec<u32> = medfed_audit::read_log(&log)
        .expect("log")
        .into_iter()
        .filter(|e| e.kind == "privacy-spend")
        .map(|e| {
            assert!(key.decrypt(&e.payload).is_some());
            e.round
        })
        .collect();
    assert_eq!(spends, (1..=rounds).collect::<Vec<_>>());
}

/// Without secure aggregation the coordinator sees each clipped update and
/// adds the noise to the sum itself (central noise): the summary says so and
/// that the coordinator must then be trusted; the sites still charge and log
/// every round.
#[test]
fn dp_without_secure_aggregation_adds_central_noise_and_says_the_coordinator_is_trusted() {
    let rounds = 6;
    let task = dp_task(rounds).replace("[privacy]\nsecure_aggregation = true\nthreshold = 3\n", "");
    assert!(!task.contains("secure_aggregation"), "{task}");
    let mut federation = Federation::heart(&HEART_SITES, task);
    for site in &mut federation.sites {
        site.node_args = vec![
            "--dp-epsilon".into(),
            "100".into(),
            "--dp-delta".into(),
            DELTA.to_string(),
        ];
    }
    let run = federation.run();
    assert!(
        run.coordinator.success(),
        "{}\n{}",
        run.coordinator_stderr,
        run.node("cleveland").stderr
    );
    let summary = run.summary.as_ref().expect("summary.json");
    let dp = &summary["privacy"]["differential_privacy"];
    assert_eq!(dp["placement"], "central", "{summary:#}");
    assert_eq!(dp["coordinator_trusted"], true, "{summary:#}");
    assert_eq!(
        summary["rounds"].as_array().expect("rounds").len(),
        rounds as usize
    );
    let auc = summary["federated"]["overall"]["auc"]
        .as_f64()
        .expect("auc");
    println!("heart, DP-FedAvg σ = {SIGMA}, C = 1, central noise: AUC {auc:.4}");
    assert!(auc > 0.6, "AUC {auc}");
    // Every site charged every round to its own record.
    let expected = epsilon_after(u64::from(rounds));
    for site in HEART_SITES {
        let record = privacy_record(&run, site);
        let spends = record["spends"].as_array().expect("spends");
        assert_eq!(spends.len(), rounds as usize, "{site}: {record:#}");
        let epsilon = spends
            .last()
            .and_then(|s| s["epsilon"].as_f64())
            .expect("epsilon");
        assert!(
            (epsilon - expected).abs() < 1e-9,
            "{site}: {epsilon} vs {expected}"
        );
    }
}

/// The figures of docs/BENCHMARKS.md: held-out AUC of the four heart sites
/// with FedAvg and secure aggregation, without DP and with DP at ε ≈ 1 and
/// ε ≈ 8 (δ = 1e-5, σ the smallest that fits the rounds run), a few
/// repeats each. Run with
/// `cargo test --release -p medfed --test dp -- --ignored --nocapture dp_figures`.
#[test]
#[ignore = "measurement: prints the DP figures of docs/BENCHMARKS.md"]
fn dp_figures() {
    let rounds = 8;
    let repeats = 5;
    let clip_norm = 1.0;
    for epsilon in [0.0, 1.0, 8.0] {
        let sigma = if epsilon > 0.0 {
            let budget = Budget::new(epsilon, DELTA).expect("budget");
            medfed_secure::dp::smallest_noise_multiplier(&budget, u64::from(rounds)).expect("sigma")
        } else {
            0.0
        };
        let mut aucs = Vec::new();
        for _ in 0..repeats {
            let mut federation =
                Federation::heart(&HEART_SITES, dp_task_with(rounds, sigma, clip_norm));
            for site in &mut federation.sites {
                // A budget just above what the rounds cost.
                site.node_args = vec![
                    "--dp-epsilon".into(),
                    (epsilon.max(1.0) * 1.0001).to_string(),
                    "--dp-delta".into(),
                    DELTA.to_string(),
                ];
            }
            let run = federation.run();
            assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
            let summary = run.summary.as_ref().expect("summary.json");
            aucs.push(
                summary["federated"]["overall"]["auc"]
                    .as_f64()
                    .expect("auc"),
            );
        }
        aucs.sort_by(f64::total_cmp);
        println!(
            "ε = {epsilon} (σ = {sigma:.4}, C = {clip_norm}, {rounds} rounds): AUC median \
             {:.4}, range {:.4} to {:.4}, runs {aucs:?}",
            aucs[aucs.len() / 2],
            aucs[0],
            aucs[aucs.len() - 1]
        );
    }
}
