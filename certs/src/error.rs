//! [`CertsError`]: what went wrong while provisioning, and where.

use std::path::PathBuf;

/// A provisioning failure. Each variant names the file, name or value
/// concerned and what was expected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// An output file exists already; provisioning never overwrites.
    #[error("{} exists already; move it away first (provisioning never overwrites a key or certificate)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A member or coordinator name breaks the naming rule.
    #[error("invalid name {name:?}: {reason}")]
    BadName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A file does not hold what it should (PEM key, certificate, request).
    #[error("{}: {what}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, with the expected content.
        what: String,
    },
    /// The CA key does not belong to the CA certificate.
    #[error("{} is not the key of the certificate {}", key.display(), cert.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A signing request names someone other than expected.
    #[error("{}: the request is for {got:?}, expected {expected:?}", path.display())]
    UnexpectedName {
        /// The request file.
        path: PathBuf,
        /// The name the operator expected.
        expected: String,
        /// The name in the request.
        got: String,
    },
    /// A validity period out of range.
    #[error("--days {got}: expected 1 to {max}")]
    BadDays {
        /// The value given.
        got: u32,
        /// The largest value allowed.
        max: u32,
    },
    /// A subject alternative name that is neither an IP address nor a DNS name.
    #[error("--san {san:?}: expected an IP address or a DNS name")]
    BadSan {
        /// The value given.
        san: String,
    },
    /// The same member is listed twice.
    #[error("member {name:?} is listed twice")]
    DuplicateMember {
        /// The repeated name.
        name: String,
    },
    /// rcgen refused to build a key, certificate or request.
    #[error("cannot {step}")]
    Rcgen {
        /// The step that failed.
        step: &'static str,
        /// rcgen's reason.
        source: rcgen::Error,
    },
}

impl CertsError {
    pub(crate) fn rcgen(step: &'static str) -> impl FnOnce(rcgen::Error) -> CertsError {
        move |source| CertsError::Rcgen { step, source }
    }
}
