//! Secure aggregation end to end, on real processes: the bench's FedAvg job
//! with clear and with securely aggregated updates at each size, run
//! alternately from the same provisioning, under the coordinator's
//! per-entry and per-step log policies; the overhead ratio; the
//! coordinator's memory; where a secure round's time goes, stage by stage
//! (read back from the exchange logs, see [`crate::timeline`]); and one run
//! in which a member is killed with SIGKILL while training is under way.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;

use crate::federation::{self, Binaries, Job, Kill, LogPolicy, RunOptions, RunResult, TaskOptions};
use crate::stats::{Sample, median};
use crate::table::{self, Goal, Row, Unit};
use crate::timeline::{self, SECURE_STAGES, SecureRound};
use crate::{machine, progress};

/// Sizes and repeats of the section.
pub struct Plan {
    /// Node counts.
    pub nodes: Vec<usize>,
    /// Runs of each setting (clear and secure updates, under each log
    /// policy) per size.
    pub repeats: usize,
}

/// Features of the job (as the round-latency section).
const FEATURES: usize = 30;
/// Nodes of the run with a member killed.
const DROPOUT_NODES: usize = 20;
/// Rounds of the run with a member killed.
const DROPOUT_ROUNDS: u32 = 5;
/// Step deadline of the run with a member killed: how long each step
/// waits for the dead member before closing with the others.
const DROPOUT_STEP_SECONDS: u64 = 3;
/// Longest a single federation may take.
const RUN_DEADLINE: Duration = Duration::from_secs(900);

/// Rounds per run: few at 100 nodes, where a secure round takes seconds.
fn rounds(nodes: usize) -> u32 {
    if nodes >= 100 { 4 } else { 10 }
}

/// The coordinator's log policies each size is run with, with their names
/// in rows and in folder names: per entry (the default, as in the scale
/// section) and once per step (the latency section's group commit), so the
/// disk's share of a round shows.
const POLICIES: [(LogPolicy, &str, &str); 2] = [
    (LogPolicy::Entry, "log fsync per entry", "sync-each"),
    (LogPolicy::Step, "log fsync per step", "sync-step"),
];

/// One size's runs under one log policy.
#[derive(Default)]
struct Runs {
    clear: Vec<RunResult>,
    secure: Vec<RunResult>,
    /// secure / clear median round, per repeat in which both completed.
    ratios: Vec<f64>,
}

/// Runs the section and adds its rows to `rows`; returns the stage
/// breakdown of the secure rounds, a table to print after the main one.
///
/// # Errors
/// Provisioning failed. A run that fails is reported and left out.
pub fn measure(
    bins: &Binaries,
    work_dir: &Path,
    plan: &Plan,
    rows: &mut Vec<Row>,
) -> anyhow::Result<String> {
    let mut columns = Vec::new();
    for &nodes in &plan.nodes {
        let job = Job {
            nodes,
            features: FEATURES,
            rounds: rounds(nodes),
        };
        progress(&format!(
            "secure aggregation: preparing {nodes} nodes x {FEATURES} features, {} rounds",
            job.rounds
        ));
        let clear = federation::prepare(bins, work_dir, job)?;
        let secure = clear.variant(
            "secure",
            TaskOptions {
                secure_aggregation: true,
                ..TaskOptions::default()
            },
        )?;
        let poll = Duration::from_millis(if nodes > 20 { 50 } else { 10 });
        let mut by_policy: [Runs; 2] = Default::default();
        // Settings alternate run by run, so a change in the machine's load
        // falls on all of them alike.
        for repeat in 0..plan.repeats {
            for ((sync, policy, tag), runs) in POLICIES.iter().zip(&mut by_policy) {
                let mut medians = [None; 2];
                for (i, (prepared, setting)) in [(&clear, "clear"), (&secure, "secure")]
                    .into_iter()
                    .enumerate()
                {
                    let options = RunOptions {
                        sync: *sync,
                        poll,
                        kill: None,
                    };
                    let label = format!("run{repeat}-{setting}-{tag}");
                    match federation::run(bins, prepared, options, &label, RUN_DEADLINE) {
                        Ok(result) => {
                            let round = median(&result.round_ms);
                            progress(&format!(
                                "{nodes} nodes, {setting}, {policy}, run {repeat}: median round \
                                 {round:.3} ms, coordinator {:.1} MiB, wall {:.2} s",
                                result.coordinator_kib as f64 / 1024.0,
                                result.wall_seconds
                            ));
                            medians[i] = Some(round);
                            if i == 0 {
                                runs.clear.push(result);
                            } else {
                                runs.secure.push(result);
                            }
                        }
                        Err(error) => {
                            progress(&format!("{nodes} nodes, {label} failed: {error:#}"));
                        }
                    }
                }
                if let [Some(clear), Some(secure)] = medians {
                    runs.ratios.push(secure / clear);
                }
            }
        }
        add_rows(rows, nodes, &by_policy);
        let secure_runs: usize = by_policy.iter().map(|r| r.secure.len()).sum();
        rows.push(Row::new(
            format!(
                "secure runs completing {} rounds, {nodes} nodes",
                job.rounds
            ),
            Sample::of(vec![secure_runs as f64]),
            Unit::Count,
            Goal::AtLeast((plan.repeats * POLICIES.len()) as f64),
        ));
        // Read the logs now: a later job of the same size clears the folder.
        for ((_, policy, _), runs) in POLICIES.iter().zip(&by_policy) {
            let values = column(job.rounds, runs).unwrap_or_else(|error| {
                progress(&format!(
                    "{nodes} nodes: no stage breakdown of the secure rounds: {error:#}"
                ));
                vec![f64::NAN; labels().len()]
            });
            let head = policy.trim_start_matches("log ");
            columns.push((format!("{nodes} nodes, {head}"), values));
        }
    }

    dropout(bins, &work_dir.join("secagg-dropout"), rows)?;
    Ok(breakdown(&columns))
}

