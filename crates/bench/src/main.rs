//! `medfed-bench`: measures medfed against its performance targets (round
//! latency, launch time, memory, local compute, vault load, aggregation,
//! scale, and the cost of secure aggregation) and prints one table. See docs/BENCHMARKS.md for what each figure
//! means and the results on the reference machine.
//!
//! ```text
//! medfed-bench            # the full run (minutes)
//! medfed-bench --quick    # fewer repeats, smaller sizes: a smoke run
//! ```
//!
//! # Layout
//! - `machine`: core count and the streaming-read baseline.
//! - `compute`: the gradient and Newton-terms passes; vault load.
//! - `aggregation`: FedAvg over many updates, time and memory.
//! - `federation`: provisioning and running real coordinator and node
//!   processes on loopback, measured from outside.
//! - `timeline`: round starts and secure-aggregation stage times read back
//!   from the exchange logs.
//! - `secagg`: secure aggregation against clear updates at several sizes,
//!   and a run with a member killed.
//! - `rss`: peak resident memory from `/proc`.
//! - `cpu`: CPU time of a process from `/proc`.
//! - `synthetic`: seeded logistic data with known coefficients.
//! - `stats`: median, minimum and maximum of repeats.
//! - `table`: the printed table and its verdicts.

#![forbid(unsafe_code)]

mod aggregation;
mod compute;
mod cpu;
mod federation;
mod machine;
mod rss;
mod secagg;
mod stats;
mod synthetic;
mod table;
mod timeline;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::federation::{Binaries, Job, LogPolicy, RunOptions, RunResult};
use crate::stats::{Sample, median};
use crate::table::{Goal, Row, Unit};

/// Measures medfed against its performance targets and prints one table.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Fewer repeats and smaller sizes: a smoke run of every measurement.
    #[arg(long)]
    quick: bool,
    /// Folder holding the release `coordinator`, `node`, `medfed-certs` and
    /// `medfed-audit` (default: the folder of this executable).
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Folder for the federations' files (default: a temporary folder,
    /// removed at the end). It must be on a real disk for the fsync figures.
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Run only these parts (repeatable; default: all).
    #[arg(long, value_enum, value_name = "PART")]
    only: Vec<Part>,
}

/// The parts of the bench.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Gradient and Newton-terms passes against the streaming read.
    Compute,
    /// Vault decryption and parsing.
    Vault,
    /// FedAvg over 1,000 updates of 10,000 parameters.
    Aggregate,
    /// Round latency (3 and 10 nodes, both log sync policies), launch time
    /// and peak RSS.
    Latency,
    /// Growth with nodes and features.
    Scale,
    /// Secure aggregation against clear updates (4, 20 and 100 nodes), and
    /// a run with one member killed.
    Secagg,
}

/// Sizes and repeats of one mode.
struct Plan {
    compute_rows: usize,
    compute_repeats: usize,
    vault_rows: usize,
    vault_repeats: usize,
    aggregate_repeats: usize,
    latency_repeats: usize,
    scale_nodes: Vec<usize>,
    scale_features: Vec<usize>,
    scale_repeats: usize,
    secagg: secagg::Plan,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                compute_rows: 200_000,
                compute_repeats: 3,
                vault_rows: 20_000,
                vault_repeats: 3,
                aggregate_repeats: 3,
                latency_repeats: 2,
                scale_nodes: vec![4, 20],
                scale_features: vec![30, 1_000],
                scale_repeats: 1,
                secagg: secagg::Plan {
                    nodes: vec![4, 20],
                    repeats: 1,
                },
            }
        } else {
            Plan {
                compute_rows: 1_000_000,
                compute_repeats: 5,
                vault_rows: 200_000,
                vault_repeats: 5,
                aggregate_repeats: 7,
                latency_repeats: 5,
                scale_nodes: vec![4, 20, 100],
                scale_features: vec![30, 1_000, 10_000],
                scale_repeats: 3,
                secagg: secagg::Plan {
                    nodes: vec![4, 20, 100],
                    repeats: 3,
                },
            }
        }
    }
}

