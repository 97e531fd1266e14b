//! Support for medfed's end-to-end tests: provisioning, vaults, and real
//! `coordinator` and `node` processes on 127.0.0.1 over mutual TLS.
//!
//! The tests start the workspace's own binaries. `cargo test --workspace`
//! builds them before any test runs (the `coordinator` and `node` packages
//! have integration tests of their own, which makes cargo build their
//! binaries); [`bin`] finds them next to the test executable.
//!
//! # Layout
//! This file: [`bin`] locates a binary, [`Federation`] describes a run
//! (sites, intruders, task) and [`Federation::run`] performs it in a
//! temporary folder, returning an [`Outcome`]. `pooled`: [`pooled_fit`], the
//! in-process pooled reference a federated model is compared with.
//! [`hostile`]: a hostile coordinator played in-process over mutual TLS, and
//! the hospital (a real `node` process) that faces it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod crafted;
pub mod hostile;
mod pooled;
pub use crafted::Flaw;
pub use pooled::{Pooled, Scored, pooled_fit};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Path of a workspace binary (`coordinator`, `node`, `medfed-certs`).
///
/// # Panics
/// When the binary has not been built (run the tests with
/// `cargo test --workspace`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built; run the tests with `cargo test --workspace`",
        path.display()
    );
    path
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bundled heart-disease CSV of `site`.
pub fn heart_csv(site: &str) -> PathBuf {
    repo_root().join("data/heart").join(format!("{site}.csv"))
}

/// The bundled lung-cancer CSV of institution `site` (e.g. `"inst01"`, one of
/// [`lung_sites`]).
pub fn lung_csv(site: &str) -> PathBuf {
    repo_root().join("data/lung").join(format!("{site}.csv"))
}

/// The institutions of the bundled lung-cancer data (`inst01`, `inst02`,
/// ...), sorted: the stems of the CSV files in `data/lung`.
///
/// # Panics
/// When `data/lung` cannot be listed.
pub fn lung_sites() -> Vec<String> {
    let dir = repo_root().join("data/lung");
    let entries =
        fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut sites: Vec<String> = entries
        .map(|entry| entry.unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())))
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "csv"))
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    sites.sort();
    sites
}

