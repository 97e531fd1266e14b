//! The hospital's node file (TOML): where the coordinator, the vault, the
//! certificates and the keys are. `node run --config FILE` reads it and
//! `node config check FILE` checks it; `examples/heart/node.toml` explains
//! every key.
//!
//! ```toml
//! [coordinator]
//! address = "https://coordinator.example.org:7443"
//! server_name = "coordinator.example.org"
//! [vault]
//! path = "site.vault"
//! key_file = "vault.key"
//! [tls]
//! ca = "pki/ca.pem"
//! cert = "pki/my-hospital.pem"
//! key = "pki/my-hospital.key"
//! signing_key = "pki/my-hospital.sign.key"
//! [audit]
//! key_file = "audit.key"
//! ```
//!
//! Relative paths in the file are resolved against the file's own folder,
//! so a file works the same from any working directory. Unknown keys, wrong
//! types and values out of range are refused with the file, the line, the
//! key and what is allowed.
//!
//! Where each setting comes from is decided in one place,
//! [`Settings::resolve`]: a flag on the command line wins over the file; for
//! the two secrets (the vault key and the audit key) the environment
//! variables `MEDFED_VAULT_KEY` and `MEDFED_AUDIT_KEY` come between the two,
//! so the order is flag, then environment, then file.

mod check;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use medfed_audit::AUDIT_KEY_ENV;
use medfed_vault::KEY_ENV_VAR;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::import::KeySource;

pub use check::{CheckedFile, NodeCheck, check};

/// Largest node file read; a complete one is well under 2 KiB.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Default name on the coordinator's certificate (as `--server-name`).
pub const DEFAULT_SERVER_NAME: &str = "localhost";

/// Default time to keep trying to reach the coordinator.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest `connect_timeout_seconds` accepted: one day.
pub const MAX_CONNECT_TIMEOUT_SECONDS: i64 = 86_400;

/// Every table of the node file and the keys it allows.
const SCHEMA: &[(&str, &[&str])] = &[
    (
        "coordinator",
        &[
            "address",
            "server_name",
            "task_id",
            "connect_timeout_seconds",
        ],
    ),
    ("vault", &["path", "key_file"]),
    ("tls", &["ca", "cert", "key", "signing_key"]),
    ("audit", &["log", "key_file"]),
    ("privacy", &["epsilon", "delta"]),
];

