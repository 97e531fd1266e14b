//! The node file as read: [`NodeFile`], the tables and keys it allows, and
//! reading it from disk with relative paths resolved against its folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::NodeConfigError;
use super::read::Reader;

/// Largest node file read; a complete one is well under 2 KiB.
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Every table of the node file and the keys it allows.
pub(super) const SCHEMA: &[(&str, &[&str])] = &[
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
    ("policy", super::policy::KEYS),
];

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
    /// `[policy]`: what this hospital lets a task compute and release, with
    /// the defaults for every key not set.
    pub policy: crate::policy::Policy,
    /// Line of each key present, as (`table.key`, line).
    pub(super) lines: Vec<(String, usize)>,
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
        // Read at most one byte past the limit, whatever the file claims to
        // be (a pipe reports no length, a file may grow after a check).
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut std::io::Read::take(
                std::fs::File::open(path).map_err(read_error)?,
                MAX_FILE_BYTES + 1,
            ),
            &mut text,
        )
        .map_err(read_error)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(NodeConfigError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_FILE_BYTES,
            });
        }
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
            &["coordinator", "vault", "tls", "audit", "privacy", "policy"];
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
