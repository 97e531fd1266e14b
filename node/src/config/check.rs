//! `node config check`: a node file checked without starting anything. No
//! connection is made and the vault is not decrypted; every file the node
//! file names is opened and parsed (certificates and keys as PEM, the
//! vault's public header, key files as keys), and only public facts are
//! reported: certificate identities, key fingerprints, sizes. No secret is
//! ever printed.

use std::io::Read;
use std::path::{Path, PathBuf};

use medfed_audit::{AUDIT_KEY_ENV, AuditKey, SigningKey};
use medfed_vault::{KEY_ENV_VAR, VaultKey};

use super::{AuditKeySource, NodeConfigError, NodeFile, RunFlags, Settings};
use crate::import::KeySource;

/// The vault header is one short ASCII line (37 bytes in format v1, see
/// `medfed_vault`'s format description); no more than this is read.
const MAX_HEADER_BYTES: usize = 128;

/// One file the node file names, and what checking it found.
#[derive(Debug)]
pub struct CheckedFile {
    /// What it is, e.g. `certificate`.
    pub what: &'static str,
    /// Where it was named: `table.key` in the file, or an environment
    /// variable.
    pub origin: Origin,
    /// The file (resolved), or the environment variable's name.
    pub target: PathBuf,
    /// What it holds (public facts only), or what is wrong with it.
    pub status: Result<String, String>,
}

/// Where a checked item was named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A key of the node file: (table, key).
    Key(&'static str, &'static str),
    /// An environment variable.
    Env(&'static str),
}

/// What `node config check` found.
#[derive(Debug)]
pub struct NodeCheck {
    /// The node file.
    pub source: PathBuf,
    /// The settings the file gives (with the environment's secrets).
    pub settings: Settings,
    /// Every file named, in the order they are used.
    pub files: Vec<CheckedFile>,
    lines: Vec<(Origin, Option<usize>)>,
}

impl NodeCheck {
    /// A short summary: the coordinator, then one line per file.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "{}: coordinator {} (server name {}, connect timeout {} s, {})\n",
            self.source.display(),
            s.coordinator,
            s.server_name,
            s.connect_timeout.as_secs(),
            s.task_id
                .as_ref()
                .map_or_else(|| "any task".to_owned(), |t| format!("task {t} only")),
        );
        for file in &self.files {
            let named = match file.origin {
                Origin::Key(table, key) => format!("[{table}] {key}"),
                Origin::Env(var) => format!("environment {var}"),
            };
            let (mark, detail) = match &file.status {
                Ok(detail) => ("ok", detail.as_str()),
                Err(problem) => ("PROBLEM", problem.as_str()),
            };
            out.push_str(&format!(
                "  {:<13} {:<8} {} ({named}): {detail}\n",
                file.what,
                mark,
                file.target.display()
            ));
        }
        out.push_str(&policy_lines(&s.policy));
        out
    }

    /// The first problem found, as an error naming the key and line, with
    /// the number of others.
    pub fn problem(&self) -> Option<NodeConfigError> {
        let mut problems = self.files.iter().filter(|f| f.status.is_err());
        let first = problems.next()?;
        let others = problems.count();
        let line = self
            .lines
            .iter()
            .find(|(o, _)| *o == first.origin)
            .and_then(|(_, line)| *line);
        let key = match first.origin {
            Origin::Key(table, key) => format!("[{table}] {key}"),
            Origin::Env(var) => format!("environment variable {var}"),
        };
        let mut problem = first.status.as_ref().err().cloned().unwrap_or_default();
        if others > 0 {
            problem.push_str(&format!(
                " (and {others} more problem{}, listed above)",
                if others == 1 { "" } else { "s" }
            ));
        }
        Some(NodeConfigError::Referenced {
            path: self.source.clone(),
            line: match first.origin {
                Origin::Key(..) => line,
                Origin::Env(_) => None,
            },
            key,
            target: first.target.clone(),
            problem,
        })
    }
}

