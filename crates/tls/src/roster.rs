//! Checking another member's certificate outside a handshake: a node that
//! receives a secure-aggregation roster from the coordinator verifies every
//! member's certificate against the consortium CA itself, and takes each
//! member's signing key from its certificate, never from the coordinator's
//! word.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::TlsError;
use crate::config::{provider, roots};
use crate::identity::{identity_from_der, signing_key_from_der};

/// Verifies member certificates against the consortium CA, with the same
/// rules the coordinator applies to a client in the TLS handshake
/// (webpki: chain to the CA, validity period, client-auth usage).
#[derive(Debug, Clone)]
pub struct MemberVerifier {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl MemberVerifier {
    /// A verifier that trusts exactly the CA certificates in `ca`.
    ///
    /// # Errors
    /// An unreadable or malformed CA file, or one that cannot be a trust
    /// anchor.
    pub fn new(ca: &Path) -> Result<MemberVerifier, TlsError> {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                .build()
                .map_err(|source| TlsError::ClientVerifier {
                    path: ca.to_path_buf(),
                    source,
                })?;
        Ok(MemberVerifier { verifier })
    }

    /// Checks that `der` is a currently valid client certificate issued by
    /// the consortium CA to `member`, and returns the Ed25519 signing key
    /// it certifies.
    ///
    /// # Errors
    /// [`TlsError::RosterCertificate`] naming the member and the reason.
    pub fn signing_key(&self, member: &str, der: &[u8]) -> Result<[u8; 32], TlsError> {
        let refused = |reason: String| TlsError::RosterCertificate {
            member: member.to_owned(),
            reason,
        };
        let cert = CertificateDer::from(der);
        self.verifier
            .verify_client_cert(&cert, &[], UnixTime::now())
            .map_err(|e| refused(e.to_string()))?;
        let name = identity_from_der(&cert).map_err(|e| refused(e.to_string()))?;
        if name != member {
            return Err(refused(format!("it was issued to {name:?}")));
        }
        signing_key_from_der(&cert)
            .map_err(|e| refused(e.to_string()))?
            .ok_or_else(|| refused("it certifies no signing key".into()))
    }
}