/// Why a node file, or the settings taken from it and the flags, were
/// refused. Each variant names the file, the line when known, and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeConfigError {
    /// The file could not be read.
    #[error("cannot read node file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("node file {} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// The file is not valid TOML.
    #[error("{}: not valid TOML: {message}", at(path, *line))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// Line of the problem, when the parser gives one.
        line: Option<usize>,
        /// What the parser said.
        message: String,
    },
    /// A key the node file does not have.
    #[error("{}: {table} unknown key `{key}`; allowed: {}", at(path, *line), allowed.join(", "))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// Line of the key.
        line: Option<usize>,
        /// The table it is in, e.g. `[tls]`, or `top level`.
        table: String,
        /// The key as written.
        key: String,
        /// The keys that table allows.
        allowed: &'static [&'static str],
    },
    /// A value of the wrong type, e.g. a number where a path is expected.
    #[error("{}: {key}: expected {expected}, got {got}", at(path, *line))]
    WrongType {
        /// The file.
        path: PathBuf,
        /// Line of the value.
        line: Option<usize>,
        /// The key, e.g. `[vault] path`.
        key: String,
        /// What the key takes.
        expected: &'static str,
        /// The TOML type found.
        got: &'static str,
    },
    /// A value of the right type that is not allowed.
    #[error("{}: {key} = {value}: {problem}", at(path, *line))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Line of the value.
        line: Option<usize>,
        /// The key, e.g. `[coordinator] connect_timeout_seconds`.
        key: String,
        /// The value as written.
        value: String,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// Half of a privacy budget: ε without δ or δ without ε.
    #[error(
        "the privacy budget needs both ε and δ: {given} is given but not {absent} (pass \
         {flag} or set `{key}` in [privacy] of {})",
        file_hint(path.as_deref())
    )]
    HalfBudget {
        /// The node file, when one was given.
        path: Option<PathBuf>,
        /// What is given.
        given: &'static str,
        /// What is not.
        absent: &'static str,
        /// The flag that gives it.
        flag: &'static str,
        /// Its key in `[privacy]`.
        key: &'static str,
    },
    /// A required setting given neither by a flag nor by the file.
    #[error("no {what}: pass {flag} or set `{key}` in [{table}] of {}", file_hint(path.as_deref()))]
    Missing {
        /// The node file, when one was given.
        path: Option<PathBuf>,
        /// What is missing, in words.
        what: &'static str,
        /// The flag that gives it.
        flag: &'static str,
        /// Its table in the node file.
        table: &'static str,
        /// Its key in that table.
        key: &'static str,
    },
    /// The vault key given neither by a flag, the environment nor the file.
    #[error(
        "no {what}: pass {flag}, set the environment variable {env}, or set `key_file` in [{table}] of {}",
        file_hint(path.as_deref())
    )]
    MissingSecret {
        /// The node file, when one was given.
        path: Option<PathBuf>,
        /// Which secret, in words.
        what: &'static str,
        /// The flag that names its file.
        flag: &'static str,
        /// The environment variable that holds it.
        env: &'static str,
        /// Its table in the node file.
        table: &'static str,
    },
    /// A file the node file names is missing, unreadable or not what it
    /// should be (found by `node config check`).
    #[error("{}: {key} = {}: {problem}", at(path, *line), target.display())]
    Referenced {
        /// The node file.
        path: PathBuf,
        /// Line of the key.
        line: Option<usize>,
        /// The key, e.g. `[tls] cert`.
        key: String,
        /// The file it names, resolved.
        target: PathBuf,
        /// What is wrong with it, with its cause.
        problem: String,
    },
}

/// `file, line N` or just `file`.
fn at(path: &Path, line: Option<usize>) -> String {
    match line {
        Some(line) => format!("{}, line {line}", path.display()),
        None => path.display().to_string(),
    }
}

fn file_hint(path: Option<&Path>) -> String {
    path.map_or_else(
        || "a node file (--config)".to_owned(),
        |p| p.display().to_string(),
    )
}

/// A node file as read: every key optional, paths resolved against the
/// file's folder. Which keys are required is decided when the settings are
/// resolved, since a flag may give them instead.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeFile {
    /// The file itself, as given.
    pub source: PathBuf,
    /// `[coordinator] address`.
    pub coordinator: Option<String>,
    /// `[coordinator] server_name`.
    pub server_name: Option<String>,
    /// `[coordinator] task_id`.
    pub task_id: Option<String>,
    /// `[coordinator] connect_timeout_seconds`.
    pub connect_timeout: Option<Duration>,
    /// `[vault] path`.
    pub vault: Option<PathBuf>,
    /// `[vault] key_file`.
    pub vault_key_file: Option<PathBuf>,
    /// `[tls] ca`.
    pub ca: Option<PathBuf>,
    /// `[tls] cert`.
    pub cert: Option<PathBuf>,
    /// `[tls] key`.
    pub key: Option<PathBuf>,
    /// `[tls] signing_key`.
    pub signing_key: Option<PathBuf>,
    /// `[audit] log`.
    pub audit_log: Option<PathBuf>,
    /// `[audit] key_file`.
    pub audit_key_file: Option<PathBuf>,
    /// `[privacy] epsilon`: the ε this site may spend in DP tasks.
    pub privacy_epsilon: Option<f64>,
    /// `[privacy] delta`: the δ its ε is measured at.
    pub privacy_delta: Option<f64>,
    /// Line of each key present, as (`table.key`, line).
    lines: Vec<(String, usize)>,
}