/// Checks a node file for `node run --config FILE` with no other flags:
/// every required key present (secrets may come from the environment, as
/// `env_is_set` says), and every file it names readable and of the right
/// kind.
///
/// # Errors
/// A required key missing (as [`Settings::resolve`]). Problems with the
/// named files are collected in the report instead (see
/// [`NodeCheck::problem`]).
pub fn check(
    file: &NodeFile,
    env_is_set: &dyn Fn(&str) -> bool,
) -> Result<NodeCheck, NodeConfigError> {
    let settings = Settings::resolve(RunFlags::default(), Some(file), env_is_set)?;
    let mut files = Vec::new();
    let mut push = |what, origin, target: &Path, status| {
        files.push(CheckedFile {
            what,
            origin,
            target: target.to_path_buf(),
            status,
        });
    };

    push(
        "CA",
        Origin::Key("tls", "ca"),
        &settings.ca,
        medfed_tls::load_certs(&settings.ca)
            .map(|certs| plural(certs.len(), "certificate"))
            .map_err(chain),
    );
    let certified = certificate(&settings.cert);
    push(
        "certificate",
        Origin::Key("tls", "cert"),
        &settings.cert,
        certified
            .as_ref()
            .map(|(name, _)| format!("certificate of {name}"))
            .map_err(Clone::clone),
    );
    push(
        "TLS key",
        Origin::Key("tls", "key"),
        &settings.key,
        medfed_tls::load_private_key(&settings.key)
            .map(|_| "a private key".to_owned())
            .map_err(chain),
    );
    push(
        "signing key",
        Origin::Key("tls", "signing_key"),
        &settings.signing_key,
        signing_key(
            &settings.signing_key,
            certified.ok().and_then(|(_, key)| key),
        ),
    );
    let vault_fingerprint = vault_header(&settings.vault);
    push(
        "vault",
        Origin::Key("vault", "path"),
        &settings.vault,
        vault_fingerprint
            .as_ref()
            .map(|(fingerprint, bytes)| {
                format!("a medfed vault, {bytes} bytes, encrypted with key {fingerprint}")
            })
            .map_err(Clone::clone),
    );
    let vault_key = match &settings.vault_key {
        KeySource::File(path) => (
            Origin::Key("vault", "key_file"),
            path.clone(),
            VaultKey::from_file(path),
        ),
        KeySource::Env => (
            Origin::Env(KEY_ENV_VAR),
            PathBuf::from(format!("${KEY_ENV_VAR}")),
            VaultKey::from_env(KEY_ENV_VAR),
        ),
    };
    let status = match (vault_key.2, &vault_fingerprint) {
        (Err(e), _) => Err(chain(e)),
        (Ok(key), Ok((expected, _))) if key.fingerprint() != *expected => Err(format!(
            "this is key {}, but the vault was encrypted with key {expected}",
            key.fingerprint()
        )),
        (Ok(key), Ok(_)) => Ok(format!("key {}, the vault's key", key.fingerprint())),
        (Ok(key), Err(_)) => Ok(format!("key {}", key.fingerprint())),
    };
    push("vault key", vault_key.0, &vault_key.1, status);
    let audit_key = match &settings.audit_key {
        AuditKeySource::File(path) => (
            Origin::Key("audit", "key_file"),
            path.clone(),
            AuditKey::from_file(path),
        ),
        AuditKeySource::Env => (
            Origin::Env(AUDIT_KEY_ENV),
            PathBuf::from(format!("${AUDIT_KEY_ENV}")),
            AuditKey::from_env(AUDIT_KEY_ENV),
        ),
    };
    push(
        "audit key",
        audit_key.0,
        &audit_key.1,
        audit_key
            .2
            .map(|key| format!("key {}", key.fingerprint()))
            .map_err(chain),
    );
    push(
        "exchange log",
        Origin::Key("audit", "log"),
        &settings.audit_log,
        exchange_log(&settings.audit_log),
    );

    let lines = files
        .iter()
        .map(|f| {
            let line = match f.origin {
                Origin::Key(table, key) => file.line_of(table, key),
                Origin::Env(_) => None,
            };
            (f.origin, line)
        })
        .collect();
    Ok(NodeCheck {
        source: file.source.clone(),
        settings,
        files,
        lines,
    })
}

