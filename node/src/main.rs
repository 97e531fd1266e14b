//! `node`: the hospital's side of medfed.

// The doc comments below are the command-line help, where an example URL
// is text for a terminal, not a link.
#![allow(rustdoc::bare_urls)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use medfed_node::config::{AuditKeySource, NodeFile, RunFlags, Settings};
use medfed_node::import::KeySource;

/// The medfed node: keeps a hospital's records in an encrypted vault and
/// takes part in federated training without sending them anywhere.
#[derive(Parser)]
#[command(
    name = "node",
    version,
    about,
    after_help = "Exit status: 0 success, 2 usage, 3 configuration (node file, missing \
                  setting, no privacy budget for a DP task), 4 data (CSV, vault, keys, certificates, model files; a vault \
                  that cannot serve the task, after telling the coordinator), 5 the \
                  coordinator could not be reached or refused the node, 7 this hospital's \
                  policy refused the task or a step (after telling the coordinator), 1 \
                  anything else."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import a CSV (header row, numeric columns, empty = missing) into an encrypted vault.
    ///
    /// Each bad cell is reported with the file, line and column, never with its content.
    /// Afterwards each column that looks like a record identifier (by its name, or by
    /// integer values distinct in nearly every row) is named, with the reason.
    ///
    /// Example: node import --csv records.csv --vault site.vault --vault-key-file vault.key --create-key --target target
    Import {
        /// The CSV file to import, e.g. records.csv.
        #[arg(long, value_name = "FILE")]
        csv: PathBuf,
        /// The vault file to write (replaced atomically if it exists), e.g. site.vault.
        #[arg(long, value_name = "FILE")]
        vault: PathBuf,
        /// The vault key file, e.g. vault.key; without it the key is read from
        /// MEDFED_VAULT_KEY.
        #[arg(long = "vault-key-file", alias = "key-file", value_name = "FILE")]
        vault_key_file: Option<PathBuf>,
        /// Create the vault key file (mode 0600) if it does not exist.
        #[arg(long)]
        create_key: bool,
        /// A column that must be present, e.g. the label: --target target.
        #[arg(long, value_name = "COLUMN")]
        target: Option<String>,
        /// Import only these columns (comma-separated), e.g. --columns age,chol,target.
        #[arg(long, value_delimiter = ',', value_name = "COLUMNS")]
        columns: Option<Vec<String>>,
        /// A cell text that means "missing" besides the empty field, e.g. --missing '?' (repeatable).
        #[arg(long = "missing", value_name = "TEXT")]
        missing_tokens: Vec<String>,
    },
    /// Join the coordinator's task and train on the vault's rows.
    ///
    /// Settings come from a node file (--config) and from flags; a flag given on
    /// the command line overrides the file. The vault key and the audit key come
    /// from their flag, else from MEDFED_VAULT_KEY / MEDFED_AUDIT_KEY, else from
    /// the file. Relative paths in the file are relative to the file's folder.
    ///
    /// Example: node run --config node.toml
    ///
    /// Example: node run --coordinator https://fl.example.org:7443 --server-name fl.example.org
    /// --ca ca.pem --cert my-hospital.pem --key my-hospital.key --signing-key my-hospital.sign.key
    /// --vault site.vault --vault-key-file vault.key --audit-key-file audit.key
    Run(Box<RunArgs>),
    /// Check a node file without starting anything.
    ///
    /// No connection is made and the vault is not decrypted. Every file the node
    /// file names is opened and parsed (certificates and keys as PEM, the vault's
    /// header); only public facts are printed (identities, key fingerprints).
    ///
    /// Example: node config check node.toml
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Score a CSV with a published model and write one prediction per row.
    ///
    /// The CSV needs the model's feature columns (others are ignored); missing
    /// values are handled as in training. Writes `row,probability` (logistic)
    /// or `row,prediction` (linear), row 1 being the first data row.
    ///
    /// Example: node predict --model run/model.json --csv new-patients.csv --out risk.csv
    Predict {
        /// The model file (the coordinator's model.json), e.g. run/model.json.
        #[arg(long, value_name = "FILE")]
        model: PathBuf,
        /// The rows to score, e.g. new-patients.csv.
        #[arg(long, value_name = "FILE")]
        csv: PathBuf,
        /// Where to write the predictions (replaced atomically), e.g. risk.csv.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Review or approve the coordinator's task before taking part.
    ///
    /// The task comes from the coordinator (its Describe call joins nothing);
    /// the vault is decrypted in memory to check the task against this site's
    /// rows; nothing is sent.
    ///
    /// Example: node task review --config node.toml
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Inspect a published model.
    ///
    /// Example: node model show --model run/model.json
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check a node file: keys, values, and every file it names.
    ///
    /// The file must hold everything `node run --config FILE` needs; the vault
    /// key and the audit key may come from MEDFED_VAULT_KEY and MEDFED_AUDIT_KEY
    /// instead. Exit status 3 when anything is wrong.
    ///
    /// Example: node config check /etc/medfed/node.toml
    Check {
        /// The node file (TOML), e.g. node.toml; see examples/heart/node.toml.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum TaskCommand {
    /// Show what the task would compute from this hospital's rows, every
    /// rule of `[policy]` with its verdict, and the task's SHA-256. Exit
    /// status 7 when the policy would refuse it.
    ///
    /// Example: node task review --config node.toml
    Review {
        /// The node file (TOML), e.g. node.toml.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Record the task's SHA-256 in the `[policy] approved_tasks` file, so
    /// the node takes part in this task and refuses any other description.
    ///
    /// Example: node task approve --config node.toml --sha256 3f2a...
    Approve {
        /// The node file (TOML), e.g. node.toml.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The SHA-256 `node task review` printed: the task is approved only
        /// if it is still the one reviewed.
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
    },
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Print the coefficients with their design-column names, on the
    /// preprocessed scale and in original units (odds ratios for logistic
    /// models).
    ///
    /// Example: node model show --model run/model.json
    Show {
        /// The model file (the coordinator's model.json), e.g. run/model.json.
        #[arg(long, value_name = "FILE")]
        model: PathBuf,
    },
}

/// `node run` flags. Without --config, the ones marked required below must
/// be given; with it, each flag overrides the file's value.
#[derive(Args)]
struct RunArgs {
    /// Node file (TOML) with the settings below, e.g. node.toml (see
    /// examples/heart/node.toml); a flag given here overrides its value.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Coordinator address, e.g. https://fl.example.org:7443 (file: `[coordinator] address`).
    #[arg(long, value_name = "URL", required_unless_present = "config")]
    coordinator: Option<String>,
    /// Name on the coordinator's certificate, e.g. fl.example.org (default:
    /// localhost; file: `[coordinator] server_name`).
    #[arg(long, value_name = "NAME")]
    server_name: Option<String>,
    /// Consortium CA certificate, e.g. pki/ca.pem (file: `[tls] ca`).
    #[arg(long, value_name = "FILE", required_unless_present = "config")]
    ca: Option<PathBuf>,
    /// This hospital's certificate, e.g. pki/my-hospital.pem (file: `[tls] cert`).
    #[arg(long, value_name = "FILE", required_unless_present = "config")]
    cert: Option<PathBuf>,
    /// This hospital's TLS private key, e.g. pki/my-hospital.key (file: `[tls] key`).
    #[arg(long, value_name = "FILE", required_unless_present = "config")]
    key: Option<PathBuf>,
    /// This hospital's Ed25519 signing key from `medfed-certs request`, e.g.
    /// pki/my-hospital.sign.key (file: `[tls] signing_key`).
    #[arg(long, value_name = "FILE", required_unless_present = "config")]
    signing_key: Option<PathBuf>,
    /// The encrypted vault, e.g. site.vault (file: `[vault] path`).
    #[arg(long, value_name = "FILE", required_unless_present = "config")]
    vault: Option<PathBuf>,
    /// The vault key file, e.g. vault.key; else MEDFED_VAULT_KEY, else the
    /// file's `[vault] key_file`.
    #[arg(long = "vault-key-file", alias = "key-file", value_name = "FILE")]
    vault_key_file: Option<PathBuf>,
    /// The exchange log of everything sent and received (default: exchange.log
    /// beside the vault; file: `[audit] log`).
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Audit key file that encrypts the exchange log's payloads (made by
    /// `medfed-audit keygen --audit-key-file FILE`); else MEDFED_AUDIT_KEY,
    /// else the file's `[audit] key_file`.
    #[arg(long, value_name = "FILE")]
    audit_key_file: Option<PathBuf>,
    /// Join only this task id, e.g. heart-disease-demo (file: `[coordinator] task_id`).
    #[arg(long, value_name = "ID")]
    task_id: Option<String>,
    /// Seconds to keep trying to reach the coordinator, e.g. 60 (the default;
    /// file: `[coordinator] connect_timeout_seconds`).
    #[arg(long, value_name = "SECONDS")]
    connect_timeout: Option<u64>,
    /// This site's privacy budget ε for DP tasks, e.g. 1.0 (file: `[privacy]
    /// epsilon`); with --dp-delta. Without a budget the node takes part in
    /// no DP task: it tells the coordinator so and exits with status 3.
    #[arg(long, value_name = "EPSILON")]
    dp_epsilon: Option<f64>,
    /// The δ of the privacy budget, e.g. 1e-5 (file: `[privacy] delta`).
    #[arg(long, value_name = "DELTA")]
    dp_delta: Option<f64>,
    /// DANGER, robustness tests only: scale every model update sent by this
    /// factor, acting as a hostile member.
    #[arg(long, hide = true, value_name = "FACTOR")]
    danger_scale_updates: Option<f64>,
}

/// Exit codes, the same for every medfed tool (README, "Exit codes"). 0 is
/// success and 2 (usage) is clap's own.
#[derive(Clone, Copy)]
enum Exit {
    Unexpected = 1,
    Config = 3,
    Data = 4,
    Peer = 5,
    Refused = 7,
}

/// The exit code for `error`: the first cause in its chain that tells.
fn exit_code(error: &anyhow::Error) -> Exit {
    use medfed_audit::AuditError;
    use medfed_vault::VaultError;
    for cause in error.chain() {
        if let Some(refused) = cause.downcast_ref::<medfed_node::policy::Refused>() {
            return if refused.is_data_reason() {
                Exit::Data
            } else {
                Exit::Refused
            };
        }
        if cause.is::<medfed_node::config::NodeConfigError>()
            || cause.is::<medfed_node::privacy::NoBudget>()
            || matches!(
                cause.downcast_ref::<VaultError>(),
                Some(VaultError::KeyEnvUnset { .. })
            )
            || matches!(
                cause.downcast_ref::<AuditError>(),
                Some(AuditError::AuditKeyEnvUnset { .. })
            )
        {
            return Exit::Config;
        }
        if cause.is::<medfed_node::session::PeerError>() {
            return Exit::Peer;
        }
        if cause.is::<VaultError>()
            || cause.is::<medfed_node::data::DataError>()
            || cause.is::<medfed_tls::TlsError>()
            || cause.is::<AuditError>()
            || cause.is::<medfed_model::ModelError>()
        {
            return Exit::Data;
        }
    }
    Exit::Unexpected
}

/// Logs go to standard error: the level from `MEDFED_LOG` (e.g. `debug`, or
/// `medfed_tls=debug,info`; default `warn`), one JSON object per line when
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

/// Whether an environment variable is set (for the secrets' precedence).
fn env_is_set(var: &str) -> bool {
    std::env::var_os(var).is_some()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging("warn");
    let result = match cli.command {
        Command::Predict { model, csv, out } => (|| {
            let model = medfed_node::model_file::ModelFile::load(&model)?;
            let rows = medfed_node::model_file::predict_csv(&model, &csv, &out)?;
            println!(
                "scored {rows} rows of {} into {}",
                csv.display(),
                out.display()
            );
            Ok(())
        })(),
        Command::Model {
            command: ModelCommand::Show { model },
        } => medfed_node::model_file::ModelFile::load(&model).map(|m| print!("{}", m.render())),
        Command::Import {
            csv,
            vault,
            vault_key_file,
            create_key,
            target,
            columns,
            missing_tokens,
        } => (|| {
            let key = KeySource::from_flag(vault_key_file).load(create_key)?;
            let options = medfed_vault::ImportOptions {
                columns,
                required: target.into_iter().collect(),
                missing_tokens,
                ..Default::default()
            };
            let imported = medfed_node::import::import(&csv, &vault, &key, &options)?;
            println!(
                "imported {} rows x {} columns from {} into {} (key {})",
                imported.table.n_rows(),
                imported.table.n_columns(),
                csv.display(),
                vault.display(),
                key.fingerprint()
            );
            for line in imported.identifier_lines() {
                println!("{line}");
            }
            Ok(())
        })(),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => (|| {
            let node_file = NodeFile::load(&file)?;
            let report = medfed_node::config::check(&node_file, &env_is_set)?;
            print!("{}", report.render());
            if let Some(problem) = report.problem() {
                return Err(problem.into());
            }
            println!(
                "{}: valid; `node run --config {}` can start",
                file.display(),
                file.display()
            );
            Ok(())
        })(),
        Command::Run(args) => run(*args),
        Command::Task { command } => task(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error: anyhow::Error = error;
            eprintln!("node: error: {error:#}");
            ExitCode::from(exit_code(&error) as u8)
        }
    }
}

/// `node task review` and `node task approve`.
fn task(command: TaskCommand) -> anyhow::Result<()> {
    let (config, sha256) = match &command {
        TaskCommand::Review { config } => (config, None),
        TaskCommand::Approve { config, sha256 } => (config, sha256.as_deref()),
    };
    let file = NodeFile::load(config)?;
    let settings = Settings::resolve(RunFlags::default(), Some(&file), &env_is_set)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let review = runtime.block_on(medfed_node::review::review(&settings))?;
    print!("{}", review.render());
    let verdict = review.check.result();
    if matches!(command, TaskCommand::Review { .. }) {
        return verdict.map_err(Into::into);
    }
    verdict?;
    let Some(path) = settings.policy.approved_tasks.as_deref() else {
        anyhow::bail!(
            "{}: set `approved_tasks` in [policy] (the file approved task hashes are kept in) \
             before approving a task",
            config.display()
        );
    };
    if let Some(reviewed) = sha256
        && !reviewed.eq_ignore_ascii_case(&review.check.sha256)
    {
        anyhow::bail!(
            "the coordinator's task is no longer the one reviewed: SHA-256 {} now, {reviewed} \
             reviewed; review it again",
            review.check.sha256
        );
    }
    let mut approved = medfed_node::policy::ApprovedTasks::load(path)?;
    approved.approve(&review.check.sha256, &review.task.task_id)?;
    println!(
        "approved task {} (SHA-256 {}) in {}",
        review.task.task_id,
        review.check.sha256,
        path.display()
    );
    Ok(())
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let file = args.config.as_deref().map(NodeFile::load).transpose()?;
    let flags = RunFlags {
        coordinator: args.coordinator,
        server_name: args.server_name,
        ca: args.ca,
        cert: args.cert,
        key: args.key,
        signing_key: args.signing_key,
        audit_log: args.audit_log,
        audit_key_file: args.audit_key_file,
        vault: args.vault,
        vault_key_file: args.vault_key_file,
        task_id: args.task_id,
        connect_timeout: args.connect_timeout.map(Duration::from_secs),
        dp_epsilon: args.dp_epsilon,
        dp_delta: args.dp_delta,
    };
    let settings = Settings::resolve(flags, file.as_ref(), &env_is_set)?;
    let vault_key = settings.vault_key.load(false)?;
    let options = medfed_node::client::RunOptions {
        coordinator: settings.coordinator,
        server_name: settings.server_name,
        ca: settings.ca,
        cert: settings.cert,
        key: settings.key,
        signing_key: settings.signing_key,
        audit_log: settings.audit_log,
        // `None` makes the client read MEDFED_AUDIT_KEY, which
        // `Settings::resolve` chose only when it is set.
        audit_key_file: match settings.audit_key {
            AuditKeySource::File(path) => Some(path),
            AuditKeySource::Env => None,
        },
        vault: settings.vault,
        vault_key,
        task_id: settings.task_id,
        connect_timeout: settings.connect_timeout,
        privacy_budget: settings.privacy_budget,
        danger_update_scale: args.danger_scale_updates,
        policy: settings.policy,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(medfed_node::client::run(options))?;
    Ok(())
}
