//! Using the published model: `node predict` on every site's held-out rows
//! reproduces the held-out metrics the run reported from aggregate counts,
//! and `node model show` explains the coefficients.

use std::process::Command;

use medfed::{Federation, assert_charts, bin, heart_csv, repo_root};
use medfed_coordinator::config::TaskConfig;
use medfed_node::data::SiteData;

const SITES: [&str; 4] = ["cleveland", "hungarian", "switzerland", "va"];

#[test]
fn predict_reproduces_the_reported_held_out_metrics() {
    let task_toml =
        std::fs::read_to_string(repo_root().join("examples/heart/task.toml")).expect("task");
    let run = Federation::heart(&SITES, task_toml.clone()).run();
    assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
    let summary = run.summary.as_ref().expect("summary.json");
    let model_path = run.dir.path().join("run/model.json");
    assert_charts(
        &run.dir.path().join("run"),
        summary,
        &["training", "roc", "calibration"],
    );

    // Every site's held-out rows, as the nodes split them, in one CSV.
    let task = TaskConfig::parse(&task_toml, "task.toml")
        .expect("task")
        .task;
    let options = medfed_vault::ImportOptions {
        required: vec![task.target.clone()],
        ..Default::default()
    };
    let mut csv = task.features.join(",") + "\n";
    let mut labels = Vec::new();
    // Only the sites that released their held-out counts: a site whose
    // min_cell cannot release them (a confusion-matrix cell of fewer than 5
    // patients) withholds them, and the reported metrics are over the rest.
    let released = |site: &str| {
        summary["federated"]["per_site"][site]["rows"]
            .as_u64()
            .is_some_and(|rows| rows > 0)
    };
    for site in SITES.into_iter().filter(|site| released(site)) {
        let table = medfed_vault::import_csv(&heart_csv(site), &options).expect("csv");
        let data = SiteData::new(&table, &task).expect("site data");
        for (row, &y) in data.holdout.x.rows().into_iter().zip(&data.holdout.y) {
            let cells: Vec<String> = row
                .iter()
                .map(|v| {
                    if v.is_nan() {
                        String::new()
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            csv.push_str(&cells.join(","));
            csv.push('\n');
            labels.push(y);
        }
    }
    let input = run.dir.path().join("held-out.csv");
    let output = run.dir.path().join("predictions.csv");
    std::fs::write(&input, csv).expect("write");
    let predicted = Command::new(bin("node"))
        .arg("predict")
        .arg("--model")
        .arg(&model_path)
        .arg("--csv")
        .arg(&input)
        .arg("--out")
        .arg(&output)
        .output()
        .expect("node predict");
    assert!(
        predicted.status.success(),
        "{}",
        String::from_utf8_lossy(&predicted.stderr)
    );
    let text = std::fs::read_to_string(&output).expect("predictions");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("row,probability"));
    let scores: Vec<f64> = lines
        .map(|l| {
            l.split(',')
                .nth(1)
                .expect("two fields")
                .parse()
                .expect("number")
        })
        .collect();
    assert_eq!(scores.len(), labels.len());

    let scores = ndarray::Array1::from(scores);
    let labels = ndarray::Array1::from(labels);
    let accuracy =
        medfed_model::metrics::accuracy(scores.view(), labels.view(), 0.5).expect("accuracy");
    let auc = medfed_model::metrics::roc_auc(scores.view(), labels.view())
        .expect("auc")
        .expect("both classes");
    let reported = &summary["federated"]["overall"];
    let reported_accuracy = reported["accuracy"].as_f64().expect("accuracy");
    let reported_auc = reported["auc"].as_f64().expect("auc");
    let bound = reported["auc_error_bound"].as_f64().expect("bound");
    println!(
        "predict on {} held-out rows: AUC {auc:.6} (reported {reported_auc:.6} +- {bound:.1e}), \
         accuracy {accuracy:.6} (reported {reported_accuracy:.6})",
        labels.len()
    );
    assert_eq!(
        labels.len() as u64,
        reported["rows"].as_u64().expect("rows")
    );
    assert!((accuracy - reported_accuracy).abs() < 1e-12);
    assert!((auc - reported_auc).abs() <= bound + 1e-12);

    // `model show` names every design column, with odds ratios.
    let shown = Command::new(bin("node"))
        .args(["model", "show", "--model"])
        .arg(&model_path)
        .output()
        .expect("node model show");
    assert!(shown.status.success());
    let shown = String::from_utf8_lossy(&shown.stdout);
    for name in ["(intercept)", "thalach", "chol_missing", "odds ratio"] {
        assert!(shown.contains(name), "{name} missing in:\n{shown}");
    }
}

#[test]
fn a_file_that_is_not_a_model_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = dir.path().join("model.json");
    std::fs::write(&model, "{\"format\": \"something-else\"}").expect("write");
    let csv = dir.path().join("in.csv");
    std::fs::write(&csv, "age\n50\n").expect("write");
    let out = dir.path().join("out.csv");
    let run = |model: &std::path::Path| {
        Command::new(bin("node"))
            .arg("predict")
            .arg("--model")
            .arg(model)
            .arg("--csv")
            .arg(&csv)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("node predict")
    };
    let refused = run(&model);
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("model.json") && err.contains("not a medfed model"),
        "{err}"
    );
    assert!(!out.exists());
}
