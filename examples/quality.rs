//! Quality benchmark: the federated model against the pooled fit.
//!
//! Runs a real federation (one coordinator and one node process per site on
//! 127.0.0.1 over mutual TLS) on the sites given, fits the same model in
//! this process on all sites' training rows pooled (same split, global
//! preprocessing, loss and regularisation), scores both on the same held-out
//! rows, and prints them side by side.
//!
//! ```text
//! cargo build --release --workspace
//! cargo run --release --example quality -- --task examples/heart/task.toml \
//!   --site cleveland=data/heart/cleveland.csv --site hungarian=data/heart/hungarian.csv ...
//! ```
//! `scripts/quality.sh` does both for the bundled heart sites.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Parser;
use medfed::{Federation, Site, pooled_fit};
use medfed_coordinator::config::TaskConfig;
use ndarray::Array1;

/// Federated versus pooled: coefficients, loss, held-out metrics, rounds, time.
#[derive(Parser)]
struct Args {
    /// The task file (TOML).
    #[arg(long)]
    task: PathBuf,
    /// A site as NAME=CSV; one per member of the task.
    #[arg(long, value_name = "NAME=CSV", required = true)]
    site: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let text = std::fs::read_to_string(&args.task)
        .with_context(|| format!("cannot read {}", args.task.display()))?;
    let config = TaskConfig::parse(&text, &args.task.display().to_string())?;
    let mut sites = Vec::new();
    for spec in &args.site {
        let Some((name, csv)) = spec.split_once('=') else {
            bail!("--site {spec:?}: expected NAME=CSV");
        };
        sites.push(Site {
            name: name.to_owned(),
            csv: PathBuf::from(csv),
            node_args: Vec::new(),
        });
    }
    let mut names: Vec<&str> = sites.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    let mut members: Vec<&str> = config.task.members.iter().map(String::as_str).collect();
    members.sort_unstable();
    if names != members {
        bail!("the sites given ({names:?}) must be the task's members ({members:?})");
    }

    let started = Instant::now();
    let run = Federation {
        task_toml: text.clone(),
        sites: sites.clone(),
        intruders: Vec::new(),
        import_args: vec!["--target".into(), config.task.target.clone()],
        crash: None,
        coordinator_crash: None,
        coordinator_args: Vec::new(),
        pause: None,
        vanish: Vec::new(),
        node_policy: None,
    }
    .run();
    let federated_seconds = started.elapsed().as_secs_f64();
    if !run.coordinator.success() {
        bail!("the federation failed:\n{}", run.coordinator_stderr);
    }
    let summary = run.summary.as_ref().context("no summary.json")?;
    let model = run.model.as_ref().context("no model.json")?;
    let mut federated = vec![model["intercept"].as_f64().context("intercept")?];
    for c in model["coefficients"].as_array().context("coefficients")? {
        federated.push(c.as_f64().context("coefficient")?);
    }
    let federated = Array1::from(federated);

    let started = Instant::now();
    let csvs: Vec<PathBuf> = sites.iter().map(|s| s.csv.clone()).collect();
    let pooled = pooled_fit(&text, &csvs);
    let pooled_seconds = started.elapsed().as_secs_f64();
    let (fed, pool) = (pooled.score(&federated), pooled.score(&pooled.params));

    let max_abs = federated
        .iter()
        .zip(&pooled.params)
        .map(|(f, p)| (f - p).abs())
        .fold(0.0, f64::max);
    let max_rel = federated
        .iter()
        .zip(&pooled.params)
        .map(|(f, p)| (f - p).abs() / p.abs().max(1e-2))
        .fold(0.0, f64::max);
    let rounds = summary["rounds"].as_array().map_or(0, Vec::len);
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.6}"));

    println!();
    println!(
        "task {} ({} model, {} features, {} sites, {} training rows pooled, {} held out)",
        config.task.task_id,
        config.task.model,
        config.task.features.len(),
        sites.len(),
        summary["train_rows"].as_object().map_or(0, |rows| rows
            .values()
            .filter_map(|v| v.as_u64())
            .sum::<u64>()),
        pooled.holdout_rows
    );
    println!(
        "algorithm {}: {}",
        summary["algorithm"].as_str().unwrap_or("?"),
        summary["stop_reason"].as_str().unwrap_or("?")
    );
    println!();
    println!("  {:<34} {:>14} {:>14}", "", "federated", "pooled");
    println!(
        "  {:<34} {:>14.8} {:>14.8}",
        "training objective (loss + L2)", fed.objective, pool.objective
    );
    if pooled.auc.is_some() {
        println!(
            "  {:<34} {:>14} {:>14}",
            "held-out AUC",
            show(fed.auc),
            show(pool.auc)
        );
        println!(
            "  {:<34} {:>14} {:>14}",
            "held-out accuracy",
            show(fed.accuracy),
            show(pool.accuracy)
        );
    } else {
        println!(
            "  {:<34} {:>14} {:>14}",
            "held-out R²",
            show(fed.r2),
            show(pool.r2)
        );
        println!(
            "  {:<34} {:>14} {:>14}",
            "held-out RMSE",
            show(fed.rmse),
            show(pool.rmse)
        );
    }
    println!("  {:<34} {:>14} {:>14}", "rounds", rounds, "-");
    println!(
        "  {:<34} {:>14.3} {:>14.3}",
        "wall time, s", federated_seconds, pooled_seconds
    );
    println!();
    println!(
        "  coefficients: max absolute difference {max_abs:.3e}, max relative difference {max_rel:.3e}"
    );
    println!(
        "  (federated wall time includes provisioning, vault imports and process start-up; \
         the pooled fit reads the CSVs in this process)"
    );
    Ok(())
}
