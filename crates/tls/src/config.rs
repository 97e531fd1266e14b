//! rustls configurations: the coordinator's server side and a node's client side.
//!
//! Both use the `ring` provider explicitly (never a process-wide default),
//! TLS 1.3 only, ALPN `h2`, and trust exactly the consortium CA.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;

use crate::TlsError;
use crate::pem::{load_certs, load_private_key};

/// The ALPN protocol both sides offer: HTTP/2, as gRPC needs.
pub const ALPN_H2: &[u8] = b"h2";

pub(crate) fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The consortium CA file as a root store of its own (no system roots).
pub(crate) fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca)? {
        roots
            .add(cert)
            .map_err(|source| TlsError::BadCaCertificate {
                path: ca.to_path_buf(),
                source,
            })?;
    }
    Ok(roots)
}

/// The coordinator's TLS configuration.
///
/// TLS 1.3 only with the ring provider; every client must present a
/// certificate chaining to the consortium CA in `ca` (a client certificate is
/// required, never optional); the server presents the chain in `cert` with
/// the key in `key`; ALPN `h2`.
///
/// # Errors
/// Unreadable or malformed PEM files ([`TlsError::Read`],
/// [`TlsError::BadPem`], [`TlsError::NoCertificate`],
/// [`TlsError::NoPrivateKey`]), a CA certificate that cannot be a trust
/// anchor ([`TlsError::BadCaCertificate`], [`TlsError::ClientVerifier`]), or a
/// key that does not fit the certificate ([`TlsError::CertifiedKey`]).
pub fn server_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), Arc::clone(&provider))
            .build()
            .map_err(|source| TlsError::ClientVerifier {
                path: ca.to_path_buf(),
                source,
            })?;
    let chain = load_certs(cert)?;
    let private_key = load_private_key(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Protocol)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, private_key)
        .map_err(|source| TlsError::CertifiedKey {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// A hospital node's TLS configuration.
///
/// TLS 1.3 only with the ring provider; trusts only the consortium CA in
/// `ca`; presents the hospital certificate chain in `cert` with the key in
/// `key`; ALPN `h2`.
///
/// # Errors
/// Unreadable or malformed PEM files ([`TlsError::Read`],
/// [`TlsError::BadPem`], [`TlsError::NoCertificate`],
/// [`TlsError::NoPrivateKey`]), a CA certificate that cannot be a trust
/// anchor ([`TlsError::BadCaCertificate`]), or a key that does not fit the
/// certificate ([`TlsError::CertifiedKey`]).
pub fn client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    pinned_client_config(ca, cert, key, None)
}

/// [`client_config`] that, with `pin`, also accepts only the server
/// certificate whose DER has that SHA-256 (the hospital's `[policy]
/// coordinator`), after the consortium CA's own checks.
///
/// # Errors
/// As [`client_config`].
pub fn pinned_client_config(
    ca: &Path,
    cert: &Path,
    key: &Path,
    pin: Option<[u8; 32]>,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let roots = Arc::new(roots(ca)?);
    let chain = load_certs(cert)?;
    let private_key = load_private_key(key)?;
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Protocol)?;
    let builder = match pin {
        None => builder.with_root_certificates(roots),
        Some(pin) => {
            let inner =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(|e| TlsError::BadCaCertificate {
                        path: ca.to_path_buf(),
                        source: rustls::Error::General(e.to_string()),
                    })?;
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(crate::pin::PinnedServer { inner, pin }))
        }
    };
    let mut config = builder
        .with_client_auth_cert(chain, private_key)
        .map_err(|source| TlsError::CertifiedKey {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            source,
        })?;
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}
