//! The one error type of this crate.

use std::path::PathBuf;

/// Why a chart could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlotError {
    /// The file stem would not make a plain file name in the output
    /// directory.
    #[error("invalid chart file stem {stem:?}: {reason}")]
    InvalidStem {
        /// The stem as given.
        stem: String,
        /// What a stem must be.
        reason: &'static str,
    },
    /// The data holds more of something than a readable chart can show.
    #[error("{what}: got {got}, a readable chart allows at most {max}")]
    TooLarge {
        /// What there is too much of, e.g. `"rounds"`.
        what: &'static str,
        /// How many there are.
        got: usize,
        /// The most allowed.
        max: usize,
    },
    /// The font compiled into this crate could not be parsed.
    #[error("the bundled font {name} could not be loaded")]
    Font {
        /// The font file's name.
        name: &'static str,
    },
    /// Drawing the chart failed.
    #[error("cannot draw {path}: {message}")]
    Render {
        /// The file the chart was drawn for.
        path: PathBuf,
        /// What the drawing library reported.
        message: String,
    },
    /// Writing a file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file (or the directory it goes in).
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}
