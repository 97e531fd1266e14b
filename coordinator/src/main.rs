//! `coordinator`: the consortium operator's server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use medfed_coordinator::config::TaskConfig;
use medfed_coordinator::exchange::LogSync;

/// The medfed coordinator: runs a federated training task over mutual TLS.
#[derive(Parser)]
#[command(
    name = "coordinator",
    version,
    about,
    after_help = "Exit status: 0 success, 2 usage, 3 configuration (the task file, a missing \
                  setting), 4 data (keys, certificates, logs), 5 the run failed with the \
                  members (too few answered, a member declined for its privacy budget, a secure \
                  sum could not be made, the solver refused their terms), 1 anything else."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// One value of this enum exists per process; boxing the larger variant would
// only make the match noisier.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run a task: wait for the members, train, evaluate, write model.json and summary.json.
    ///
    /// Started again with the same flags after a crash, it resumes from the last
    /// completed round (state.json in --out).
    ///
    /// Example: coordinator run --task task.toml --listen 0.0.0.0:7443 --ca ca.pem
    /// --cert coordinator.pem --key coordinator.key --signing-key coordinator.sign.key
    /// --audit-key-file audit.key --out run/
    Run {
        /// The task file (TOML), e.g. examples/heart/task.toml.
        #[arg(long, value_name = "FILE")]
        task: PathBuf,
        /// Address to listen on, e.g. 0.0.0.0:7443 (port 0 picks a free port).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7443")]
        listen: SocketAddr,
        /// Consortium CA certificate, e.g. pki/coordinator/ca.pem.
        #[arg(long, value_name = "FILE")]
        ca: PathBuf,
        /// Coordinator certificate, e.g. pki/coordinator/coordinator.pem.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// Coordinator TLS private key, e.g. pki/coordinator/coordinator.key.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Folder for model.json, summary.json and the exchange log, e.g. run/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Write {"address": "..."} here once listening, e.g. run/ready.json.
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
        /// The coordinator's Ed25519 signing key (certified in --cert), e.g.
        /// pki/coordinator/coordinator.sign.key; it signs the exchange log.
        #[arg(long, value_name = "FILE")]
        signing_key: PathBuf,
        /// Audit key file that encrypts the exchange log's payloads, e.g. audit.key
        /// (made by `medfed-audit keygen --audit-key-file FILE`); without it the key
        /// is read from MEDFED_AUDIT_KEY.
        #[arg(long, value_name = "FILE")]
        audit_key_file: Option<PathBuf>,
        /// The exchange log, e.g. run/exchange.log (default: exchange.log in --out).
        #[arg(long, value_name = "FILE")]
        audit_log: Option<PathBuf>,
        /// Flush the exchange log to disk every N entries instead of after each
        /// one, e.g. 64 (faster; a crash may lose the last N-1 entries).
        #[arg(long, value_name = "N", conflicts_with = "audit_sync_every_step")]
        audit_sync_every: Option<std::num::NonZeroU32>,
        /// Flush the exchange log to disk once per step (each round, the statistics, the
        /// evaluation), when the step closes and before its answers are used, instead of
        /// after each entry: one fsync per round instead of two per member; a crash can
        /// lose only the open step's entries, and that step is redone on restart.
        #[arg(long)]
        audit_sync_every_step: bool,
        /// Serve Prometheus metrics at http://ADDR/metrics while the task runs, e.g.
        /// 127.0.0.1:9464 (loopback only; port 0 picks a free port, written to --ready-file).
        #[arg(long, value_name = "ADDR", value_parser = loopback_address)]
        metrics_listen: Option<std::net::SocketAddr>,
    },
    /// Check files without starting anything.
    ///
    /// Example: coordinator config check task.toml
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The former spelling of `config check FILE`, kept for scripts.
    #[command(hide = true)]
    Check {
        /// The task file (TOML).
        #[arg(long, value_name = "FILE")]
        task: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a task file and print what it defines: task id, members, model,
    /// features, algorithm, rounds.
    ///
    /// Every key and value is checked as `coordinator run` would, without
    /// listening or reading any key. Exit status 3 when the file is invalid; the
    /// error names the file, the line and the key.
    ///
    /// Example: coordinator config check examples/heart/task.toml
    Check {
        /// The task file (TOML), e.g. task.toml; see examples/heart/task.toml.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

/// Exit codes, the same for every medfed tool (README, "Exit codes"). 0 is
/// success and 2 (usage) is clap's own.
#[derive(Clone, Copy)]
enum Exit {
    Unexpected = 1,
    Config = 3,
    Data = 4,
    Peer = 5,
}

/// The exit code for `error`: the first cause in its chain that tells.
fn exit_code(error: &anyhow::Error) -> Exit {
    use medfed_audit::AuditError;
    for cause in error.chain() {
        if cause.is::<medfed_coordinator::config::ConfigError>()
            || matches!(
                cause.downcast_ref::<AuditError>(),
                Some(AuditError::AuditKeyEnvUnset { .. })
            )
        {
            return Exit::Config;
        }
        if cause.is::<medfed_coordinator::run_error::RunError>() {
            return Exit::Peer;
        }
        if cause.is::<medfed_tls::TlsError>() || cause.is::<AuditError>() {
            return Exit::Data;
        }
    }
    Exit::Unexpected
}

/// `coordinator config check`: the file checked, then what it defines.
/// A `--metrics-listen` value: a socket address on the loopback interface
/// (refused as a usage error before anything starts).
fn loopback_address(value: &str) -> Result<SocketAddr, String> {
    let address: SocketAddr = value
        .parse()
        .map_err(|e| format!("{e}; expected e.g. 127.0.0.1:9464"))?;
    medfed_coordinator::metrics::check_address(address).map_err(|e| e.to_string())?;
    Ok(address)
}

fn check(task: &std::path::Path) -> anyhow::Result<()> {
    let config = TaskConfig::load(task)?;
    println!(
        "{}: task {} is valid ({} members, {} features, {} model, {} rounds)",
        task.display(),
        config.task.task_id,
        config.task.members.len(),
        config.task.features.len(),
        config.task.model,
        config.task.rounds
    );
    print!("{}", config.summary());
    Ok(())
}

/// Logs go to standard error: the level from `MEDFED_LOG` (e.g. `debug`, or
/// `medfed_tls=debug,info`; default `info`), one JSON object per line when
/// `MEDFED_LOG_FORMAT=json` (for log shippers), else plain text (coloured
/// on a terminal).
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MEDFED_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    if std::env::var("MEDFED_LOG_FORMAT").as_deref() == Ok("json") {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init();
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging("info");
    let result = match cli.command {
        Command::Config {
            command: ConfigCommand::Check { file },
        } => check(&file),
        Command::Check { task } => check(&task),
        Command::Run {
            task,
            listen,
            ca,
            cert,
            key,
            out,
            ready_file,
            signing_key,
            audit_key_file,
            audit_log,
            audit_sync_every,
            audit_sync_every_step,
            metrics_listen,
        } => (|| {
            let audit_key = match &audit_key_file {
                Some(path) => medfed_audit::AuditKey::from_file(path)?,
                None => medfed_audit::AuditKey::from_env(medfed_audit::AUDIT_KEY_ENV)?,
            };
            let options = medfed_coordinator::RunOptions {
                task,
                listen,
                ca,
                cert,
                key,
                out_dir: out,
                ready_file,
                poll_window: Duration::from_secs(20),
                signing_key,
                audit_key,
                audit_log,
                sync_policy: match (audit_sync_every, audit_sync_every_step) {
                    (Some(n), _) => LogSync::Every(n),
                    (None, true) => LogSync::Step,
                    (None, false) => LogSync::Entry,
                },
                metrics_listen,
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|runtime| {
                    runtime.block_on(async {
                        medfed_coordinator::run(options, async {
                            let _ = tokio::signal::ctrl_c().await;
                        })
                        .await
                        .map(|_| ())
                    })
                })
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("coordinator: error: {error:#}");
            ExitCode::from(exit_code(&error) as u8)
        }
    }
}
