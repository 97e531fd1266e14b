//! Real federations on loopback: provisioning (certificates, synthetic CSVs
//! imported into vaults, audit keys, the task file) before any timing, then
//! runs of one coordinator and N node processes over mutual TLS with the
//! exchange logs on, measured from outside.
//!
//! What a run reports, and where it comes from:
//! - round times: `rounds[].millis` of the coordinator's `summary.json`,
//!   measured by the coordinator from publishing a round's instruction to
//!   having the next global model, the nodes' local compute included;
//! - launch to first round: from spawning the coordinator to the `time` of
//!   the first `out` entry of kind `train` for round 1 in the coordinator's
//!   exchange log, which is written when the first node receives round 1
//!   (the coordinator logs every message before it leaves); the nodes are
//!   spawned as soon as the coordinator's ready file names its address;
//! - peak RSS of every process: `VmHWM` polled until it exits (see
//!   [`crate::rss`]); its CPU time likewise (see [`crate::cpu`]).
//!
//! One provisioning serves several task files ([`Prepared::variant`]: e.g.
//! the same members with secure aggregation on), and a run can kill one
//! node with SIGKILL once a number of rounds is done ([`Kill`]).

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use medfed_vault::{ImportOptions, VaultKey};
use serde::Deserialize;

use crate::cpu::cpu_seconds;
use crate::rss::peak_kib;
use crate::synthetic::Generator;
use crate::timeline;

/// Rows each node holds (190 x 3 nodes is about the 569 rows of the
/// reference job).
pub const ROWS_PER_NODE: usize = 190;

/// Columns `node import` accepts by default (medfed_vault's
/// `DEFAULT_MAX_COLUMNS`): wider tables are imported through the same
/// library calls with the limit raised.
const NODE_IMPORT_MAX_COLUMNS: usize = medfed_vault::DEFAULT_MAX_COLUMNS;

/// The medfed executables a run starts.
pub struct Binaries {
    coordinator: PathBuf,
    node: PathBuf,
    certs: PathBuf,
    audit: PathBuf,
}

impl Binaries {
    /// The executables in `dir`.
    ///
    /// # Errors
    /// One of them is missing.
    pub fn locate(dir: &Path) -> anyhow::Result<Binaries> {
        let find = |name: &str| -> anyhow::Result<PathBuf> {
            let path = dir.join(name);
            ensure!(
                path.is_file(),
                "{} not found; build the release binaries first \
                 (cargo build --release -p medfed-coordinator -p medfed-node -p medfed-certs \
                 -p medfed-audit) or pass --bin-dir",
                path.display()
            );
            Ok(path)
        };
        Ok(Binaries {
            coordinator: find("coordinator")?,
            node: find("node")?,
            certs: find("medfed-certs")?,
            audit: find("medfed-audit")?,
        })
    }
}

/// A federation to prepare and run.
#[derive(Clone, Copy, Debug)]
pub struct Job {
    /// Node processes.
    pub nodes: usize,
    /// Features of the logistic regression.
    pub features: usize,
    /// FedAvg rounds.
    pub rounds: u32,
}

/// What a task file sets beyond the job's shape.
#[derive(Clone, Copy, Debug)]
pub struct TaskOptions {
    /// `[privacy] secure_aggregation`, with the default threshold and
    /// fixed point.
    pub secure_aggregation: bool,
    /// `[training] quorum` (`None`: every member).
    pub quorum: Option<usize>,
    /// `[timeouts] step_seconds`: how long a step waits for a member that
    /// does not answer.
    pub step_seconds: u64,
}

impl Default for TaskOptions {
    /// Clear updates, every member required, a step deadline no healthy
    /// run of the bench comes near.
    fn default() -> TaskOptions {
        TaskOptions {
            secure_aggregation: false,
            quorum: None,
            step_seconds: 120,
        }
    }
}

/// A job whose certificates, vaults, keys and task file exist.
#[derive(Clone)]
pub struct Prepared {
    job: Job,
    dir: PathBuf,
    members: Vec<String>,
    task: PathBuf,
}

