//! Where each setting of `node run` comes from: [`Settings::resolve`]
//! takes each from its flag, the environment (for the two secrets), the
//! node file or the default, in that order.

use std::path::{Path, PathBuf};
use std::time::Duration;

use medfed_audit::AUDIT_KEY_ENV;
use medfed_vault::KEY_ENV_VAR;

use super::privacy::privacy_budget;
use super::{NodeConfigError, NodeFile, check_address, check_server_name};
use crate::import::KeySource;

/// Default name on the coordinator's certificate (as `--server-name`).
pub const DEFAULT_SERVER_NAME: &str = "localhost";

/// Default time to keep trying to reach the coordinator.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// The `node run` flags that the node file can also give. `None` means the
/// flag was not given.
#[derive(Clone, Debug, Default)]
pub struct RunFlags {
    /// `--coordinator`.
    pub coordinator: Option<String>,
    /// `--server-name`.
    pub server_name: Option<String>,
    /// `--ca`.
    pub ca: Option<PathBuf>,
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--signing-key`.
    pub signing_key: Option<PathBuf>,
    /// `--audit-log`.
    pub audit_log: Option<PathBuf>,
    /// `--audit-key-file`.
    pub audit_key_file: Option<PathBuf>,
    /// `--vault`.
    pub vault: Option<PathBuf>,
    /// `--vault-key-file`.
    pub vault_key_file: Option<PathBuf>,
    /// `--task-id`.
    pub task_id: Option<String>,
    /// `--dp-epsilon`.
    pub dp_epsilon: Option<f64>,
    /// `--dp-delta`.
    pub dp_delta: Option<f64>,
    /// `--connect-timeout`.
    pub connect_timeout: Option<Duration>,
}

/// Where the audit key comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditKeySource {
    /// A key file.
    File(PathBuf),
    /// The environment variable `MEDFED_AUDIT_KEY`.
    Env,
}

/// Everything `node run` needs to know, each setting taken from the flag,
/// the environment, the file or the default, in that order of precedence.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Coordinator address.
    pub coordinator: String,
    /// Name on the coordinator's certificate.
    pub server_name: String,
    /// Consortium CA certificate.
    pub ca: PathBuf,
    /// This hospital's certificate.
    pub cert: PathBuf,
    /// This hospital's TLS key.
    pub key: PathBuf,
    /// This hospital's Ed25519 signing key.
    pub signing_key: PathBuf,
    /// The encrypted vault.
    pub vault: PathBuf,
    /// Where the vault key comes from.
    pub vault_key: KeySource,
    /// The exchange log (default: `exchange.log` beside the vault).
    pub audit_log: PathBuf,
    /// Where the audit key comes from.
    pub audit_key: AuditKeySource,
    /// Join only this task.
    pub task_id: Option<String>,
    /// How long to keep trying to reach the coordinator.
    pub connect_timeout: Duration,
    /// The site's own privacy budget for DP tasks (`None`: the node takes
    /// part in no DP task).
    pub privacy_budget: Option<medfed_secure::dp::Budget>,
    /// The hospital's policy (`[policy]` of the node file; the defaults
    /// without one).
    pub policy: crate::policy::Policy,
}

impl Settings {
    /// Combines the flags, the environment and the node file: a flag wins
    /// over the file; a secret comes from its flag, else its environment
    /// variable (when `env_is_set` says it is set), else the file. This is
    /// the one place that decides it.
    ///
    /// # Errors
    /// [`NodeConfigError::Missing`] or [`NodeConfigError::MissingSecret`]
    /// for a required setting given nowhere; [`NodeConfigError::Invalid`]
    /// for a flag value the file would have refused (an address that is not
    /// https, a bad server name).
    pub fn resolve(
        flags: RunFlags,
        file: Option<&NodeFile>,
        env_is_set: &dyn Fn(&str) -> bool,
    ) -> Result<Settings, NodeConfigError> {
        let privacy_budget = privacy_budget(&flags, file)?;
        let policy = file.map(|f| f.policy.clone()).unwrap_or_default();
        if policy.require_pinning && !policy.unpinned().is_empty() {
            return Err(NodeConfigError::Invalid {
                path: file.map_or_else(|| PathBuf::from("command line"), |f| f.source.clone()),
                line: file.and_then(|f| f.line_of("policy", "require_pinning")),
                key: "[policy] require_pinning".into(),
                value: "true".into(),
                problem: format!(
                    "pinning is required, but {} not set",
                    policy.unpinned().join(" and ")
                ),
            });
        }
        let source = file.map(|f| f.source.clone());
        let from_file = |pick: fn(&NodeFile) -> Option<PathBuf>| file.and_then(pick);
        let missing = |what, flag, table, key| NodeConfigError::Missing {
            path: source.clone(),
            what,
            flag,
            table,
            key,
        };
        let path = |flag: Option<PathBuf>,
                    pick: fn(&NodeFile) -> Option<PathBuf>,
                    what: &'static str,
                    name: &'static str,
                    table: &'static str,
                    key: &'static str| {
            flag.or_else(|| from_file(pick))
                .ok_or_else(|| missing(what, name, table, key))
        };
        let flag_invalid = |flag: &str, value: &str, problem: String| NodeConfigError::Invalid {
            path: PathBuf::from("command line"),
            line: None,
            key: flag.to_owned(),
            value: value.to_owned(),
            problem,
        };

        let coordinator = match flags.coordinator {
            Some(address) => {
                check_address(&address).map_err(|p| flag_invalid("--coordinator", &address, p))?;
                address
            }
            None => file.and_then(|f| f.coordinator.clone()).ok_or_else(|| {
                missing(
                    "coordinator address",
                    "--coordinator",
                    "coordinator",
                    "address",
                )
            })?,
        };
        let server_name = match flags.server_name {
            Some(name) => {
                check_server_name(&name).map_err(|p| flag_invalid("--server-name", &name, p))?;
                name
            }
            None => file
                .and_then(|f| f.server_name.clone())
                .unwrap_or_else(|| DEFAULT_SERVER_NAME.to_owned()),
        };
        let ca = path(
            flags.ca,
            |f| f.ca.clone(),
            "CA certificate",
            "--ca",
            "tls",
            "ca",
        )?;
        let cert = path(
            flags.cert,
            |f| f.cert.clone(),
            "certificate",
            "--cert",
            "tls",
            "cert",
        )?;
        let key = path(
            flags.key,
            |f| f.key.clone(),
            "TLS key",
            "--key",
            "tls",
            "key",
        )?;
        let signing_key = path(
            flags.signing_key,
            |f| f.signing_key.clone(),
            "signing key",
            "--signing-key",
            "tls",
            "signing_key",
        )?;
        let vault = path(
            flags.vault,
            |f| f.vault.clone(),
            "vault",
            "--vault",
            "vault",
            "path",
        )?;
        let vault_key = match secret(
            flags.vault_key_file,
            env_is_set(KEY_ENV_VAR),
            from_file(|f| f.vault_key_file.clone()),
        ) {
            Some(Secret::File(path)) => KeySource::File(path),
            Some(Secret::Env) => KeySource::Env,
            None => {
                return Err(NodeConfigError::MissingSecret {
                    path: source,
                    what: "vault key",
                    flag: "--vault-key-file",
                    env: KEY_ENV_VAR,
                    table: "vault",
                });
            }
        };
        // Given nowhere, the audit key is looked for in the environment when
        // the exchange log is opened, after the vault and certificates have
        // been read, so that their problems are reported first; the error
        // then names MEDFED_AUDIT_KEY.
        let audit_key = match secret(
            flags.audit_key_file,
            env_is_set(AUDIT_KEY_ENV),
            from_file(|f| f.audit_key_file.clone()),
        ) {
            Some(Secret::File(path)) => AuditKeySource::File(path),
            Some(Secret::Env) | None => AuditKeySource::Env,
        };
        let audit_log = flags
            .audit_log
            .or_else(|| from_file(|f| f.audit_log.clone()))
            .unwrap_or_else(|| default_audit_log(&vault));
        Ok(Settings {
            coordinator,
            server_name,
            ca,
            cert,
            key,
            signing_key,
            audit_log,
            audit_key,
            vault,
            vault_key,
            task_id: flags
                .task_id
                .or_else(|| file.and_then(|f| f.task_id.clone())),
            connect_timeout: flags
                .connect_timeout
                .or_else(|| file.and_then(|f| f.connect_timeout))
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            privacy_budget,
            policy,
        })
    }
}

/// `exchange.log` beside the vault.
pub fn default_audit_log(vault: &Path) -> PathBuf {
    vault
        .parent()
        .unwrap_or(Path::new("."))
        .join("exchange.log")
}

/// Where a secret comes from.
enum Secret {
    File(PathBuf),
    Env,
}

/// Flag, then environment, then file.
fn secret(flag: Option<PathBuf>, env_is_set: bool, file: Option<PathBuf>) -> Option<Secret> {
    match (flag, env_is_set, file) {
        (Some(path), _, _) => Some(Secret::File(path)),
        (None, true, _) => Some(Secret::Env),
        (None, false, Some(path)) => Some(Secret::File(path)),
        (None, false, None) => None,
    }
}
