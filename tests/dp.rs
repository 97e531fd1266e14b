//! DP-FedAvg end to end: real `coordinator` and `node` processes on
//! 127.0.0.1 over mutual TLS, every site clipping and noising its update
//! under secure aggregation and charging each round to its own budget. A
//! site that cannot take part (no budget set, or its budget spent) says so
//! in a signed notice, and the run stops at once.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use medfed::{Federation, bin};
use medfed_audit::{Direction, Entry};
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
  "thalach", "exang", "oldpeak", "slope", "thal"]
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

/// `dp_task(rounds)` with task id `id` and join and step deadlines of
/// `seconds`.
fn dp_task_named(id: &str, rounds: u32, seconds: u64) -> String {
    let task = dp_task(rounds)
        .replace("id = \"heart-dp\"", &format!("id = {id:?}"))
        .replace(
            "join_seconds = 60\nstep_seconds = 60",
            &format!("join_seconds = {seconds}\nstep_seconds = {seconds}"),
        );
    assert!(
        task.contains(&format!("id = {id:?}"))
            && task.contains(&format!(
                "join_seconds = {seconds}\nstep_seconds = {seconds}"
            )),
        "{task}"
    );
    task
}

/// `node run` flags that give a site the budget ε at δ = [`DELTA`].
fn budget_args(epsilon: f64) -> Vec<String> {
    vec![
        "--dp-epsilon".into(),
        epsilon.to_string(),
        "--dp-delta".into(),
        DELTA.to_string(),
    ]
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
    let path = privacy_path(run.dir.path(), site);
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

/// Without secure aggregation every site, under the default policy, adds
/// the full noise to its own update (it does not trust the coordinator
/// with it): the coordinator adds none on top, and the summary says the
/// placement is local and the coordinator need not be trusted. The sites
/// release the preprocessing statistics in clear only because their policy
/// says `dp_unnoised = "clear-statistics"`, and no held-out counts at all
/// (per-site counts in clear are not noised), so the run has no federated
/// evaluation; the sites still charge and log every round.
///
/// This federation used to train with central noise and report an AUC:
/// the noise placement is now each site's decision, and a DP site releases
/// nothing un-noised beyond what its policy accepts.
#[test]
fn dp_without_secure_aggregation_noises_at_each_site_and_trusts_no_coordinator() {
    let rounds = 6;
    let task = dp_task(rounds).replace("[privacy]\nsecure_aggregation = true\nthreshold = 3\n", "");
    assert!(!task.contains("secure_aggregation"), "{task}");
    let mut federation = Federation::heart(&HEART_SITES, task);
    federation.node_policy = Some("dp_unnoised = \"clear-statistics\"".into());
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
    assert_eq!(dp["placement"], "local", "{summary:#}");
    assert_eq!(dp["coordinator_trusted"], false, "{summary:#}");
    for site in dp["sites"].as_array().expect("sites") {
        assert_eq!(site["placement"], "local", "{site}");
    }
    assert_eq!(
        summary["rounds"].as_array().expect("rounds").len(),
        rounds as usize
    );
    assert!(
        summary["federated"]["overall"]["auc"].as_f64().is_none(),
        "no site released held-out counts, yet the summary scores the model: {summary:#}"
    );
    for site in HEART_SITES {
        let out = &run.node(site).stdout;
        assert!(out.contains("local noise"), "{site}: {out}");
    }
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

/// A site with no privacy budget set declines the DP task as soon as it has
/// joined, in a signed notice that both exchange logs hold; the coordinator
/// stops waiting for it at once (its deadlines are 120 s) and ends the run
/// naming the site and how to set a budget; the node exits with status 3
/// (configuration).
#[test]
fn a_site_without_a_budget_says_so_and_the_run_ends_at_once() {
    let deadline_seconds = 120;
    let mut federation =
        Federation::heart(&HEART_SITES, dp_task_named("heart-dp", 4, deadline_seconds));
    for site in &mut federation.sites {
        if site.name != "va" {
            site.node_args = budget_args(100.0);
        }
    }
    let started = Instant::now();
    let run = federation.run();
    let took = started.elapsed();
    let stderr = &run.coordinator_stderr;
    // Waiting for va until a deadline would alone take 120 s.
    assert!(
        took < Duration::from_secs(deadline_seconds),
        "the run took {took:?}: {stderr}"
    );
    assert!(!stderr.contains("no answer within"), "{stderr}");
    // Exit status 5: the run failed with a member.
    assert_eq!(run.coordinator.code(), Some(5), "{stderr}");
    for needed in [
        "va left: it has no privacy budget set",
        "[privacy] table of its node file",
        "--dp-epsilon",
    ] {
        assert!(stderr.contains(needed), "{needed:?} missing: {stderr}");
    }
    // No round ran, so there is no model to publish.
    assert!(run.summary.is_none() && run.model.is_none());

    let va = run.node("va");
    assert_eq!(va.status.code(), Some(3), "{}\n{}", va.stdout, va.stderr);
    for needed in [
        "task heart-dp uses differential privacy",
        "this node has no privacy budget set",
        "--dp-epsilon and --dp-delta",
    ] {
        assert!(va.stderr.contains(needed), "{needed:?}: {}", va.stderr);
    }
    assert!(
        va.stdout.contains(
            "told the coordinator this site declines task heart-dp: it has no privacy budget set"
        ),
        "{}",
        va.stdout
    );
    // Training never started: no site charged anything.
    let root = run.dir.path();
    for site in HEART_SITES {
        assert!(
            !privacy_path(root, site).exists(),
            "{site} has a privacy record"
        );
    }

    // va's log: it joined, was told the task, and sent the notice, signed.
    let node_log = verified_node_log(root, "va");
    let sent: Vec<&str> = node_log
        .iter()
        .filter(|e| e.direction == Direction::Out)
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(sent, ["join", "budget-refusal"]);
    let site_key = root.join("sites/va/audit.key");
    let notice = only_notice(&node_log, "heart-dp", Direction::Out);
    let content = decoded(&site_key, notice);
    assert_eq!(content["reason"], "no-budget", "{content:#}");
    assert_eq!(content["task_id"], "heart-dp", "{content:#}");
    assert_eq!(content["delta"], 0.0, "{content:#}");

    // The coordinator's log holds the same notice, received from va.
    let coordinator_log = verified_coordinator_log(root, &root.join("run"));
    let received = only_notice(&coordinator_log, "heart-dp", Direction::In);
    assert_eq!(received.peer, "va");
    assert_eq!(received.sha256, notice.sha256);
    let content = decoded(&root.join("coordinator-audit.key"), received);
    assert_eq!(content["reason"], "no-budget", "{content:#}");
    // And the two logs agree on everything va and the coordinator exchanged.
    let crossed = audit(&[
        "cross-check".as_ref(),
        "--node".as_ref(),
        node_log_path(root, "va").as_os_str(),
        "--coordinator".as_ref(),
        root.join("run/exchange.log").as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(crossed.status.success(), "{}", text(&crossed));
}

/// A site spends its whole budget in one task; when the consortium starts
/// another task, the node restarted on the same vault declines before
/// releasing anything: its privacy record is unchanged to the byte, its
/// signed notice is in both exchange logs, its log verifies, and the new run
/// stops at once naming the site and its spent budget.
#[test]
fn a_restarted_node_whose_budget_is_spent_refuses_before_releasing_anything() {
    // va's budget pays for exactly the first task's 2 rounds.
    let k = 2;
    let tight = (epsilon_after(k) + epsilon_after(k + 1)) / 2.0;
    let budget = Budget::new(tight, DELTA).expect("budget");
    assert_eq!(max_rounds(&budget, SIGMA).expect("rounds"), k);
    let budget_of = |site: &str| if site == "va" { tight } else { 100.0 };
    let mut federation = Federation::heart(&HEART_SITES, dp_task(k as u32));
    for site in &mut federation.sites {
        site.node_args = budget_args(budget_of(&site.name));
    }
    let first = federation.run();
    assert!(first.coordinator.success(), "{}", first.coordinator_stderr);
    let summary = first.summary.as_ref().expect("summary.json");
    assert_eq!(
        summary["rounds"].as_array().expect("rounds").len() as u64,
        k,
        "{summary:#}"
    );
    let root = first.dir.path();
    let records: Vec<Vec<u8>> = HEART_SITES
        .iter()
        .map(|site| fs::read(privacy_path(root, site)).expect("privacy record"))
        .collect();
    let record = privacy_record(&first, "va");
    assert_eq!(
        record["spends"].as_array().expect("spends").len() as u64,
        k,
        "{record:#}"
    );

    // A new task for the same hospitals, with the same vaults and keys.
    let deadline_seconds = 120;
    let started = Instant::now();
    let again = first.run_again(
        &dp_task_named("heart-dp-again", 4, deadline_seconds),
        &HEART_SITES,
        &|site| budget_args(budget_of(site)),
    );
    let took = started.elapsed();
    let stderr = &again.coordinator_stderr;
    assert!(
        took < Duration::from_secs(deadline_seconds),
        "the run took {took:?}: {stderr}"
    );
    assert_eq!(again.coordinator.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("va left: its privacy budget ε = ")
            && stderr.contains(&format!(
                "is spent: ε = {:.4} after {k} rounds",
                epsilon_after(k)
            )),
        "{stderr}"
    );
    assert!(!again.out_dir.join("summary.json").exists());
    let va = again.node("va");
    assert!(va.status.success(), "{}\n{}", va.stdout, va.stderr);
    for needed in [
        "told the coordinator this site declines the next round",
        "stopped: this site's privacy budget is spent",
        &format!("over {k} rounds"),
    ] {
        assert!(va.stdout.contains(needed), "{needed:?}: {}", va.stdout);
    }
    assert!(
        !va.stdout.contains("training rows"),
        "the records were used: {}",
        va.stdout
    );

    // Nothing was charged anywhere: every record is unchanged to the byte.
    for (site, before) in HEART_SITES.iter().zip(&records) {
        let after = fs::read(privacy_path(root, site)).expect("privacy record");
        assert!(&after == before, "{site}'s privacy record changed");
    }

    // va's log, continued across the restart, verifies; in the new task it
    // sent only its join and the notice, and charged nothing.
    let node_log = verified_node_log(root, "va");
    let second: Vec<&Entry> = node_log
        .iter()
        .filter(|e| e.task == "heart-dp-again")
        .collect();
    let sent: Vec<&str> = second
        .iter()
        .filter(|e| e.direction == Direction::Out)
        .map(|e| e.kind.as_str())
        .collect();
    assert_eq!(sent, ["join", "budget-refusal"]);
    assert!(
        !second.iter().any(|e| e.kind == "privacy-spend"),
        "a spend was recorded in the new task"
    );
    let notice = only_notice(&node_log, "heart-dp-again", Direction::Out);
    let content = decoded(&root.join("sites/va/audit.key"), notice);
    assert_eq!(content["reason"], "budget-spent", "{content:#}");
    assert_eq!(content["rounds_spent"], k, "{content:#}");
    assert_eq!(content["budget_epsilon"], tight, "{content:#}");

    let coordinator_log = verified_coordinator_log(root, &again.out_dir);
    let received = only_notice(&coordinator_log, "heart-dp-again", Direction::In);
    assert_eq!(received.peer, "va");
    assert_eq!(received.sha256, notice.sha256);
}

/// `<vault>.privacy.json` of `site` in a run folder.
fn privacy_path(root: &Path, site: &str) -> PathBuf {
    root.join("sites")
        .join(site)
        .join("records.vault.privacy.json")
}

/// The exchange log of `site` (beside its vault).
fn node_log_path(root: &Path, site: &str) -> PathBuf {
    root.join("sites").join(site).join("exchange.log")
}

fn audit(args: &[&OsStr]) -> Output {
    Command::new(bin("medfed-audit"))
        .args(args)
        .output()
        .expect("run medfed-audit")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The signing key a certificate certifies, as hex.
fn certified_key(cert: &Path) -> String {
    let certs = medfed_tls::load_certs(cert).expect("certificate");
    let key = medfed_tls::signing_key_from_der(&certs[0])
        .expect("readable certificate")
        .expect("a certified signing key");
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// `log`, checked by `medfed-audit verify` against the writer key that
/// `cert` certifies (payloads and member signatures too, with
/// `audit_key`), then read.
fn verified_log(log: &Path, audit_key: &Path, cert: &Path) -> Vec<Entry> {
    let writer_key = certified_key(cert);
    let verified = audit(&[
        "verify".as_ref(),
        log.as_os_str(),
        "--audit-key-file".as_ref(),
        audit_key.as_os_str(),
        "--writer-key".as_ref(),
        writer_key.as_ref(),
    ]);
    assert!(
        verified.status.success(),
        "{}: {}",
        log.display(),
        text(&verified)
    );
    medfed_audit::read_log(log).expect("log")
}

fn verified_node_log(root: &Path, site: &str) -> Vec<Entry> {
    verified_log(
        &node_log_path(root, site),
        &root.join("sites").join(site).join("audit.key"),
        &root.join("pki").join(site).join(format!("{site}.pem")),
    )
}

fn verified_coordinator_log(root: &Path, out_dir: &Path) -> Vec<Entry> {
    verified_log(
        &out_dir.join("exchange.log"),
        &root.join("coordinator-audit.key"),
        &root.join("pki/coordinator/coordinator.pem"),
    )
}

/// The one budget notice of `task` that went `direction`, signed by its
/// member.
fn only_notice<'a>(log: &'a [Entry], task: &str, direction: Direction) -> &'a Entry {
    let notices: Vec<&Entry> = log
        .iter()
        .filter(|e| e.kind == "budget-refusal" && e.task == task && e.direction == direction)
        .collect();
    assert_eq!(notices.len(), 1, "budget notices of {task}: {notices:#?}");
    assert!(
        notices[0].member_signature.is_some(),
        "the notice is not signed"
    );
    notices[0]
}

/// `entry`'s payload, decrypted with the audit key in `key_file` and
/// decoded as `medfed-audit` shows it.
fn decoded(key_file: &Path, entry: &Entry) -> serde_json::Value {
    let key = medfed_audit::AuditKey::from_file(key_file).expect("audit key");
    let bytes = key.decrypt(&entry.payload).expect("payload decrypts");
    let decoded = medfed_audit::describe_payload(&entry.kind, &bytes);
    assert_eq!(decoded.message_type, "medfed.v2.BudgetRefusal");
    decoded.content
}

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