fn chain(error: impl Into<anyhow::Error>) -> String {
    format!("{:#}", error.into())
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The certificate's member name and the signing key it certifies.
fn certificate(path: &Path) -> Result<(String, Option<[u8; 32]>), String> {
    let certs = medfed_tls::load_certs(path).map_err(chain)?;
    let leaf = certs
        .first()
        .ok_or_else(|| "holds no certificate".to_owned())?;
    let name = medfed_tls::identity_from_der(leaf).map_err(chain)?;
    let key = medfed_tls::signing_key_from_der(leaf).map_err(chain)?;
    Ok((name, key))
}

fn signing_key(path: &Path, certified: Option<[u8; 32]>) -> Result<String, String> {
    let key = SigningKey::from_file(path).map_err(chain)?;
    match certified {
        Some(certified) if certified == *key.public_key().as_bytes() => {
            Ok("an Ed25519 key, the one the certificate certifies".to_owned())
        }
        Some(_) => Err(
            "not the signing key certified in the certificate: use the .sign.key made \
             together with that certificate's request"
                .to_owned(),
        ),
        None => Ok("an Ed25519 key".to_owned()),
    }
}

/// The key fingerprint and size of a vault, from its public header line
/// (`medfed-vault v1 key=<fingerprint>`), without decrypting anything.
fn vault_header(path: &Path) -> Result<(String, u64), String> {
    let cannot = |e: std::io::Error| format!("cannot read it: {e}");
    let file = std::fs::File::open(path).map_err(cannot)?;
    let size = file.metadata().map_err(cannot)?.len();
    let mut head = Vec::with_capacity(MAX_HEADER_BYTES);
    file.take(MAX_HEADER_BYTES as u64)
        .read_to_end(&mut head)
        .map_err(cannot)?;
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = std::str::from_utf8(line).unwrap_or_default();
    let mut words = line.split(' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some("medfed-vault"), Some("v1"), Some(key), None) if key.starts_with("key=") => {
            Ok((key.trim_start_matches("key=").to_owned(), size))
        }
        (Some("medfed-vault"), Some(version), _, _) => Err(format!(
            "a medfed vault of format {version:?}, which this node does not read (it reads v1)"
        )),
        _ => Err(
            "not a medfed vault (it does not start with a `medfed-vault` header; \
             make one with `node import`)"
                .to_owned(),
        ),
    }
}

fn exchange_log(path: &Path) -> Result<String, String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Ok(format!("exists, {} bytes", meta.len())),
        Ok(_) => Err("exists but is not a file".to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let folder = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            if folder.is_dir() {
                Ok("will be created on the first run".to_owned())
            } else {
                Err(format!("its folder {} does not exist", folder.display()))
            }
        }
        Err(e) => Err(format!("cannot read it: {e}")),
    }
}

/// The policy in force, and a warning for what is not pinned.
fn policy_lines(policy: &crate::policy::Policy) -> String {
    let mut out = format!(
        "  policy: min_rows {}, min_cell {}, at most {} parameters per row, {} score bins, {} \
         evaluations, {} steps; columns: {}{}\n",
        policy.min_rows,
        policy.min_cell,
        policy.max_parameters_per_row,
        policy.max_score_bins,
        policy.max_evaluations,
        policy.max_steps,
        policy.columns.as_ref().map_or_else(
            || "any not flagged as a record identifier".to_owned(),
            |c| c.join(", ")
        ),
        if policy.approved_tasks.is_some() {
            "; only approved tasks"
        } else {
            ""
        }
    );
    for what in policy.unpinned() {
        out.push_str(&format!(
            "  warning: {what} is not pinned: the node takes part with whatever the consortium \
             CA certifies\n"
        ));
    }
    out
}
