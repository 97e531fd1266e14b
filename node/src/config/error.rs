//! Why a node file, or the settings taken from it and the flags, were
//! refused: [`NodeConfigError`], each variant naming the file, the line and
//! the key.

use std::path::{Path, PathBuf};

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
    /// The file is larger than [`MAX_FILE_BYTES`](super::MAX_FILE_BYTES).
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