/// Features of the compute kernels' matrix.
const COMPUTE_FEATURES: usize = 100;
/// Feature columns of the vault that is loaded.
const VAULT_FEATURES: usize = 100;
/// Rounds of every federation.
const ROUNDS: u32 = 20;
/// `--audit-sync-every` for the runs whose coordinator log is flushed only
/// at the end.
const SYNC_AT_END: u32 = 1_000_000;
/// Longest a single federation may take.
const RUN_DEADLINE: Duration = Duration::from_secs(600);

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("medfed-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn progress(message: &str) {
    eprintln!("medfed-bench: {message}");
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let plan = Plan::new(cli.quick);
    let wants = |part| cli.only.is_empty() || cli.only.contains(&part);
    let temporary;
    let work_dir = match &cli.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.clone()
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("medfed-bench-")
                .tempdir()
                .context("cannot create a temporary folder")?;
            temporary.path().to_path_buf()
        }
    };
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut bandwidth = None;

    if wants(Part::Compute) {
        let (n, d) = (plan.compute_rows, COMPUTE_FEATURES);
        progress(&format!("compute kernels on {n} x {d} rows"));
        let k = compute::kernels(n, d, plan.compute_repeats)?;
        let stream = k.stream.median();
        bandwidth = Some(stream);
        let shape = format!("{n} x {d}");
        rows.push(Row::new(
            format!("streaming read (sum), {shape} f64, 1 core"),
            k.stream.clone(),
            Unit::GbPerS,
            Goal::Info,
        ));
        rows.push(Row::new(
            format!("gradient pass (loss_and_gradient), {shape}"),
            k.gradient.clone(),
            Unit::GbPerS,
            Goal::AtLeast(0.5 * stream),
        ));
        rows.push(Row::new(
            format!("gradient + Hessian pass (NewtonTerms), {shape}"),
            k.newton.clone(),
            Unit::GbPerS,
            Goal::AtLeast(0.5 * stream),
        ));
        progress(&format!(
            "compute: stream {:.2} GB/s, gradient {:.2} GB/s ({:.0}% of stream), \
             Newton terms {:.3} GB/s ({:.1}%)",
            stream / 1e9,
            k.gradient.median() / 1e9,
            100.0 * k.gradient.median() / stream,
            k.newton.median() / 1e9,
            100.0 * k.newton.median() / stream
        ));
    }

    if wants(Part::Vault) {
        progress(&format!(
            "vault load: {} rows x {} columns",
            plan.vault_rows,
            VAULT_FEATURES + 1
        ));
        let v = compute::vault_load(
            &work_dir,
            plan.vault_rows,
            VAULT_FEATURES,
            plan.vault_repeats,
        )?;
        rows.push(Row::new(
            format!(
                "vault load (read_vault), {} x {} f64, {:.0} MB file",
                v.shape.0,
                v.shape.1,
                v.file_bytes as f64 / 1e6
            ),
            v.throughput,
            Unit::MbPerS,
            Goal::AtLeast(300e6),
        ));
    }

    if wants(Part::Aggregate) {
        progress("FedAvg aggregation: 1,000 updates of 10,000 parameters");
        let a = aggregation::fedavg(1_000, 10_000, plan.aggregate_repeats)?;
        rows.push(Row::new(
            format!("FedAvg, {} updates x {} parameters", a.shape.0, a.shape.1),
            Sample::of(a.seconds_ms()),
            Unit::Ms,
            Goal::AtMost(100.0),
        ));
        rows.push(Row::new(
            format!(
                "RSS growth folding {} updates in (one {:.0} KiB buffer)",
                a.shape.0,
                a.shape.1 as f64 * 8.0 / 1024.0
            ),
            Sample::of(vec![a.rss_growth_kib]),
            Unit::Kib,
            Goal::Info,
        ));
    }

    let needs_processes = wants(Part::Latency) || wants(Part::Scale) || wants(Part::Secagg);
    let bins = if needs_processes {
        let dir = match &cli.bin_dir {
            Some(dir) => dir.clone(),
            None => std::env::current_exe()
                .context("cannot find this executable's folder")?
                .parent()
                .map(PathBuf::from)
                .context("this executable has no folder")?,
        };
        Some(Binaries::locate(&dir)?)
    } else {
        None
    };

    if let (true, Some(bins)) = (wants(Part::Latency), &bins) {
        latency(bins, &work_dir, &plan, &mut rows)?;
    }
    if let (true, Some(bins)) = (wants(Part::Scale), &bins) {
        scale(bins, &work_dir, &plan, &mut rows)?;
    }
    let mut stages = None;
    if let (true, Some(bins)) = (wants(Part::Secagg), &bins) {
        stages = Some(secagg::measure(bins, &work_dir, &plan.secagg, &mut rows)?);
    }

    println!();
    println!(
        "medfed-bench ({} run), {} cores available (std::thread::available_parallelism)",
        if cli.quick { "quick" } else { "full" },
        machine::cores()
    );
    match bandwidth {
        Some(b) => println!(
            "single-core memory bandwidth (streaming read of the compute matrix): {:.2} GB/s",
            b / 1e9
        ),
        None => println!("single-core memory bandwidth: not measured (--only without compute)"),
    }
    println!(
        "medians over repeats, with min–max; total bench time {:.0} s",
        started.elapsed().as_secs_f64()
    );
    println!();
    print!("{}", table::render(&rows));
    if let Some(stages) = stages {
        println!();
        print!("{stages}");
    }
    Ok(())
}