fn add_rows(rows: &mut Vec<Row>, nodes: usize, by_policy: &[Runs; 2]) {
    let medians =
        |runs: &[RunResult]| Sample::of(runs.iter().map(|r| median(&r.round_ms)).collect());
    let coordinator =
        |runs: &[RunResult]| Sample::of(runs.iter().map(|r| r.coordinator_kib as f64).collect());
    let name = format!("{nodes} nodes x {FEATURES} features");
    for ((_, policy, _), runs) in POLICIES.iter().zip(by_policy) {
        rows.push(Row::new(
            format!("round, {name}, FedAvg, clear updates, {policy}"),
            medians(&runs.clear),
            Unit::Ms,
            Goal::Info,
        ));
        rows.push(Row::new(
            format!("round, {name}, FedAvg, secure aggregation, {policy}"),
            medians(&runs.secure),
            Unit::Ms,
            Goal::Info,
        ));
        rows.push(Row::new(
            format!("secure / clear round, {nodes} nodes, {policy}"),
            Sample::of(runs.ratios.clone()),
            Unit::Ratio,
            Goal::Info,
        ));
    }
    let [per_entry, _] = by_policy;
    rows.push(Row::new(
        format!("coordinator peak RSS, {nodes} nodes, clear"),
        coordinator(&per_entry.clear),
        Unit::Mib,
        Goal::Info,
    ));
    rows.push(Row::new(
        format!("coordinator peak RSS, {nodes} nodes, secure aggregation"),
        coordinator(&per_entry.secure),
        Unit::Mib,
        Goal::Info,
    ));
}

/// One secure run at [`DROPOUT_NODES`] in which the last member is killed
/// (SIGKILL) as soon as round 1 is checkpointed, i.e. while round 2 is
/// under way. The quorum is every member but one, and the step deadline is
/// short, since every step the dead member was asked to answer waits for it
/// until the deadline.
fn dropout(bins: &Binaries, work_dir: &Path, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let nodes = DROPOUT_NODES;
    let job = Job {
        nodes,
        features: FEATURES,
        rounds: DROPOUT_ROUNDS,
    };
    progress(&format!(
        "secure aggregation, one member killed: preparing {nodes} nodes, {} rounds",
        job.rounds
    ));
    let prepared = federation::prepare(bins, work_dir, job)?.variant(
        "dropout",
        TaskOptions {
            secure_aggregation: true,
            quorum: Some(nodes - 1),
            step_seconds: DROPOUT_STEP_SECONDS,
        },
    )?;
    let options = RunOptions {
        sync: LogPolicy::Entry,
        poll: Duration::from_millis(10),
        kill: Some(Kill {
            member: nodes - 1,
            after_rounds: 1,
        }),
    };
    let label = format!("{nodes} nodes, one killed (SIGKILL) after round 1");
    let (completed, last, after) =
        match federation::run(bins, &prepared, options, "run-killed", RUN_DEADLINE) {
            Ok(result) => {
                let killed = result.killed.as_ref();
                let stopped = killed.and_then(|k| k.last_instruction.as_ref()).map_or(
                    "unknown (its log could not be read)".to_owned(),
                    |(kind, round, answered)| {
                        format!(
                            "{kind} of round {round}, {}",
                            if *answered {
                                "answered"
                            } else {
                                "not answered"
                            }
                        )
                    },
                );
                progress(&format!(
                    "{label}: {} killed at {:.2} s, its last instruction: {stopped}; contributors \
                 per round {:?}; rounds {:?} ms",
                    killed.map_or("nobody", |k| k.member.as_str()),
                    killed.map_or(f64::NAN, |k| k.at_seconds),
                    result.contributors,
                    result
                        .round_ms
                        .iter()
                        .map(|m| m.round())
                        .collect::<Vec<_>>()
                ));
                let after: Vec<f64> = result.round_ms.iter().skip(2).copied().collect();
                (
                    result.contributors.len() as f64,
                    result.contributors.last().map_or(f64::NAN, |&c| c as f64),
                    median(&after),
                )
            }
            Err(error) => {
                progress(&format!("{label}: the run failed: {error:#}"));
                (0.0, f64::NAN, f64::NAN)
            }
        };
    rows.push(Row::new(
        format!("secure, {label}: rounds completed"),
        Sample::of(vec![completed]),
        Unit::Count,
        Goal::AtLeast(f64::from(job.rounds)),
    ));
    rows.push(Row::new(
        format!("  contributors in the last round (of {nodes})"),
        Sample::of(vec![last]),
        Unit::Count,
        Goal::Info,
    ));
    rows.push(Row::new(
        format!("  median round after the kill (rounds 3-{DROPOUT_ROUNDS}; step deadline {DROPOUT_STEP_SECONDS} s)"),
        Sample::of(vec![after]),
        Unit::Ms,
        Goal::Info,
    ));
    Ok(())
}

