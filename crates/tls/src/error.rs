//! The error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong while loading TLS material, building a
/// configuration, connecting, or reading a peer's identity.
///
/// Each message names the file, address or certificate concerned and what was
/// expected there.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read at all (missing, unreadable, a directory, ...).
    #[error("cannot read {}", path.display())]
    Read {
        /// The file that was to be read.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// A file holds text that is not valid PEM (a broken block or bad base64).
    #[error("{} is not valid PEM (expected {expected}): {detail}", path.display())]
    BadPem {
        /// The file that was parsed.
        path: PathBuf,
        /// What the file was expected to hold, e.g. `a PEM "CERTIFICATE" block`.
        expected: &'static str,
        /// What the PEM parser reported.
        detail: String,
    },

    /// A file that should hold certificates holds none.
    #[error("no certificate found in {} (expected a PEM \"CERTIFICATE\" block)", path.display())]
    NoCertificate {
        /// The file that was parsed.
        path: PathBuf,
    },

    /// A file that should hold a private key holds none.
    #[error(
        "no private key found in {} (expected a PEM \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\" block)",
        path.display()
    )]
    NoPrivateKey {
        /// The file that was parsed.
        path: PathBuf,
    },

    /// A certificate of the CA file cannot serve as a trust anchor.
    #[error("the CA certificate in {} cannot be used as a trust anchor", path.display())]
    BadCaCertificate {
        /// The CA file.
        path: PathBuf,
        /// Why rustls refused it.
        #[source]
        source: rustls::Error,
    },

    /// The client-certificate verifier could not be built from the CA file.
    #[error("cannot verify client certificates against the CA in {}", path.display())]
    ClientVerifier {
        /// The CA file.
        path: PathBuf,
        /// Why rustls refused it.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },

    /// rustls refused the certificate and key pair (e.g. the key does not
    /// belong to the certificate, or the key type is unsupported).
    #[error(
        "cannot use the certificate {} with the key {}: {source}",
        cert.display(),
        key.display()
    )]
    CertifiedKey {
        /// The certificate file.
        cert: PathBuf,
        /// The private key file.
        key: PathBuf,
        /// Why rustls refused them.
        #[source]
        source: rustls::Error,
    },

    /// rustls refused the protocol settings (TLS 1.3 with the ring provider).
    #[error("cannot configure TLS 1.3 with the ring provider: {0}")]
    Protocol(#[source] rustls::Error),

    /// A certificate is not parseable X.509 DER.
    #[error("the peer certificate is not a valid X.509 certificate (expected DER): {detail}")]
    BadCertificate {
        /// What the X.509 parser reported.
        detail: String,
    },

    /// A certificate carries a malformed or repeated signing-key name.
    #[error(
        "the certificate of `{subject}` has a bad signing key entry: {problem} \
         (expected one URI `{prefix}<64 hex digits>`)",
        prefix = crate::identity::SIGNING_KEY_URI_PREFIX
    )]
    BadSigningKey {
        /// The subject as text.
        subject: String,
        /// What is wrong.
        problem: String,
    },

    /// A certificate's subject has no Common Name, so it names nobody.
    #[error("the certificate subject `{subject}` has no Common Name (expected exactly one CN)")]
    NoCommonName {
        /// The subject as text.
        subject: String,
    },

    /// A certificate's subject has several Common Names, so its identity is ambiguous.
    #[error(
        "the certificate subject `{subject}` has {count} Common Names (expected exactly one CN)"
    )]
    SeveralCommonNames {
        /// The subject as text.
        subject: String,
        /// How many CNs it has.
        count: usize,
    },

    /// A certificate's Common Name is not text.
    #[error("the Common Name of certificate subject `{subject}` is not UTF-8 text")]
    CommonNameNotText {
        /// The subject as text.
        subject: String,
    },

    /// The coordinator address is not a usable `https://host:port` URI.
    #[error("invalid coordinator address `{uri}` (expected https://host:port): {reason}")]
    InvalidUri {
        /// The address as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The server name to verify is not a DNS name or IP address.
    #[error(
        "invalid server name `{name}` (expected a DNS name or IP address on the coordinator's certificate)"
    )]
    InvalidServerName {
        /// The name as given.
        name: String,
    },

    /// The coordinator could not be reached, or the TLS or HTTP/2 handshake failed.
    #[error("cannot connect to {uri}: {detail}")]
    Connect {
        /// The coordinator address.
        uri: String,
        /// The reason, with its causes.
        detail: String,
    },

    /// A member certificate received outside a handshake (a secure
    /// aggregation roster) does not check out: not issued by the consortium
    /// CA for client use, not currently valid, issued to another name, or
    /// certifying no signing key.
    #[error("the roster certificate of {member} is refused: {reason}")]
    RosterCertificate {
        /// The member the certificate was sent for.
        member: String,
        /// What is wrong with it.
        reason: String,
    },
}