impl Prepared {
    /// The same members, vaults and keys with another task file,
    /// `task-<name>.toml`, written beside the first.
    ///
    /// # Errors
    /// The task file cannot be written.
    pub fn variant(&self, name: &str, options: TaskOptions) -> anyhow::Result<Prepared> {
        let task = self.dir.join(format!("task-{name}.toml"));
        fs::write(&task, task_file(self.job, &self.members, options))
            .with_context(|| format!("cannot write {}", task.display()))?;
        Ok(Prepared {
            task,
            ..self.clone()
        })
    }
}

/// Runs `command` to completion, failing with its output if it fails.
fn run_quiet(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("cannot start {what}"))?;
    ensure!(
        output.status.success(),
        "{what} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// Provisions `job` under `root`: `medfed-certs demo` for the members, one
/// seeded CSV per node imported into its vault, audit keys, and a FedAvg
/// task file with evaluation off during training (`every_rounds = 0`, no
/// baselines), so rounds time the training exchange alone.
///
/// # Errors
/// A step of the provisioning failed.
pub fn prepare(bins: &Binaries, root: &Path, job: Job) -> anyhow::Result<Prepared> {
    let dir = root.join(format!("n{}-d{}", job.nodes, job.features));
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let members: Vec<String> = (1..=job.nodes).map(|i| format!("site{i:03}")).collect();
    let mut certs = Command::new(&bins.certs);
    certs.arg("demo").arg("--out").arg(dir.join("pki"));
    for member in &members {
        certs.arg("--member").arg(member);
    }
    certs.args(["--san", "127.0.0.1", "--san", "localhost"]);
    run_quiet(&mut certs, "medfed-certs demo")?;

    let mut generator = Generator::new(job.features, 2026);
    for (i, member) in members.iter().enumerate() {
        let site = dir.join(member);
        fs::create_dir_all(&site).with_context(|| format!("cannot create {}", site.display()))?;
        generator.reseed(1000 + i as u64);
        let csv = site.join("records.csv");
        write_csv(&csv, &mut generator, job.features, ROWS_PER_NODE)?;
        let vault = site.join("site.vault");
        let key = site.join("vault.key");
        if job.features < NODE_IMPORT_MAX_COLUMNS {
            run_quiet(
                Command::new(&bins.node)
                    .arg("import")
                    .arg("--csv")
                    .arg(&csv)
                    .arg("--vault")
                    .arg(&vault)
                    .arg("--vault-key-file")
                    .arg(&key)
                    .args(["--create-key", "--target", "target"]),
                "node import",
            )?;
        } else {
            import_wide(&csv, &vault, &key)?;
        }
        fs::remove_file(&csv).with_context(|| format!("cannot remove {}", csv.display()))?;
        run_quiet(
            Command::new(&bins.audit)
                .args(["keygen", "--audit-key-file"])
                .arg(site.join("audit.key")),
            "medfed-audit keygen",
        )?;
    }
    run_quiet(
        Command::new(&bins.audit)
            .args(["keygen", "--audit-key-file"])
            .arg(dir.join("audit.key")),
        "medfed-audit keygen",
    )?;
    let task = dir.join("task.toml");
    fs::write(&task, task_file(job, &members, TaskOptions::default()))
        .with_context(|| format!("cannot write {}", task.display()))?;
    Ok(Prepared {
        job,
        dir,
        members,
        task,
    })
}

/// `node import`'s own two calls (medfed_vault's `import_csv`, then
/// `write_vault`), with the column limit raised for a table wider than the
/// command accepts.
fn import_wide(csv: &Path, vault: &Path, key_path: &Path) -> anyhow::Result<()> {
    let options = ImportOptions {
        required: vec!["target".into()],
        max_columns: usize::MAX,
        ..ImportOptions::default()
    };
    let table = medfed_vault::import_csv(csv, &options)?;
    let key = VaultKey::generate();
    key.write_new(key_path)?;
    medfed_vault::write_vault(vault, &table, &key)?;
    Ok(())
}

fn write_csv(path: &Path, generator: &mut Generator, d: usize, rows: usize) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    let write_error = |e| anyhow::Error::new(e).context(format!("cannot write {}", path.display()));
    let header: Vec<String> = (1..=d).map(|j| format!("f{j}")).collect();
    writeln!(out, "{},target", header.join(",")).map_err(write_error)?;
    let mut row = vec![0.0; d];
    for _ in 0..rows {
        let label = generator.row(&mut row);
        for v in &row {
            write!(out, "{v:.6},").map_err(write_error)?;
        }
        writeln!(out, "{label}").map_err(write_error)?;
    }
    out.flush().map_err(write_error)
}