impl NodeFile {
    /// Reads and checks a node file (without opening the files it names).
    ///
    /// # Errors
    /// The file is unreadable, too large, not TOML, has an unknown key, a
    /// value of the wrong type or out of range; the error names the file,
    /// the line and the key.
    pub fn load(path: &Path) -> Result<NodeFile, NodeConfigError> {
        let read_error = |source| NodeConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let metadata = std::fs::metadata(path).map_err(read_error)?;
        if metadata.len() > MAX_FILE_BYTES {
            return Err(NodeConfigError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_FILE_BYTES,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let base = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        NodeFile::parse(&text, path, &base)
    }

    /// Parses node-file text; `path` names it in errors and relative paths
    /// are resolved against `base`.
    ///
    /// # Errors
    /// See [`NodeFile::load`].
    pub fn parse(text: &str, path: &Path, base: &Path) -> Result<NodeFile, NodeConfigError> {
        let reader = Reader { text, path };
        let document = DeTable::parse(text).map_err(|e| NodeConfigError::Syntax {
            path: path.to_path_buf(),
            line: e.span().map(|s| reader.line(&s)),
            message: e.message().replace('\n', "; ").trim_end().to_owned(),
        })?;
        let mut file = NodeFile {
            source: path.to_path_buf(),
            ..NodeFile::default()
        };
        let top_allowed: &'static [&'static str] =
            &["coordinator", "vault", "tls", "audit", "privacy"];
        for (name, value) in in_file_order(document.get_ref()) {
            let Some((table, allowed)) = SCHEMA.iter().find(|(t, _)| *t == name.get_ref()) else {
                return Err(reader.unknown(name, "top level", top_allowed));
            };
            let DeValue::Table(entries) = value.get_ref() else {
                return Err(reader.wrong_type(&format!("[{table}]"), value, "a table"));
            };
            for (key, value) in in_file_order(entries) {
                if !allowed.contains(&key.get_ref().as_ref()) {
                    return Err(reader.unknown(key, &format!("[{table}]"), allowed));
                }
                file.lines.push((
                    format!("{table}.{}", key.get_ref()),
                    reader.line(&key.span()),
                ));
                reader.set(&mut file, table, key.get_ref(), value, base)?;
            }
        }
        Ok(file)
    }

    /// Line of `table.key` in the file, when present.
    pub fn line_of(&self, table: &str, key: &str) -> Option<usize> {
        let wanted = format!("{table}.{key}");
        self.lines
            .iter()
            .find(|(k, _)| *k == wanted)
            .map(|(_, line)| *line)
    }
}

/// The entries of a table in the order they appear in the file.
fn in_file_order<'a, 'i>(
    table: &'a DeTable<'i>,
) -> Vec<(
    &'a Spanned<std::borrow::Cow<'i, str>>,
    &'a Spanned<DeValue<'i>>,
)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    entries
}

