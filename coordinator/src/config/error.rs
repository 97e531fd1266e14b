//! Why a task file was refused, and where: the error type, and the
//! placing of a TOML or serde error at its line, column and key.

use super::locate;

/// Why a task file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read task file {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for a task (unknown key, wrong type...).
    #[error("{}: {}", at(path, *line, *column), keyed(key.as_deref(), message))]
    Parse {
        /// The file.
        path: String,
        /// Line of the problem, when the parser gives a position.
        line: Option<usize>,
        /// Column of the problem, when the parser gives a position.
        column: Option<usize>,
        /// The key concerned: a dotted path such as `training.rounds`, or
        /// for an unknown key the table it is in, such as `[training]`.
        key: Option<String>,
        /// What is wrong, with what is allowed.
        message: String,
    },
    /// A value is out of range.
    #[error("{}: {key}: {problem}", at(path, *line, None))]
    Invalid {
        /// The file.
        path: String,
        /// Line of the key (or of its table when the value is a default).
        line: Option<usize>,
        /// Dotted key.
        key: String,
        /// What is wrong and what is allowed.
        problem: String,
    },
}

/// `key: message`, or `[table] unknown key ...` for an unknown key.
fn keyed(key: Option<&str>, message: &str) -> String {
    match key {
        Some(table) if message.starts_with("unknown key") => format!("{table} {message}"),
        Some(key) => format!("{key}: {message}"),
        None => message.to_owned(),
    }
}

/// `file, line L, column C` with what is known.
fn at(path: &str, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(line), Some(column)) => format!("{path}, line {line}, column {column}"),
        (Some(line), None) => format!("{path}, line {line}"),
        _ => path.to_owned(),
    }
}

/// A TOML or serde error, placed: the line and column, and the key (for an
/// unknown key, the table it is in).
pub(super) fn parse_error(text: &str, path: &str, error: &toml::de::Error) -> ConfigError {
    let offset = error.span().map(|span| span.start);
    let (line, column) = match offset {
        Some(offset) => {
            let (line, column) = locate::line_column(text, offset);
            (Some(line), Some(column))
        }
        None => (None, None),
    };
    let message = locate::reword(error.message());
    let key = offset.and_then(|offset| locate::key_at(text, offset));
    let key = if message.starts_with("unknown key") {
        // The key itself is in the message; name the table it is in.
        Some(match key.as_deref().and_then(|k| k.rsplit_once('.')) {
            Some((table, _)) => format!("[{table}]"),
            None => "top level".to_owned(),
        })
    } else {
        key
    };
    ConfigError::Parse {
        path: path.to_owned(),
        line,
        column,
        key,
        message,
    }
}

/// Maps a wire field path (`task.rounds`) to its key in the task file.
pub(super) fn file_key(wire: &str) -> String {
    let field = wire.trim_start_matches("task.");
    let field = field.split('[').next().unwrap_or(field);
    let section = match field {
        "rounds" | "local_steps" | "learning_rate" | "l2" => "training",
        "holdout_fraction" | "split_seed" | "score_bins" => "evaluation",
        "task_id" => return "task.id".into(),
        _ => "task",
    };
    format!("{section}.{field}")
}