/// Runs a command to completion, panicking with its output if it fails.
pub fn run_ok(command: &mut Command) -> String {
    let output = command.output().expect("spawn");
    assert!(
        output.status.success(),
        "{command:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A child process killed when dropped, so a failing test leaves nothing behind.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A node that should be refused.
#[derive(Clone, Debug)]
pub enum Intruder {
    /// A certificate with this (member!) name, issued by another CA.
    OtherCa(String),
    /// A certificate from the consortium CA whose name is not on the member list.
    NotMember(String),
    /// A certificate for this (member!) name from the consortium CA, but
    /// with a flaw (expired, not yet valid, server use only).
    Flawed(String, Flaw),
}

/// One hospital: its name (certificate CN) and its CSV.
#[derive(Clone, Debug)]
pub struct Site {
    /// Member identity.
    pub name: String,
    /// Records to import.
    pub csv: PathBuf,
    /// Extra `node run` flags for this site.
    pub node_args: Vec<String>,
}

/// A federation to run.
#[derive(Clone, Debug)]
pub struct Federation {
    /// The task file's text (its member list decides who is admitted).
    pub task_toml: String,
    /// Members that take part.
    pub sites: Vec<Site>,
    /// Nodes that try to take part and must be refused.
    pub intruders: Vec<Intruder>,
    /// Extra `node import` flags (e.g. `--target y`).
    pub import_args: Vec<String>,
    /// A node to kill mid-run and start again, if any.
    pub crash: Option<Crash>,
    /// Kill the coordinator mid-run and start it again, if set.
    pub coordinator_crash: Option<CoordinatorCrash>,
    /// Extra `coordinator run` flags.
    pub coordinator_args: Vec<String>,
    /// A node to pause (SIGSTOP) mid-run while the coordinator's metrics are
    /// scraped, if any.
    pub pause: Option<Pause>,
    /// Nodes to kill mid-run for good (never restarted).
    pub vanish: Vec<Vanish>,
    /// The body of every hospital's `[policy]` table (`None`: no node
    /// file, so every hospital runs with the default policy). Tests of the
    /// numerics on the heart data's small cells (a column present in two
    /// patients at a site) set the hospitals' policy here, in the open.
    pub node_policy: Option<String>,
}

/// Kill a node with SIGKILL once its output shows `after`, and leave it
/// dead, or start it again `restart_after` later.
#[derive(Clone, Debug)]
pub struct Vanish {
    /// The member to kill.
    pub node: String,
    /// Text in its standard output that triggers the kill.
    pub after: String,
    /// Start it again (same command) this long after the kill; `None`:
    /// never.
    pub restart_after: Option<Duration>,
}

/// Pause a node with SIGSTOP once its output shows `after`, wait `hold`,
/// scrape the coordinator's metrics endpoint (named in its ready file),
/// then let the node go on (SIGCONT).
#[derive(Clone, Debug)]
pub struct Pause {
    /// The member to pause.
    pub node: String,
    /// Text in its standard output that triggers the pause.
    pub after: String,
    /// How long to hold it before scraping.
    pub hold: Duration,
}

/// Kill the coordinator with SIGKILL once its output shows `after`, then
/// start it again with the same command (on the same address)
/// `restart_after` later.
#[derive(Clone, Debug)]
pub struct CoordinatorCrash {
    /// Text in its standard output that triggers the kill.
    pub after: String,
    /// Pause before the restart.
    pub restart_after: Duration,
}

/// Kill a node with SIGKILL once its output shows `after`, then start it
/// again with the same command `restart_after` later.
#[derive(Clone, Debug)]
pub struct Crash {
    /// The member to kill.
    pub node: String,
    /// Text in its standard output that triggers the kill.
    pub after: String,
    /// Pause before the restart.
    pub restart_after: Duration,
}

/// What a node process did.
#[derive(Debug)]
pub struct NodeRun {
    /// Its name.
    pub name: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Standard output of the run that was killed, when it crashed.
    pub killed_stdout: Option<String>,
}

/// What a run produced.
#[derive(Debug)]
pub struct Outcome {
    /// The run folder (kept until the outcome is dropped).
    pub dir: tempfile::TempDir,
    /// Coordinator exit status.
    pub coordinator: ExitStatus,
    /// Coordinator standard output (progress and final table).
    pub coordinator_stdout: String,
    /// Coordinator standard error (logs).
    pub coordinator_stderr: String,
    /// Standard output of the coordinator that was killed, when it was.
    pub coordinator_killed_stdout: Option<String>,
    /// `summary.json`, if written.
    pub summary: Option<serde_json::Value>,
    /// `model.json`, if written.
    pub model: Option<serde_json::Value>,
    /// Every node, members first.
    pub nodes: Vec<NodeRun>,
    /// The metrics scraped while a node was paused (see [`Pause`]).
    pub paused_metrics: Option<String>,
}

impl Outcome {
    /// The node run called `name`.
    ///
    /// # Panics
    /// When there is none.
    pub fn node(&self, name: &str) -> &NodeRun {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }
}

/// `coordinator run` on `task` in the run folder `out_dir` of the
/// provisioned folder `root`, with the consortium's keys, writing its
/// address to `out_dir/ready.json`.
fn coordinator_command(root: &Path, task: &Path, out_dir: &Path, listen: &str) -> Command {
    let pki = root.join("pki");
    let mut command = Command::new(bin("coordinator"));
    command
        .arg("run")
        .arg("--task")
        .arg(task)
        .args(["--listen", listen])
        .arg("--ca")
        .arg(pki.join("coordinator/ca.pem"))
        .arg("--cert")
        .arg(pki.join("coordinator/coordinator.pem"))
        .arg("--key")
        .arg(pki.join("coordinator/coordinator.key"))
        .arg("--signing-key")
        .arg(pki.join("coordinator/coordinator.sign.key"))
        .arg("--audit-key-file")
        .arg(root.join("coordinator-audit.key"))
        .arg("--out")
        .arg(out_dir)
        .arg("--ready-file")
        .arg(out_dir.join("ready.json"));
    command
}

/// Waits for a coordinator's ready file and returns its address and
/// metrics address.
///
/// # Panics
/// If the coordinator exits first (showing `err`) or is not ready in 30 s.
fn wait_ready(coordinator: &mut Guard, ready: &Path, err: &Path) -> (String, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = fs::read_to_string(ready)
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
        {
            return (
                v["address"].as_str().expect("address").to_owned(),
                v["metrics_address"].as_str().map(str::to_owned),
            );
        }
        if let Some(status) = coordinator.0.try_wait().expect("try_wait") {
            panic!(
                "coordinator exited early ({status}): {}",
                fs::read_to_string(err).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "coordinator never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `node run` against the coordinator at `address` for the site whose
/// vault, vault key and audit key are in `site_dir`, with the certificate
/// `cert` (its key and signing key beside it).
fn node_command(
    root: &Path,
    address: &str,
    site_dir: &Path,
    cert: &Path,
    connect_timeout_seconds: u32,
) -> Command {
    let key = cert.with_extension("key");
    let mut command = Command::new(bin("node"));
    command
        .arg("run")
        .arg("--coordinator")
        .arg(format!("https://{address}"))
        .args(["--server-name", "localhost", "--connect-timeout"])
        .arg(connect_timeout_seconds.to_string())
        .arg("--ca")
        .arg(root.join("pki/coordinator/ca.pem"))
        .arg("--cert")
        .arg(cert)
        .arg("--key")
        .arg(&key)
        .arg("--signing-key")
        .arg(key.with_extension("sign.key"))
        .arg("--vault")
        .arg(site_dir.join("records.vault"))
        .arg("--key-file")
        .arg(site_dir.join("vault.key"))
        .arg("--audit-key-file")
        .arg(site_dir.join("audit.key"));
    // The hospital's own policy, when the federation sets one.
    let node_file = site_dir.join("node.toml");
    if node_file.exists() {
        command.arg("--config").arg(node_file);
    }
    command
}

/// A second run in the folder of a finished one (see
/// [`Outcome::run_again`]).
#[derive(Debug)]
pub struct Rerun {
    /// Its run folder (`run-again/` beside the first run's).
    pub out_dir: PathBuf,
    /// Coordinator exit status.
    pub coordinator: ExitStatus,
    /// Coordinator standard error.
    pub coordinator_stderr: String,
    /// Every restarted site.
    pub nodes: Vec<NodeRun>,
}

impl Rerun {
    /// The node run called `name`.
    ///
    /// # Panics
    /// If there is none.
    pub fn node(&self, name: &str) -> &NodeRun {
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }
}

impl Outcome {
    /// A second task in this run's folder: a new coordinator with
    /// `task_toml` (output in `run-again/`), and each of `sites` restarted on
    /// its own vault, keys and exchange log with `args_of(site)` added. The
    /// nodes give up on the coordinator 5 s after it has gone.
    ///
    /// # Panics
    /// When a process cannot start or hangs past a generous timeout.
    pub fn run_again(
        &self,
        task_toml: &str,
        sites: &[&str],
        args_of: &dyn Fn(&str) -> Vec<String>,
    ) -> Rerun {
        let root = self.dir.path();
        let out_dir = root.join("run-again");
        fs::create_dir_all(&out_dir).expect("run folder");
        let task = root.join("task-again.toml");
        fs::write(&task, task_toml).expect("task file");
        let err = out_dir.join("coordinator.stderr");
        let mut coordinator = Guard(
            coordinator_command(root, &task, &out_dir, "127.0.0.1:0")
                .stdout(fs::File::create(out_dir.join("coordinator.stdout")).expect("stdout"))
                .stderr(fs::File::create(&err).expect("stderr"))
                .spawn()
                .expect("start coordinator"),
        );
        let (address, _) = wait_ready(&mut coordinator, &out_dir.join("ready.json"), &err);
        let mut nodes = Vec::new();
        for site in sites {
            let dir = root.join("sites").join(site);
            let cert = root.join("pki").join(site).join(format!("{site}.pem"));
            let out = dir.join("node-again.stdout");
            let node_err = dir.join("node-again.stderr");
            let child = Guard(
                node_command(root, &address, &dir, &cert, 5)
                    .args(args_of(site))
                    .stdout(fs::File::create(&out).expect("stdout"))
                    .stderr(fs::File::create(&node_err).expect("stderr"))
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("start node"),
            );
            nodes.push((site, child, out, node_err));
        }
        let timeout = Duration::from_secs(180);
        let coordinator_status = wait_with_timeout(&mut coordinator, timeout);
        let nodes = nodes
            .into_iter()
            .map(|(name, mut child, out, node_err)| NodeRun {
                name: (*name).to_owned(),
                status: wait_with_timeout(&mut child, timeout),
                stdout: fs::read_to_string(out).unwrap_or_default(),
                stderr: fs::read_to_string(node_err).unwrap_or_default(),
                killed_stdout: None,
            })
            .collect();
        Rerun {
            out_dir,
            coordinator: coordinator_status,
            coordinator_stderr: fs::read_to_string(&err).unwrap_or_default(),
            nodes,
        }
    }
}

fn wait_with_timeout(child: &mut Guard, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process did not finish within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Federation {
    /// Heart-disease sites by name.
    pub fn heart(sites: &[&str], task_toml: String) -> Federation {
        Federation {
            task_toml,
            sites: sites
                .iter()
                .map(|s| Site {
                    name: (*s).to_owned(),
                    csv: heart_csv(s),
                    node_args: Vec::new(),
                })
                .collect(),
            intruders: Vec::new(),
            import_args: vec!["--target".into(), "target".into()],
            crash: None,
            coordinator_crash: None,
            coordinator_args: Vec::new(),
            pause: None,
            vanish: Vec::new(),
            node_policy: None,
        }
    }

    /// Provisions, imports, starts everything, waits for the end.
    ///
    /// # Panics
    /// When a setup step fails or a process hangs past a generous timeout.
    pub fn run(&self) -> Outcome {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let pki = root.join("pki");
        let certs = bin("medfed-certs");
        let node = bin("node");

        // Provision members, and the not-member intruders from the same CA.
        let mut demo = Command::new(&certs);
        demo.arg("demo").arg("--out").arg(&pki);
        for site in &self.sites {
            demo.args(["--member", &site.name]);
        }
        for intruder in &self.intruders {
            if let Intruder::NotMember(name) = intruder {
                demo.args(["--member", name]);
            }
        }
        demo.args(["--san", "127.0.0.1", "--san", "localhost"]);
        run_ok(&mut demo);
        let rogue = root.join("rogue-pki");
        for intruder in &self.intruders {
            if let Intruder::OtherCa(name) = intruder {
                run_ok(
                    Command::new(&certs)
                        .arg("demo")
                        .arg("--out")
                        .arg(&rogue)
                        .args(["--member", name, "--san", "127.0.0.1"]),
                );
            }
        }

        let flawed = root.join("flawed-pki");
        for intruder in &self.intruders {
            if let Intruder::Flawed(name, flaw) = intruder {
                crafted::craft(&pki.join("ca"), &flawed.join(name), name, *flaw);
            }
        }

        // Every node, members and intruders, gets a vault of real records.
        struct Planned {
            name: String,
            cert: PathBuf,
            csv: PathBuf,
            args: Vec<String>,
        }
        let mut planned: Vec<Planned> = self
            .sites
            .iter()
            .map(|s| Planned {
                name: s.name.clone(),
                cert: pki.join(&s.name).join(format!("{}.pem", s.name)),
                csv: s.csv.clone(),
                args: s.node_args.clone(),
            })
            .collect();
        let intruder_csv = self.sites[0].csv.clone();
        for intruder in &self.intruders {
            let (name, base) = match intruder {
                Intruder::OtherCa(n) => (n.clone(), rogue.join(n)),
                Intruder::NotMember(n) => (n.clone(), pki.join(n)),
                Intruder::Flawed(n, _) => (n.clone(), flawed.join(n)),
            };
            planned.push(Planned {
                name: format!("intruder-{name}"),
                cert: base.join(format!("{name}.pem")),
                csv: intruder_csv.clone(),
                args: Vec::new(),
            });
        }
        for p in &planned {
            let site_dir = root.join("sites").join(&p.name);
            fs::create_dir_all(&site_dir).expect("site dir");
            run_ok(
                Command::new(&node)
                    .arg("import")
                    .arg("--csv")
                    .arg(&p.csv)
                    .arg("--vault")
                    .arg(site_dir.join("records.vault"))
                    .arg("--key-file")
                    .arg(site_dir.join("vault.key"))
                    .arg("--create-key")
                    .args(&self.import_args),
            );
            if let Some(policy) = &self.node_policy {
                fs::write(site_dir.join("node.toml"), format!("[policy]\n{policy}\n"))
                    .expect("node file");
            }
            // The hospital's privacy officer holds the key to its exchange log.
            run_ok(
                Command::new(bin("medfed-audit"))
                    .args(["keygen", "--audit-key"])
                    .arg(site_dir.join("audit.key")),
            );
        }
        // The consortium's auditor holds the key to the coordinator's log.
        let coordinator_audit_key = root.join("coordinator-audit.key");
        run_ok(
            Command::new(bin("medfed-audit"))
                .args(["keygen", "--audit-key"])
                .arg(&coordinator_audit_key),
        );

        let run_dir = root.join("run");
        fs::create_dir_all(&run_dir).expect("run dir");
        let task = root.join("task.toml");
        fs::write(&task, &self.task_toml).expect("task file");
        let ready = run_dir.join("ready.json");
        let coordinator_out = run_dir.join("coordinator.stdout");
        let coordinator_err = run_dir.join("coordinator.stderr");
        let spawn_coordinator = |listen: &str, out: &Path, err: &Path| {
            Guard(
                coordinator_command(root, &task, &run_dir, listen)
                    .args(&self.coordinator_args)
                    .stdout(fs::File::create(out).expect("stdout file"))
                    .stderr(fs::File::create(err).expect("stderr file"))
                    .spawn()
                    .expect("start coordinator"),
            )
        };
        let mut coordinator = spawn_coordinator("127.0.0.1:0", &coordinator_out, &coordinator_err);
        let (address, metrics_address) = wait_ready(&mut coordinator, &ready, &coordinator_err);

        let spawn_node = |p: &Planned, attempt: &str| {
            let site_dir = root.join("sites").join(&p.name);
            let out = site_dir.join(format!("node{attempt}.stdout"));
            let err = site_dir.join(format!("node{attempt}.stderr"));
            let child = Guard(
                node_command(root, &address, &site_dir, &p.cert, 20)
                    .args(&p.args)
                    .stdout(fs::File::create(&out).expect("stdout file"))
                    .stderr(fs::File::create(&err).expect("stderr file"))
                    .stdin(Stdio::null())
                    .spawn()
                    .expect("start node"),
            );
            (child, out, err)
        };
        // Intruders first, each to its refusal: a run of members can end
        // in well under a second, and an intruder that only reached a
        // coordinator already gone would show nothing about its refusal.
        let members = self.sites.len();
        let mut intruders = Vec::new();
        for p in &planned[members..] {
            let (mut child, out, err) = spawn_node(p, "");
            let deadline = Instant::now() + Duration::from_secs(60);
            while child.0.try_wait().expect("poll intruder").is_none() && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            intruders.push((p.name.clone(), child, out, err, None));
        }
        let mut children = Vec::new();
        for p in &planned[..members] {
            let (child, out, err) = spawn_node(p, "");
            children.push((p.name.clone(), child, out, err, None));
        }
        children.extend(intruders);

        let timeout = Duration::from_secs(180);
        if let Some(crash) = &self.crash {
            let index = children
                .iter()
                .position(|c| c.0 == crash.node)
                .unwrap_or_else(|| panic!("no node {} to crash", crash.node));
            let deadline = Instant::now() + timeout;
            loop {
                let seen = fs::read_to_string(&children[index].2).unwrap_or_default();
                if seen.contains(&crash.after) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} never printed {:?}",
                    crash.node,
                    crash.after
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            let victim = &mut children[index];
            // `Child::kill` is SIGKILL on Unix: no chance to clean up.
            victim.1.0.kill().expect("kill node");
            victim.1.0.wait().expect("reap node");
            let killed_stdout = fs::read_to_string(&victim.2).unwrap_or_default();
            std::thread::sleep(crash.restart_after);
            let (child, out, err) = spawn_node(&planned[index], ".restarted");
            *victim = (crash.node.clone(), child, out, err, Some(killed_stdout));
        }

        let mut vanishing: Vec<&Vanish> = self.vanish.iter().collect();
        let mut restarts: Vec<(Instant, usize)> = Vec::new();
        let deadline = Instant::now() + timeout;
        while !vanishing.is_empty() || !restarts.is_empty() {
            vanishing.retain(|v| {
                let index = children
                    .iter()
                    .position(|c| c.0 == v.node)
                    .unwrap_or_else(|| panic!("no node {} to kill", v.node));
                let child = &mut children[index];
                if fs::read_to_string(&child.2)
                    .unwrap_or_default()
                    .contains(&v.after)
                {
                    child.1.0.kill().expect("kill node");
                    child.1.0.wait().expect("reap node");
                    if let Some(after) = v.restart_after {
                        restarts.push((Instant::now() + after, index));
                    }
                    false
                } else {
                    true
                }
            });
            let now = Instant::now();
            for &(_, index) in restarts.iter().filter(|(at, _)| *at <= now) {
                let victim = &mut children[index];
                let killed_stdout = fs::read_to_string(&victim.2).unwrap_or_default();
                let (child, out, err) = spawn_node(&planned[index], ".restarted");
                *victim = (victim.0.clone(), child, out, err, Some(killed_stdout));
            }
            restarts.retain(|(at, _)| *at > now);
            assert!(
                Instant::now() < deadline,
                "nodes never printed what they were to vanish after: {vanishing:?}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }

        let mut paused_metrics = None;
        if let Some(pause) = &self.pause {
            let child = children
                .iter()
                .find(|c| c.0 == pause.node)
                .unwrap_or_else(|| panic!("no node {} to pause", pause.node));
            let deadline = Instant::now() + timeout;
            while !fs::read_to_string(&child.2)
                .unwrap_or_default()
                .contains(&pause.after)
            {
                assert!(
                    Instant::now() < deadline,
                    "{} never printed {:?}",
                    pause.node,
                    pause.after
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            let pid = child.1.0.id().to_string();
            run_ok(Command::new("kill").args(["-STOP", &pid]));
            std::thread::sleep(pause.hold);
            paused_metrics = metrics_address.as_deref().map(scrape_metrics);
            run_ok(Command::new("kill").args(["-CONT", &pid]));
        }

        let mut coordinator_killed_stdout = None;
        if let Some(crash) = &self.coordinator_crash {
            let deadline = Instant::now() + timeout;
            while !fs::read_to_string(&coordinator_out)
                .unwrap_or_default()
                .contains(&crash.after)
            {
                assert!(
                    Instant::now() < deadline,
                    "the coordinator never printed {:?}",
                    crash.after
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            coordinator.0.kill().expect("kill coordinator");
            coordinator.0.wait().expect("reap coordinator");
            coordinator_killed_stdout =
                Some(fs::read_to_string(&coordinator_out).unwrap_or_default());
            std::thread::sleep(crash.restart_after);
            // The same command, on the same address the nodes know.
            coordinator = spawn_coordinator(&address, &coordinator_out, &coordinator_err);
        }
        let coordinator_status = wait_with_timeout(&mut coordinator, timeout);
        let nodes = children
            .into_iter()
            .map(|(name, mut child, out, err, killed_stdout)| NodeRun {
                name,
                status: wait_with_timeout(&mut child, timeout),
                stdout: fs::read_to_string(out).unwrap_or_default(),
                stderr: fs::read_to_string(err).unwrap_or_default(),
                killed_stdout,
            })
            .collect();
        let read_json = |name: &str| {
            fs::read_to_string(run_dir.join(name))
                .ok()
                .map(|t| serde_json::from_str(&t).expect("valid JSON"))
        };
        Outcome {
            coordinator: coordinator_status,
            coordinator_stdout: fs::read_to_string(&coordinator_out).unwrap_or_default(),
            coordinator_stderr: fs::read_to_string(&coordinator_err).unwrap_or_default(),
            coordinator_killed_stdout,
            summary: read_json("summary.json"),
            model: read_json("model.json"),
            nodes,
            dir,
            paused_metrics,
        }
    }
}

/// Checks that the run summary lists exactly `stems` as SVG and PNG charts,
/// and that each file in `dir` is a real, non-trivial picture: a PNG with
/// its signature and a sensible size in its header, an SVG document with
/// drawn lines.
///
/// # Panics
/// When a chart is missing, listed wrongly or not a valid picture.
pub fn assert_charts(dir: &Path, summary: &serde_json::Value, stems: &[&str]) {
    let listed: Vec<&str> = summary["charts"]
        .as_array()
        .expect("charts in the summary")
        .iter()
        .map(|v| v.as_str().expect("chart file name"))
        .collect();
    let expected: Vec<String> = stems
        .iter()
        .flat_map(|s| [format!("{s}.svg"), format!("{s}.png")])
        .collect();
    assert_eq!(listed, expected, "charts listed in the summary");
    for stem in stems {
        let png = fs::read(dir.join(format!("{stem}.png"))).expect("PNG chart");
        assert!(png.len() > 10_000, "{stem}.png is only {} bytes", png.len());
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{stem}.png signature");
        assert_eq!(&png[12..16], b"IHDR", "{stem}.png header");
        let width = u32::from_be_bytes(png[16..20].try_into().expect("width"));
        let height = u32::from_be_bytes(png[20..24].try_into().expect("height"));
        assert!(
            (400..=4000).contains(&width) && (300..=4000).contains(&height),
            "{stem}.png is {width}x{height}"
        );
        let svg = fs::read_to_string(dir.join(format!("{stem}.svg"))).expect("SVG chart");
        assert!(svg.len() > 5_000, "{stem}.svg is only {} bytes", svg.len());
        assert!(
            svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
            "{stem}.svg"
        );
        assert!(
            svg.matches("<polyline").count() + svg.matches("<path").count() >= 2,
            "{stem}.svg draws nothing"
        );
    }
}

/// `GET /metrics` from `address` over plain HTTP: the body.
///
/// # Panics
/// When the endpoint does not answer 200.
pub fn scrape_metrics(address: &str) -> String {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(address).expect("connect to the metrics endpoint");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .expect("send request");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read reply");
    assert!(
        reply.starts_with("HTTP/1.0 200") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );
    reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default()
}

/// A synthetic cohort of `rows` patients in `dir/<name>.csv`: columns
/// `x1,x2,x3,y`, where the binary outcome `y` depends on `x1` and `x2` with
/// noise, and `x3` is noise with some values missing. Deterministic in
/// `seed`.
pub fn synthetic_csv(dir: &Path, name: &str, seed: u64, rows: usize) -> PathBuf {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(1);
    let mut next = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 11) as f64) / ((1u64 << 53) as f64)
    };
    let mut text = String::from("x1,x2,x3,y\n");
    for row in 0..rows {
        let (x1, x2, x3) = (next() * 10.0, next() * 5.0 - 2.5, next());
        let y = u8::from(x1 / 10.0 + x2 / 5.0 + 0.4 * next() > 0.8);
        let x3 = if row % 13 == 0 {
            String::new()
        } else {
            format!("{x3:.4}")
        };
        text.push_str(&format!("{x1:.4},{x2:.4},{x3},{y}\n"));
    }
    let path = dir.join(format!("{name}.csv"));
    fs::write(&path, text).expect("write csv");
    path
}

/// Every file below `dir`, recursively.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).expect("read_dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
