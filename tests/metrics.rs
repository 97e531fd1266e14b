//! The coordinator's Prometheus endpoint, scraped during a real run: real
//! coordinator and node processes on 127.0.0.1 over mutual TLS, with a member
//! paused mid-training so the scrape lands while rounds are under way.

use std::time::Duration;

use medfed::{Federation, Intruder, Pause, Site, synthetic_csv};

const MEMBERS: [&str; 3] = ["site-a", "site-b", "site-c"];

fn task() -> String {
    let members: Vec<String> = MEMBERS.iter().map(|m| format!("{m:?}")).collect();
    format!(
        r#"
[task]
id = "metrics-test"
members = [{}]
model = "logistic"
features = ["x1", "x2", "x3"]
target = "y"

[training]
algorithm = "fedavg"
rounds = 12
tolerance = 1e-12

[evaluation]
holdout_fraction = 0.3
split_seed = 7

[timeouts]
join_seconds = 30
step_seconds = 60
"#,
        members.join(", ")
    )
}

/// The value of the sample line `name` (with its labels) in `text`.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name).then(|| value.parse::<f64>().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
}

#[test]
fn the_metrics_endpoint_shows_rounds_participants_refusals_and_log_entries_during_a_run() {
    let data = tempfile::tempdir().expect("temp dir");
    let sites = MEMBERS
        .iter()
        .enumerate()
        .map(|(i, name)| Site {
            name: (*name).into(),
            csv: synthetic_csv(data.path(), name, 40 + i as u64, 150),
            node_args: Vec::new(),
        })
        .collect();
    let run = Federation {
        task_toml: task(),
        sites,
        intruders: vec![
            // A certificate from another CA: refused in the TLS handshake.
            Intruder::OtherCa("site-a".into()),
            // From the consortium CA but not a member: refused call.
            Intruder::NotMember("mallory".into()),
        ],
        import_args: vec!["--target".into(), "y".into()],
        crash: None,
        coordinator_crash: None,
        coordinator_args: vec!["--metrics-listen".into(), "127.0.0.1:0".into()],
        // site-b stops after sending its round-3 update: the round after
        // the one it is in cannot close while it is held, so the scrape sees
        // the run mid-way.
        pause: Some(Pause {
            node: "site-b".into(),
            after: "sent update for round 3:".into(),
            hold: Duration::from_millis(1500),
        }),
        vanish: Vec::new(),
        node_policy: None,
    }
    .run();
    assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
    for member in MEMBERS {
        let node = run.node(member);
        assert!(node.status.success(), "{member}: {}", node.stderr);
    }

    let text = run.paused_metrics.as_deref().expect("metrics were scraped");
    assert!(
        text.ends_with("# EOF\n"),
        "not a complete exposition:\n{text}"
    );
    assert_eq!(sample(text, "medfed_members_expected"), 3.0);
    assert_eq!(sample(text, "medfed_members_joined"), 3.0);
    // The pause lands a moment after site-b printed its line, and rounds
    // take a millisecond or two, so a round or two more may have closed;
    // the run is under way, not over.
    let rounds = sample(text, "medfed_rounds_completed_total");
    assert!((2.0..=10.0).contains(&rounds), "rounds {rounds}:\n{text}");
    assert_eq!(sample(text, "medfed_round_participants"), 3.0);
    assert_eq!(sample(text, "medfed_round_duration_seconds_count"), rounds);
    assert!(sample(text, "medfed_round_duration_seconds_sum") > 0.0);
    let loss = sample(text, "medfed_train_loss");
    assert!(loss > 0.0 && loss < 1.0, "loss {loss}");
    // The next round is open: site-a and site-c may have sent theirs, site-b not.
    let updates = sample(text, "medfed_submissions_accepted_total{kind=\"update\"}");
    assert!(
        (3.0 * rounds..3.0 * rounds + 3.0).contains(&updates),
        "{updates} updates after {rounds} rounds"
    );
    assert_eq!(
        sample(
            text,
            "medfed_submissions_accepted_total{kind=\"statistics\"}"
        ),
        3.0
    );
    assert!(sample(text, "medfed_train_rows{site=\"site-a\"}") > 0.0);
    assert!(
        sample(
            text,
            "medfed_refused_calls_total{call=\"join\",reason=\"permission_denied\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        sample(text, "medfed_refused_connections_total") >= 1.0,
        "{text}"
    );
    // Joins, the task, statistics, every round's instructions and updates:
    // the log has far more than a handful of entries by now.
    assert!(
        sample(text, "medfed_exchange_log_entries_total") >= 20.0,
        "{text}"
    );

    let summary = run.summary.as_ref().expect("summary.json");
    assert_eq!(
        summary["rounds"].as_array().map(Vec::len),
        Some(12),
        "{summary:#}"
    );
}

#[test]
fn a_metrics_address_off_loopback_is_a_usage_error_before_anything_starts() {
    let output = std::process::Command::new(medfed::bin("coordinator"))
        .args(["run", "--task", "absent.toml", "--ca", "absent.pem"])
        .args([
            "--cert",
            "absent.pem",
            "--key",
            "absent.key",
            "--out",
            "absent",
        ])
        .args(["--signing-key", "absent.sign.key"])
        .args(["--metrics-listen", "0.0.0.0:9464"])
        .output()
        .expect("run coordinator");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--metrics-listen") && stderr.contains("not a loopback address"),
        "{stderr}"
    );
}