/// Turns spans into lines and values into settings, naming the file.
struct Reader<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Reader<'_> {
    /// 1-based line of the start of `span`.
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn unknown(
        &self,
        key: &Spanned<std::borrow::Cow<'_, str>>,
        table: &str,
        allowed: &'static [&'static str],
    ) -> NodeConfigError {
        NodeConfigError::UnknownKey {
            path: self.path.to_path_buf(),
            line: Some(self.line(&key.span())),
            table: table.to_owned(),
            key: key.get_ref().to_string(),
            allowed,
        }
    }

    fn wrong_type(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        expected: &'static str,
    ) -> NodeConfigError {
        NodeConfigError::WrongType {
            path: self.path.to_path_buf(),
            line: Some(self.line(&value.span())),
            key: key.to_owned(),
            expected,
            got: value.get_ref().type_str(),
        }
    }

    fn invalid(&self, key: &str, value: &Spanned<DeValue<'_>>, problem: &str) -> NodeConfigError {
        let written = self
            .text
            .get(value.span())
            .unwrap_or("the value")
            .to_owned();
        NodeConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: Some(self.line(&value.span())),
            key: key.to_owned(),
            value: written,
            problem: problem.to_owned(),
        }
    }

    /// A non-empty string.
    fn text(&self, key: &str, value: &Spanned<DeValue<'_>>) -> Result<String, NodeConfigError> {
        let DeValue::String(text) = value.get_ref() else {
            return Err(self.wrong_type(key, value, "a string"));
        };
        if text.trim().is_empty() {
            return Err(self.invalid(key, value, "expected a non-empty string"));
        }
        Ok(text.to_string())
    }

    /// A path, resolved against `base` when relative.
    fn path(
        &self,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        base: &Path,
    ) -> Result<PathBuf, NodeConfigError> {
        let DeValue::String(text) = value.get_ref() else {
            return Err(self.wrong_type(key, value, "a string (a file path)"));
        };
        if text.is_empty() {
            return Err(self.invalid(key, value, "expected a file path, got an empty string"));
        }
        Ok(base.join(text.as_ref()))
    }

    /// A TOML float or integer.
    fn number(&self, key: &str, value: &Spanned<DeValue<'_>>) -> Result<f64, NodeConfigError> {
        let parsed = match value.get_ref() {
            DeValue::Float(number) => number.as_str().replace('_', "").parse::<f64>().ok(),
            DeValue::Integer(number) => {
                i64::from_str_radix(&number.as_str().replace('_', ""), number.radix())
                    .ok()
                    .map(|n| n as f64)
            }
            _ => return Err(self.wrong_type(key, value, "a number")),
        };
        parsed.ok_or_else(|| self.invalid(key, value, "expected a number"))
    }

    /// Stores `table.key = value` in `file`.
    fn set(
        &self,
        file: &mut NodeFile,
        table: &str,
        key: &str,
        value: &Spanned<DeValue<'_>>,
        base: &Path,
    ) -> Result<(), NodeConfigError> {
        let shown = format!("[{table}] {key}");
        let shown = shown.as_str();
        match (table, key) {
            ("coordinator", "address") => {
                let address = self.text(shown, value)?;
                check_address(&address).map_err(|problem| self.invalid(shown, value, &problem))?;
                file.coordinator = Some(address);
            }
            ("coordinator", "server_name") => {
                let name = self.text(shown, value)?;
                check_server_name(&name).map_err(|problem| self.invalid(shown, value, &problem))?;
                file.server_name = Some(name);
            }
            ("coordinator", "task_id") => file.task_id = Some(self.text(shown, value)?),
            ("coordinator", "connect_timeout_seconds") => {
                let DeValue::Integer(number) = value.get_ref() else {
                    return Err(self.wrong_type(shown, value, "an integer number of seconds"));
                };
                let seconds = i64::from_str_radix(number.as_str(), number.radix()).ok();
                match seconds {
                    Some(s) if (1..=MAX_CONNECT_TIMEOUT_SECONDS).contains(&s) => {
                        file.connect_timeout = Some(Duration::from_secs(s.unsigned_abs()));
                    }
                    Some(s) if s > MAX_CONNECT_TIMEOUT_SECONDS => {
                        return Err(self.invalid(
                            shown,
                            value,
                            &format!(
                                "expected at most {MAX_CONNECT_TIMEOUT_SECONDS} seconds (one day)"
                            ),
                        ));
                    }
                    _ => {
                        return Err(self.invalid(
                            shown,
                            value,
                            "expected a positive number of seconds",
                        ));
                    }
                }
            }
            ("vault", "path") => file.vault = Some(self.path(shown, value, base)?),
            ("vault", "key_file") => file.vault_key_file = Some(self.path(shown, value, base)?),
            ("tls", "ca") => file.ca = Some(self.path(shown, value, base)?),
            ("tls", "cert") => file.cert = Some(self.path(shown, value, base)?),
            ("tls", "key") => file.key = Some(self.path(shown, value, base)?),
            ("tls", "signing_key") => file.signing_key = Some(self.path(shown, value, base)?),
            ("audit", "log") => file.audit_log = Some(self.path(shown, value, base)?),
            ("audit", "key_file") => file.audit_key_file = Some(self.path(shown, value, base)?),
            ("privacy", "epsilon") => {
                let epsilon = self.number(shown, value)?;
                check_epsilon(epsilon).map_err(|problem| self.invalid(shown, value, &problem))?;
                file.privacy_epsilon = Some(epsilon);
            }
            ("privacy", "delta") => {
                let delta = self.number(shown, value)?;
                check_delta(delta).map_err(|problem| self.invalid(shown, value, &problem))?;
                file.privacy_delta = Some(delta);
            }
            // SCHEMA and this match list the same keys; `parse` refuses any
            // other before calling here.
            _ => unreachable!("key {table}.{key} is in SCHEMA but not read"),
        }
        Ok(())
    }
}