/// Round latency at 3 and 10 nodes with the coordinator's log synced per
/// entry (the default) and flushed only at the end, interleaved run by run;
/// launch time and peak RSS from the 10-node default runs.
fn latency(
    bins: &Binaries,
    work_dir: &std::path::Path,
    plan: &Plan,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    for nodes in [3, 10] {
        let job = Job {
            nodes,
            features: 30,
            rounds: ROUNDS,
        };
        progress(&format!("preparing {nodes} nodes x 30 features"));
        let prepared = federation::prepare(bins, work_dir, job)?;
        let mut per_entry: Vec<RunResult> = Vec::new();
        let mut per_step: Vec<RunResult> = Vec::new();
        let mut at_end: Vec<RunResult> = Vec::new();
        for repeat in 0..plan.latency_repeats {
            for sync in [
                LogPolicy::Entry,
                LogPolicy::Step,
                LogPolicy::Every(SYNC_AT_END),
            ] {
                let label = format!(
                    "run{repeat}-{}",
                    match sync {
                        LogPolicy::Entry => "sync-each",
                        LogPolicy::Step => "sync-step",
                        LogPolicy::Every(_) => "sync-at-end",
                    }
                );
                let options = RunOptions {
                    sync,
                    poll: Duration::from_millis(10),
                    kill: None,
                };
                let result = federation::run(bins, &prepared, options, &label, RUN_DEADLINE)?;
                progress(&format!(
                    "{nodes} nodes, {label}: median round {:.3} ms, first round at {:.3} s, \
                     coordinator {:.1} MiB",
                    median(&result.round_ms),
                    result.first_round_seconds,
                    result.coordinator_kib as f64 / 1024.0
                ));
                match sync {
                    LogPolicy::Entry => per_entry.push(result),
                    LogPolicy::Step => per_step.push(result),
                    LogPolicy::Every(_) => at_end.push(result),
                }
            }
        }
        let medians =
            |runs: &[RunResult]| Sample::of(runs.iter().map(|r| median(&r.round_ms)).collect());
        let each = medians(&per_entry);
        let step = medians(&per_step);
        let end = medians(&at_end);
        let goal = if nodes == 3 { 0.7 } else { 2.0 };
        rows.push(Row::new(
            format!("round, {nodes} nodes x 30 features, FedAvg, log fsync per entry"),
            each.clone(),
            Unit::Ms,
            Goal::AtMost(goal),
        ));
        rows.push(Row::new(
            format!("round, {nodes} nodes x 30 features, FedAvg, log fsync per step"),
            step.clone(),
            Unit::Ms,
            Goal::AtMost(goal),
        ));
        rows.push(Row::new(
            format!("round, {nodes} nodes, coordinator log flushed at end"),
            end.clone(),
            Unit::Ms,
            Goal::Info,
        ));
        rows.push(Row::new(
            format!(
                "round period (round start to next round start), {nodes} nodes, fsync per entry"
            ),
            Sample::of(per_entry.iter().map(|r| median(&r.period_ms)).collect()),
            Unit::Ms,
            Goal::Info,
        ));
        rows.push(Row::new(
            format!("coordinator fsync cost per round, {nodes} nodes, per entry (vs at end)"),
            Sample::of(vec![each.median() - end.median()]),
            Unit::Ms,
            Goal::Info,
        ));
        rows.push(Row::new(
            format!("coordinator fsync cost per round, {nodes} nodes, per step (vs at end)"),
            Sample::of(vec![step.median() - end.median()]),
            Unit::Ms,
            Goal::Info,
        ));
        if nodes == 10 {
            rows.push(Row::new(
                "launch to first round, 10 nodes (spawn to round 1 at a node)",
                Sample::of(per_entry.iter().map(|r| r.first_round_seconds).collect()),
                Unit::S,
                Goal::AtMost(0.5),
            ));
            rows.push(Row::new(
                "  of which: spawn to coordinator listening",
                Sample::of(per_entry.iter().map(|r| r.ready_seconds).collect()),
                Unit::S,
                Goal::Info,
            ));
            rows.push(Row::new(
                "peak RSS, largest of 10 nodes",
                Sample::of(
                    per_entry
                        .iter()
                        .map(|r| r.node_kib.iter().copied().max().unwrap_or(0) as f64)
                        .collect(),
                ),
                Unit::Mib,
                Goal::AtMost(15.0 * 1024.0),
            ));
            rows.push(Row::new(
                "peak RSS, coordinator, 10-node job",
                Sample::of(per_entry.iter().map(|r| r.coordinator_kib as f64).collect()),
                Unit::Mib,
                Goal::AtMost(30.0 * 1024.0),
            ));
        }
    }
    Ok(())
}

