//! The NCCTG lung-cancer data as a consortium of 18 institutions, most of
//! them small (data/lung): every institution imports its own CSV into its
//! own vault and runs its own node with the default policy. The nine with
//! fewer than `min_rows` = 10 patients refuse by their own rule, with a
//! notice the coordinator reports; the run completes with the others, and
//! the closed-form fit over them is the pooled least-squares fit.

use std::collections::BTreeMap;

use medfed::{Federation, Site, lung_csv, lung_sites, pooled_fit};

/// Rows per institution (data/lung/README.md).
fn rows(site: &str) -> usize {
    std::fs::read_to_string(lung_csv(site))
        .expect("lung CSV")
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .count()
}

#[test]
fn small_institutions_refuse_by_min_rows_and_the_others_fit_the_pooled_model() {
    let sites = lung_sites();
    assert_eq!(sites.len(), 18);
    let members: Vec<String> = sites.iter().map(|s| format!("{s:?}")).collect();
    let task = format!(
        r#"
[task]
id = "lung-karnofsky"
members = [{}]
model = "linear"
features = ["age", "sex"]
target = "ph.karno"

[training]
algorithm = "closed-form"
l2 = 0.0
quorum = 3

[evaluation]
holdout_fraction = 0.2
split_seed = 11
baselines = false

[timeouts]
join_seconds = 60
step_seconds = 60
"#,
        members.join(", ")
    );
    let mut federation = Federation::heart(&[], task.clone());
    federation.sites = sites
        .iter()
        .map(|name| Site {
            name: name.clone(),
            csv: lung_csv(name),
            node_args: Vec::new(),
        })
        .collect();
    federation.import_args = vec!["--target".into(), "ph.karno".into()];
    let run = federation.run();
    assert!(
        run.coordinator.success(),
        "coordinator failed: {}\n{}",
        run.coordinator_stdout,
        run.coordinator_stderr
    );
    let summary = run.summary.as_ref().expect("summary.json");
    let refusals: BTreeMap<String, String> = summary["refusals"]
        .as_array()
        .expect("refusals")
        .iter()
        .map(|r| {
            (
                r["site"].as_str().unwrap_or_default().to_owned(),
                r["rule"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let mut took_part = Vec::new();
    for node in &run.nodes {
        let small = rows(&node.name) < 10;
        if small {
            // Refused by its own min_rows, told the coordinator, exit 7.
            assert_eq!(
                node.status.code(),
                Some(7),
                "{}: {}",
                node.name,
                node.stderr
            );
            assert!(
                node.stdout.contains("by rule `min_rows`"),
                "{}: {}",
                node.name,
                node.stdout
            );
            assert_eq!(
                refusals.get(&node.name).map(String::as_str),
                Some("min_rows")
            );
            assert!(
                run.coordinator_stdout.contains(&format!(
                    "{} refused the task by its rule `min_rows`",
                    node.name
                )),
                "{}",
                run.coordinator_stdout
            );
        } else if node.status.success() {
            took_part.push(node.name.clone());
        } else {
            // A larger institution may still refuse by another rule of its
            // own (a two-valued column with few rows of one value): then it
            // says which, and the coordinator reports it.
            assert_eq!(
                node.status.code(),
                Some(7),
                "{}: {}",
                node.name,
                node.stderr
            );
            let rule = refusals.get(&node.name).expect("reported refusal");
            assert!(
                node.stdout.contains(&format!("by rule `{rule}`")),
                "{}",
                node.stdout
            );
        }
    }
    let small = sites.iter().filter(|s| rows(s) < 10).count();
    assert_eq!(small, 9, "institutions with fewer than 10 patients");
    println!(
        "{} institutions took part: {}; refusals: {refusals:?}",
        took_part.len(),
        took_part.join(", ")
    );
    assert!(took_part.len() >= 5, "took part: {took_part:?}");
    assert_eq!(took_part.len() + refusals.len(), sites.len());

    // The closed form over the institutions that took part is their pooled
    // least-squares fit.
    let csvs: Vec<_> = took_part.iter().map(|s| lung_csv(s)).collect();
    let pooled = pooled_fit(&task, &csvs);
    let model = run.model.as_ref().expect("model.json");
    let mut federated = vec![model["intercept"].as_f64().expect("intercept")];
    federated.extend(
        model["coefficients"]
            .as_array()
            .expect("coefficients")
            .iter()
            .map(|v| v.as_f64().expect("number")),
    );
    assert_eq!(federated.len(), pooled.params.len());
    for (f, p) in federated.iter().zip(pooled.params.iter()) {
        assert!(
            (f - p).abs() <= 1e-8 * p.abs().max(1.0),
            "federated {federated:?} vs pooled {:?}",
            pooled.params
        );
    }
}