fn task_file(job: Job, members: &[String], options: TaskOptions) -> String {
    let quoted = |names: &mut dyn Iterator<Item = String>| {
        names
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let quorum = options
        .quorum
        .map(|q| format!("quorum = {q}\n"))
        .unwrap_or_default();
    let privacy = if options.secure_aggregation {
        "\n[privacy]\nsecure_aggregation = true\n"
    } else {
        ""
    };
    format!(
        "[task]\nid = \"bench-n{n}-d{d}\"\nmembers = [{members}]\nmodel = \"logistic\"\n\
         features = [{features}]\ntarget = \"target\"\n\n\
         [training]\nalgorithm = \"fedavg\"\nrounds = {rounds}\ntolerance = 0.0\n\
         local_steps = 5\nlearning_rate = 0.5\nl2 = 0.001\naggregation = \"fedavg\"\n{quorum}\n\
         [evaluation]\nholdout_fraction = 0.25\nsplit_seed = 2026\nevery_rounds = 0\n\
         baselines = false\n\n[timeouts]\njoin_seconds = 120\nstep_seconds = {step}\n{privacy}",
        n = job.nodes,
        d = job.features,
        members = quoted(&mut members.iter().cloned()),
        features = quoted(&mut (1..=job.features).map(|j| format!("f{j}"))),
        rounds = job.rounds,
        step = options.step_seconds,
    )
}

/// When the coordinator's exchange log is flushed to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogPolicy {
    /// After every entry (the default).
    Entry,
    /// Once per step (`--audit-sync-every-step`).
    Step,
    /// Every `n` entries (`--audit-sync-every n`); a large `n` means at the end.
    Every(u32),
}

/// How to run a prepared job.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// The coordinator's log flush policy.
    pub sync: LogPolicy,
    /// How often every process's peak RSS is read.
    pub poll: Duration,
    /// A node to kill during the run.
    pub kill: Option<Kill>,
}

/// A node killed with SIGKILL (no chance to say goodbye) during a run.
#[derive(Clone, Copy, Debug)]
pub struct Kill {
    /// Index of the node among the members (0 is `site001`).
    pub member: usize,
    /// Killed as soon as the coordinator's checkpoint (`state.json`,
    /// written after every completed round) records this many rounds.
    pub after_rounds: u32,
}

/// What happened to the node of a [`Kill`].
#[derive(Debug)]
pub struct Killed {
    /// Its member name.
    pub member: String,
    /// Seconds from spawning the coordinator to the kill.
    pub at_seconds: f64,
    /// The last instruction it received, its round, and whether it
    /// answered it, from its own exchange log (`None` if the log cannot be
    /// read, e.g. torn by the kill).
    pub last_instruction: Option<(String, u32, bool)>,
}

/// What one run measured.
#[derive(Debug)]
pub struct RunResult {
    /// Milliseconds per round, from the coordinator's summary.
    pub round_ms: Vec<f64>,
    /// Seconds from spawning the coordinator to its ready file.
    pub ready_seconds: f64,
    /// Seconds from spawning the coordinator to round 1 reaching a node.
    pub first_round_seconds: f64,
    /// Milliseconds from one round reaching its first node to the next
    /// round doing so: the round time plus what the coordinator does
    /// between rounds (its checkpoint).
    pub period_ms: Vec<f64>,
    /// Peak RSS of the coordinator, in KiB.
    pub coordinator_kib: u64,
    /// Peak RSS of each node, in KiB.
    pub node_kib: Vec<u64>,
    /// User plus system CPU time of the coordinator, in seconds.
    pub coordinator_cpu: f64,
    /// User plus system CPU time of each node, in seconds.
    pub node_cpu: Vec<f64>,
    /// Seconds from spawning the coordinator to every process exiting.
    pub wall_seconds: f64,
    /// Members whose update is in each round, from the coordinator's
    /// summary.
    pub contributors: Vec<usize>,
    /// The node killed during the run, if one was.
    pub killed: Option<Killed>,
    /// The run's folder: the coordinator's `exchange.log` and
    /// `summary.json`, and `<member>.exchange.log` of every node.
    pub dir: PathBuf,
}