/// Median round time and coordinator peak RSS as nodes grow (30 features)
/// and as features grow (4 nodes).
fn scale(
    bins: &Binaries,
    work_dir: &std::path::Path,
    plan: &Plan,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let mut jobs: Vec<Job> = plan
        .scale_nodes
        .iter()
        .map(|&nodes| Job {
            nodes,
            features: 30,
            rounds: ROUNDS,
        })
        .collect();
    jobs.extend(
        plan.scale_features
            .iter()
            .filter(|&&d| d != 30)
            .map(|&features| Job {
                nodes: 4,
                features,
                rounds: ROUNDS,
            }),
    );
    for job in jobs {
        progress(&format!(
            "preparing {} nodes x {} features",
            job.nodes, job.features
        ));
        let prepared = federation::prepare(bins, work_dir, job)?;
        let mut rounds = Sample::default();
        let mut coordinator = Sample::default();
        let mut node = Sample::default();
        let mut completed = 0;
        for repeat in 0..plan.scale_repeats {
            let options = RunOptions {
                sync: LogPolicy::Entry,
                poll: Duration::from_millis(if job.nodes > 20 { 50 } else { 10 }),
                kill: None,
            };
            match federation::run(
                bins,
                &prepared,
                options,
                &format!("run{repeat}"),
                RUN_DEADLINE,
            ) {
                Ok(result) => {
                    completed += 1;
                    progress(&format!(
                        "{} nodes x {} features: median round {:.3} ms, coordinator {:.1} MiB, \
                         wall {:.2} s",
                        job.nodes,
                        job.features,
                        median(&result.round_ms),
                        result.coordinator_kib as f64 / 1024.0,
                        result.wall_seconds
                    ));
                    rounds.push(median(&result.round_ms));
                    coordinator.push(result.coordinator_kib as f64);
                    node.push(result.node_kib.iter().copied().max().unwrap_or(0) as f64);
                }
                Err(error) => progress(&format!(
                    "{} nodes x {} features, run {repeat} failed: {error:#}",
                    job.nodes, job.features
                )),
            }
        }
        let name = format!("{} nodes x {} features", job.nodes, job.features);
        if job.nodes == 100 {
            rows.push(Row::new(
                format!("{name}: runs completing {ROUNDS} rounds"),
                Sample::of(vec![f64::from(completed)]),
                Unit::Count,
                Goal::AtLeast(plan.scale_repeats as f64),
            ));
        }
        rows.push(Row::new(
            format!("{name}: median round"),
            rounds,
            Unit::Ms,
            Goal::Info,
        ));
        rows.push(Row::new(
            format!("{name}: coordinator peak RSS"),
            coordinator,
            Unit::Mib,
            Goal::Info,
        ));
        rows.push(Row::new(
            format!("{name}: largest node peak RSS"),
            node,
            Unit::Mib,
            Goal::Info,
        ));
    }
    Ok(())
}
