//! `node`: the hospital's side of medfed.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use medfed_node::import::KeySource;

/// The medfed node: keeps a hospital's records in an encrypted vault and
/// takes part in federated training without sending them anywhere.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum ModelCommand {
    /// Print the coefficients with their design-column names, on the
    /// preprocessed scale and in original units (odds ratios for logistic
    /// models).
    ///
    /// Example: node model show --model run/model.json
    Show {
        /// The model file (the coordinator's model.json).
        #[arg(long)]
        model: PathBuf,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Score a CSV with a published model and write one prediction per row.
    ///
    /// The CSV needs the model's feature columns (others are ignored); missing
    /// values are handled as in training. Writes `row,probability` (logistic)
    /// or `row,prediction` (linear), row 1 being the first data row.
    /// Example: node predict --model run/model.json --csv new-patients.csv --out risk.csv
    Predict {
        /// The model file (the coordinator's model.json).
        #[arg(long)]
        model: PathBuf,
        /// The rows to score.
        #[arg(long)]
        csv: PathBuf,
        /// Where to write the predictions (replaced atomically).
        #[arg(long)]
        out: PathBuf,
    },
    /// Inspect a published model.
    Model {
        #[command(subcommand)]
        command: ModelCommand,
    },
    /// Import a CSV (header row, numeric columns, empty = missing) into an encrypted vault.
    ///
    /// Example: node import --csv records.csv --vault site.vault --key-file site.key --create-key --target target
    Import {
        /// The CSV file to import.
        #[arg(long)]
        csv: PathBuf,
        /// The vault file to write (replaced atomically if it exists).
        #[arg(long)]
        vault: PathBuf,
        /// The vault key file; without it the key is read from MEDFED_VAULT_KEY.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Create the key file (mode 0600) if it does not exist.
        #[arg(long)]
        create_key: bool,
        /// A column that must be present, e.g. the label: --target target.
        #[arg(long)]
        target: Option<String>,
        /// Import only these columns (comma-separated), e.g. --columns age,chol,target.
        #[arg(long, value_delimiter = ',')]
        columns: Option<Vec<String>>,
        /// A cell text that means "missing" besides the empty field, e.g. --missing '?' (repeatable).
        #[arg(long = "missing")]
        missing_tokens: Vec<String>,
    },
    /// Join the coordinator's task and train on the vault's rows.
    ///
    /// Example: node run --coordinator https://127.0.0.1:7443 --vault site.vault --key-file site.key
    ///   --ca ca.pem --cert site.pem --key site.key.pem
    Run {
        /// Coordinator address, e.g. https://127.0.0.1:7443.
        #[arg(long)]
        coordinator: String,
        /// Name on the coordinator's certificate, e.g. localhost.
        #[arg(long, default_value = "localhost")]
        server_name: String,
        /// Consortium CA certificate.
        #[arg(long)]
        ca: PathBuf,
        /// This hospital's certificate.
        #[arg(long)]
        cert: PathBuf,
        /// This hospital's private key (TLS).
        #[arg(long)]
        key: PathBuf,
        /// This hospital's Ed25519 signing key (NAME.sign.key from `medfed-certs request`).
        #[arg(long)]
        signing_key: PathBuf,
        /// The exchange log of everything sent and received (default: exchange.log
        /// beside the vault).
        #[arg(long)]
        audit_log: Option<PathBuf>,
        /// Audit key file that encrypts the exchange log's payloads (made by
        /// `medfed-audit keygen --audit-key FILE`); without it the key is read from
        /// MEDFED_AUDIT_KEY.
        #[arg(long)]
        audit_key_file: Option<PathBuf>,
        /// The encrypted vault.
        #[arg(long)]
        vault: PathBuf,
        /// The vault key file; without it the key is read from MEDFED_VAULT_KEY.
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// Join only this task id.
        #[arg(long)]
        task_id: Option<String>,
        /// Seconds to keep trying to reach the coordinator.
        #[arg(long, default_value_t = 60)]
        connect_timeout: u64,
        /// DANGER, robustness tests only: scale every model update sent by this
        /// factor, acting as a hostile member.
        #[arg(long, hide = true, value_name = "FACTOR")]
        danger_scale_updates: Option<f64>,
    },
}

/// Exit codes: 0 success, 2 usage (from clap), 3 configuration, 4 data
/// (CSV, vault, keys, certificates, model files), 5 network or peer
/// (coordinator unreachable, refused, handshake failed), 1 anything else.
fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.is::<medfed_node::client::PeerError>() {
            return 5;
        }
        if cause.is::<medfed_vault::VaultError>()
            || cause.is::<medfed_node::data::DataError>()
            || cause.is::<medfed_tls::TlsError>()
            || cause.is::<medfed_audit::AuditError>()
            || cause.is::<medfed_model::ModelError>()
        {
            return 4;
        }
    }
    1
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
            key_file,
            create_key,
            target,
            columns,
            missing_tokens,
        } => (|| {
            let key = KeySource::from_flag(key_file).load(create_key)?;
            let options = medfed_vault::ImportOptions {
                columns,
                required: target.into_iter().collect(),
                missing_tokens,
                ..Default::default()
            };
            let table = medfed_node::import::import(&csv, &vault, &key, &options)?;
            println!(
                "imported {} rows x {} columns from {} into {} (key {})",
                table.n_rows(),
                table.n_columns(),
                csv.display(),
                vault.display(),
                key.fingerprint()
            );
            Ok(())
        })(),
        Command::Run {
            coordinator,
            server_name,
            ca,
            cert,
            key,
            signing_key,
            audit_log,
            audit_key_file,
            vault,
            key_file,
            task_id,
            connect_timeout,
            danger_scale_updates,
        } => (|| {
            let vault_key = KeySource::from_flag(key_file).load(false)?;
            let audit_log = audit_log.unwrap_or_else(|| {
                vault
                    .parent()
                    .unwrap_or(std::path::Path::new("."))
                    .join("exchange.log")
            });
            let options = medfed_node::client::RunOptions {
                coordinator,
                server_name,
                ca,
                cert,
                key,
                signing_key,
                audit_log,
                audit_key_file,
                vault,
                vault_key,
                task_id,
                connect_timeout: Duration::from_secs(connect_timeout),
                danger_update_scale: danger_scale_updates,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(medfed_node::client::run(options))?;
            Ok(())
        })(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let error: anyhow::Error = error;
            eprintln!("node: error: {error:#}");
            ExitCode::from(exit_code(&error))
        }
    }
}