/// The processes of a run, killed if the run is abandoned.
struct Processes(Vec<(String, Child)>);

impl Drop for Processes {
    fn drop(&mut self) {
        for (_, child) in &mut self.0 {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[derive(Deserialize)]
struct Summary {
    rounds: Vec<SummaryRound>,
}

#[derive(Deserialize)]
struct SummaryRound {
    millis: f64,
    contributors: usize,
}

/// The part of the coordinator's checkpoint a [`Kill`] waits on.
#[derive(Deserialize)]
struct Checkpoint {
    rounds: Vec<serde::de::IgnoredAny>,
}

/// Rounds the checkpoint at `path` records; 0 while there is none. The
/// coordinator replaces it by renaming, so it is never read half-written.
fn checkpointed_rounds(path: &Path) -> usize {
    fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Checkpoint>(&bytes).ok())
        .map_or(0, |c| c.rounds.len())
}

/// Runs `prepared` once; `label` names the output folder.
///
/// # Errors
/// A process could not start or failed, took longer than `deadline`, or
/// left no summary or log to read.
pub fn run(
    bins: &Binaries,
    prepared: &Prepared,
    options: RunOptions,
    label: &str,
    deadline: Duration,
) -> anyhow::Result<RunResult> {
    let out = prepared.dir.join(label);
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("cannot clear {}", out.display()))?;
    }
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    // Each run is a task of its own: a node masks one vector once per task
    // (its contribution record beside the vault), so a second run of the
    // same task from the same vaults would be refused as a replay.
    let task = out.join("task.toml");
    let text = fs::read_to_string(&prepared.task)
        .with_context(|| format!("cannot read {}", prepared.task.display()))?;
    let text = text.replacen("\"\nmembers = ", &format!("-{label}\"\nmembers = "), 1);
    fs::write(&task, text).with_context(|| format!("cannot write {}", task.display()))?;
    let pki = prepared.dir.join("pki");
    let ready = out.join("ready.json");
    let log_file = |name: &str| -> anyhow::Result<File> {
        let path = out.join(name);
        File::create(&path).with_context(|| format!("cannot create {}", path.display()))
    };
    let mut coordinator = Command::new(&bins.coordinator);
    coordinator
        .arg("run")
        .arg("--task")
        .arg(&task)
        .args(["--listen", "127.0.0.1:0"])
        .arg("--ca")
        .arg(pki.join("coordinator/ca.pem"))
        .arg("--cert")
        .arg(pki.join("coordinator/coordinator.pem"))
        .arg("--key")
        .arg(pki.join("coordinator/coordinator.key"))
        .arg("--signing-key")
        .arg(pki.join("coordinator/coordinator.sign.key"))
        .arg("--audit-key-file")
        .arg(prepared.dir.join("audit.key"))
        .arg("--out")
        .arg(&out)
        .arg("--ready-file")
        .arg(&ready)
        .env("MEDFED_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log_file("coordinator.out")?)
        .stderr(log_file("coordinator.err")?);
    match options.sync {
        LogPolicy::Entry => {}
        LogPolicy::Step => {
            coordinator.arg("--audit-sync-every-step");
        }
        LogPolicy::Every(n) => {
            coordinator.arg("--audit-sync-every").arg(n.to_string());
        }
    }

    let spawned_at = SystemTime::now();
    let started = Instant::now();
    let child = coordinator
        .spawn()
        .with_context(|| format!("cannot start {}", bins.coordinator.display()))?;
    let mut processes = Processes(vec![("coordinator".into(), child)]);
    let mut peaks = vec![0u64];
    let mut cpu = vec![0.0f64];
    let address = loop {
        if let Ok(text) = fs::read_to_string(&ready)
            && let Some(address) = ready_address(&text)
        {
            break address;
        }
        if let Some(status) = processes.0[0].1.try_wait()? {
            bail!(
                "the coordinator exited ({status}) before listening; see {}",
                out.join("coordinator.err").display()
            );
        }
        ensure!(
            started.elapsed() < deadline,
            "the coordinator did not listen within {deadline:?}"
        );
        std::thread::sleep(Duration::from_micros(500));
    };
    let ready_seconds = started.elapsed().as_secs_f64();

    for member in &prepared.members {
        let site = prepared.dir.join(member);
        let certs = pki.join(member);
        let child = Command::new(&bins.node)
            .arg("run")
            .arg("--coordinator")
            .arg(format!("https://{address}"))
            .args(["--server-name", "localhost"])
            .arg("--ca")
            .arg(certs.join("ca.pem"))
            .arg("--cert")
            .arg(certs.join(format!("{member}.pem")))
            .arg("--key")
            .arg(certs.join(format!("{member}.key")))
            .arg("--signing-key")
            .arg(certs.join(format!("{member}.sign.key")))
            .arg("--audit-key-file")
            .arg(site.join("audit.key"))
            .arg("--audit-log")
            .arg(out.join(format!("{member}.exchange.log")))
            .arg("--vault")
            .arg(site.join("site.vault"))
            .arg("--vault-key-file")
            .arg(site.join("vault.key"))
            .env("MEDFED_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log_file(&format!("{member}.out"))?)
            .stderr(log_file(&format!("{member}.err"))?)
            .spawn()
            .with_context(|| format!("cannot start {}", bins.node.display()))?;
        processes.0.push((member.clone(), child));
        peaks.push(0);
        cpu.push(0.0);
    }

    let checkpoint = out.join("state.json");
    // Index in `processes` of the node to kill (0 is the coordinator).
    let victim = options.kill.map(|k| k.member + 1);
    if let (Some(kill), Some(i)) = (options.kill, victim) {
        ensure!(
            i < processes.0.len(),
            "cannot kill member {} of {}",
            kill.member,
            prepared.members.len()
        );
    }
    let mut killed_at = None;
    let mut exited = vec![None; processes.0.len()];
    while exited.iter().any(Option::is_none) {
        if let (Some(kill), Some(i), None) = (options.kill, victim, killed_at)
            && checkpointed_rounds(&checkpoint) >= kill.after_rounds as usize
        {
            // Child::kill sends SIGKILL on Unix.
            processes.0[i]
                .1
                .kill()
                .with_context(|| format!("cannot kill {}", processes.0[i].0))?;
            killed_at = Some(started.elapsed().as_secs_f64());
        }
        for (i, (_, child)) in processes.0.iter_mut().enumerate() {
            if exited[i].is_some() {
                continue;
            }
            // Read the peak before asking whether it exited: a reaped
            // process has no status file left to read.
            if let Some(kib) = peak_kib(child.id()) {
                peaks[i] = peaks[i].max(kib);
            }
            if let Some(seconds) = cpu_seconds(child.id()) {
                cpu[i] = seconds;
            }
            if let Some(status) = child.try_wait()? {
                exited[i] = Some(status);
            }
        }
        ensure!(
            started.elapsed() < deadline,
            "the run {} did not finish within {deadline:?}",
            out.display()
        );
        std::thread::sleep(options.poll);
    }
    let wall_seconds = started.elapsed().as_secs_f64();
    for (i, ((name, _), status)) in processes.0.iter().zip(&exited).enumerate() {
        if killed_at.is_some() && Some(i) == victim {
            continue;
        }
        if let Some(status) = status
            && !status.success()
        {
            bail!(
                "{name} failed ({status}); its output is in {}",
                out.display()
            );
        }
    }

    let summary_path = out.join("summary.json");
    let summary: Summary = serde_json::from_slice(
        &fs::read(&summary_path)
            .with_context(|| format!("cannot read {}", summary_path.display()))?,
    )
    .with_context(|| format!("{} is not a run summary", summary_path.display()))?;
    ensure!(
        summary.rounds.len() == prepared.job.rounds as usize,
        "{} records {} rounds, the task has {}",
        summary_path.display(),
        summary.rounds.len(),
        prepared.job.rounds
    );
    if let (Some(kill), None) = (options.kill, killed_at) {
        bail!(
            "the run {} ended before {} rounds were checkpointed, so nobody was killed",
            out.display(),
            kill.after_rounds
        );
    }
    let log = out.join("exchange.log");
    let starts = timeline::round_starts(&timeline::events(&log)?, prepared.job.rounds)
        .with_context(|| format!("in {}", log.display()))?;
    let spawned = time::OffsetDateTime::from(spawned_at);
    let first_round_seconds = (starts[0] - spawned).as_seconds_f64();
    let period_ms = starts
        .windows(2)
        .map(|w| (w[1] - w[0]).as_seconds_f64() * 1e3)
        .collect();
    Ok(RunResult {
        round_ms: summary.rounds.iter().map(|r| r.millis).collect(),
        ready_seconds,
        first_round_seconds,
        period_ms,
        coordinator_kib: peaks[0],
        node_kib: peaks[1..].to_vec(),
        coordinator_cpu: cpu[0],
        node_cpu: cpu[1..].to_vec(),
        wall_seconds,
        contributors: summary.rounds.iter().map(|r| r.contributors).collect(),
        killed: match (killed_at, victim) {
            (Some(at_seconds), Some(i)) => {
                let member = processes.0[i].0.clone();
                let log = out.join(format!("{member}.exchange.log"));
                Some(Killed {
                    last_instruction: timeline::events(&log)
                        .ok()
                        .and_then(|events| timeline::last_instruction(&events)),
                    member,
                    at_seconds,
                })
            }
            _ => None,
        },
        dir: out,
    })
}

/// The `address` of a ready file, `{"address": "127.0.0.1:PORT"}`; `None`
/// while the file is still incomplete.
fn ready_address(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Ready {
        address: String,
    }
    serde_json::from_str::<Ready>(text).ok().map(|r| r.address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_file_says_what_the_bench_measures() -> anyhow::Result<()> {
        let job = Job {
            nodes: 2,
            features: 3,
            rounds: 20,
        };
        let members = ["a".to_owned(), "b".to_owned()];
        let file: toml::Table = task_file(job, &members, TaskOptions::default()).parse()?;
        let get = |section: &str, key: &str| {
            file.get(section)
                .and_then(|s| s.get(key))
                .map(ToString::to_string)
        };
        assert_eq!(get("task", "members").as_deref(), Some(r#"["a", "b"]"#));
        assert_eq!(
            get("task", "features").as_deref(),
            Some(r#"["f1", "f2", "f3"]"#)
        );
        assert_eq!(get("training", "algorithm").as_deref(), Some(r#""fedavg""#));
        assert_eq!(get("training", "rounds").as_deref(), Some("20"));
        assert_eq!(get("evaluation", "every_rounds").as_deref(), Some("0"));
        assert_eq!(get("evaluation", "baselines").as_deref(), Some("false"));
        assert_eq!(get("training", "quorum"), None);
        assert_eq!(get("timeouts", "step_seconds").as_deref(), Some("120"));
        assert!(file.get("privacy").is_none());
        Ok(())
    }

    #[test]
    fn task_file_with_secure_aggregation_and_a_quorum() -> anyhow::Result<()> {
        let job = Job {
            nodes: 3,
            features: 2,
            rounds: 5,
        };
        let members = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let options = TaskOptions {
            secure_aggregation: true,
            quorum: Some(2),
            step_seconds: 3,
        };
        let file: toml::Table = task_file(job, &members, options).parse()?;
        let get = |section: &str, key: &str| {
            file.get(section)
                .and_then(|s| s.get(key))
                .map(ToString::to_string)
        };
        assert_eq!(
            get("privacy", "secure_aggregation").as_deref(),
            Some("true")
        );
        assert_eq!(get("privacy", "threshold"), None);
        assert_eq!(get("training", "quorum").as_deref(), Some("2"));
        assert_eq!(
            get("training", "aggregation").as_deref(),
            Some(r#""fedavg""#)
        );
        assert_eq!(get("timeouts", "step_seconds").as_deref(), Some("3"));
        Ok(())
    }

    #[test]
    fn checkpoint_rounds() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("state.json");
        assert_eq!(checkpointed_rounds(&path), 0);
        fs::write(
            &path,
            r#"{"rounds": [{"round": 1}, {"round": 2}], "step": 9}"#,
        )?;
        assert_eq!(checkpointed_rounds(&path), 2);
        fs::write(&path, r#"{"rounds": [{"round": 1}"#)?;
        assert_eq!(checkpointed_rounds(&path), 0);
        Ok(())
    }

    #[test]
    fn ready_file_address() {
        assert_eq!(
            ready_address("{\"address\": \"127.0.0.1:4000\"}").as_deref(),
            Some("127.0.0.1:4000")
        );
        assert_eq!(ready_address("{\"addr"), None);
    }
}