/// The coordinator address must be `https://host[:port]`, as
/// `medfed_tls::connect` requires; checked here so that a typo is a
/// configuration error found before anything starts.
///
/// # Errors
/// What is wrong with it.
pub fn check_address(address: &str) -> Result<(), String> {
    let expected = "expected https://host:port, e.g. https://coordinator.example.org:7443";
    let uri: tonic::codegen::http::Uri = address
        .parse()
        .map_err(|e| format!("not a URL ({e}); {expected}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("the scheme must be https; {expected}"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("no host; {expected}"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!("a path is not allowed; {expected}"));
    }
    Ok(())
}

/// The server name must be a DNS name or an IP address (what the
/// coordinator's certificate must carry).
///
/// # Errors
/// What is wrong with it.
pub fn check_server_name(name: &str) -> Result<(), String> {
    rustls_pki_types::ServerName::try_from(name.to_owned())
        .map(|_| ())
        .map_err(|_| "expected a DNS name or an IP address, e.g. coordinator.example.org".into())
}

/// A site's ε budget must be finite and positive.
///
/// # Errors
/// What is wrong with it.
pub fn check_epsilon(epsilon: f64) -> Result<(), String> {
    if epsilon.is_finite() && epsilon > 0.0 {
        Ok(())
    } else {
        Err("expected a finite number > 0, e.g. 1.0".into())
    }
}

/// A site's δ must lie strictly between 0 and 1 (well below 1 / its rows).
///
/// # Errors
/// What is wrong with it.
pub fn check_delta(delta: f64) -> Result<(), String> {
    if delta > 0.0 && delta < 1.0 {
        Ok(())
    } else {
        Err("expected a number with 0 < δ < 1, e.g. 1e-5".into())
    }
}

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
        })
    }
}

/// The privacy budget from `--dp-epsilon`/`--dp-delta`, else the file's
/// `[privacy]`, each value on its own; both or neither must be given.
fn privacy_budget(
    flags: &RunFlags,
    file: Option<&NodeFile>,
) -> Result<Option<medfed_secure::dp::Budget>, NodeConfigError> {
    let path = file.map(|f| f.source.clone());
    let flag_invalid = |key: &str, value: f64, problem: String| NodeConfigError::Invalid {
        path: PathBuf::from("(command line)"),
        line: None,
        key: key.to_owned(),
        value: value.to_string(),
        problem,
    };
    if let Some(e) = flags.dp_epsilon {
        check_epsilon(e).map_err(|p| flag_invalid("--dp-epsilon", e, p))?;
    }
    if let Some(d) = flags.dp_delta {
        check_delta(d).map_err(|p| flag_invalid("--dp-delta", d, p))?;
    }
    let epsilon = flags
        .dp_epsilon
        .or_else(|| file.and_then(|f| f.privacy_epsilon));
    let delta = flags
        .dp_delta
        .or_else(|| file.and_then(|f| f.privacy_delta));
    match (epsilon, delta) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(NodeConfigError::HalfBudget {
            path,
            given: "ε",
            absent: "δ",
            flag: "--dp-delta",
            key: "delta",
        }),
        (None, Some(_)) => Err(NodeConfigError::HalfBudget {
            path,
            given: "δ",
            absent: "ε",
            flag: "--dp-epsilon",
            key: "epsilon",
        }),
        (Some(e), Some(d)) => medfed_secure::dp::Budget::new(e, d)
            .map(Some)
            .map_err(|err| flag_invalid("[privacy]", e, err.to_string())),
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

#[cfg(test)]
mod tests;