/// Median of the values `of` picks from every round of every run.
fn pooled<T>(items: &[T], of: impl Fn(&T) -> Option<f64>) -> f64 {
    let values: Vec<f64> = items.iter().filter_map(of).collect();
    median(&values)
}

/// The secure rounds, stage by stage, as a table: one column per size and
/// log policy (its [`column()`]).
fn breakdown(columns: &[(String, Vec<f64>)]) -> String {
    let mut header = vec!["secure round, ms (median over rounds; exchange logs)".to_owned()];
    header.extend(columns.iter().map(|(head, _)| head.clone()));
    let rows: Vec<Vec<String>> = labels()
        .into_iter()
        .enumerate()
        .map(|(i, label)| {
            let mut row = vec![label];
            row.extend(
                columns
                    .iter()
                    .map(|(_, c)| Unit::Ms.format(c.get(i).copied().unwrap_or(f64::NAN))),
            );
            row
        })
        .collect();
    table::grid(&header, &rows)
}

fn labels() -> Vec<String> {
    let mut labels = vec!["round (summary.json)".to_owned()];
    for (k, stage) in SECURE_STAGES.iter().enumerate() {
        if k > 0 {
            labels.push("  coordinator alone, closing the stage before".to_owned());
        }
        labels.push(format!("  stage {}: {}", k + 1, stage.name));
    }
    labels.push("  rest: before the first key request, after the last unmasking share".to_owned());
    for stage in &SECURE_STAGES {
        labels.push(format!("at one node: {}", stage.name));
    }
    labels.push("CPU added per round, all nodes (secure run minus clear run)".to_owned());
    labels.push("CPU added per round, coordinator (secure run minus clear run)".to_owned());
    labels.push(format!(
        "  both, over the {} available cores (the least added time)",
        machine::cores()
    ));
    labels
}

/// The values of [`labels`] for one size: medians over all rounds of all
/// its secure runs (and, at the nodes, over all nodes); the CPU lines from
/// the medians over runs of each setting's total CPU time, which includes
/// the same start-up (joins, vault decryption, statistics) in both.
fn column(rounds: u32, runs: &Runs) -> anyhow::Result<Vec<f64>> {
    // (round at the coordinator, its time in summary.json)
    let mut coordinator: Vec<(SecureRound, f64)> = Vec::new();
    let mut nodes: Vec<[Option<f64>; timeline::STAGES]> = Vec::new();
    for run in &runs.secure {
        let events = timeline::events(&run.dir.join("exchange.log"))?;
        let logged = timeline::secure_rounds(&events, rounds)?;
        coordinator.extend(logged.into_iter().zip(run.round_ms.iter().copied()));
        let node_logs = std::fs::read_dir(&run.dir)
            .with_context(|| format!("cannot list {}", run.dir.display()))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(".exchange.log"))
            });
        for log in node_logs {
            nodes.extend(timeline::node_stages(&timeline::events(&log)?, rounds));
        }
    }
    let mut values = vec![pooled(&coordinator, |(_, ms)| Some(*ms))];
    for k in 0..SECURE_STAGES.len() {
        if k > 0 {
            values.push(pooled(&coordinator, |(r, _)| Some(r.between[k - 1])));
        }
        values.push(pooled(&coordinator, |(r, _)| Some(r.stages[k])));
    }
    values.push(pooled(&coordinator, |(r, ms)| Some(ms - r.logged)));
    for k in 0..SECURE_STAGES.len() {
        values.push(pooled(&nodes, |stages| stages[k]));
    }
    let added_ms = |cpu: &dyn Fn(&RunResult) -> f64| {
        let of = |runs: &[RunResult]| median(&runs.iter().map(cpu).collect::<Vec<_>>());
        (of(&runs.secure) - of(&runs.clear)) * 1e3 / f64::from(rounds)
    };
    let node_cpu = added_ms(&|r| r.node_cpu.iter().sum());
    let coordinator_cpu = added_ms(&|r| r.coordinator_cpu);
    values.push(node_cpu);
    values.push(coordinator_cpu);
    values.push((node_cpu + coordinator_cpu) / machine::cores() as f64);
    Ok(values)
}
