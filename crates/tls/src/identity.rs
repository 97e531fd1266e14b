//! Who a peer is: the Common Name of its leaf certificate's subject.

use rustls_pki_types::CertificateDer;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::TlsError;

/// The identity of a peer: the Common Name (CN) of the subject of its leaf
/// certificate, e.g. `hospital-a`.
///
/// The certificate is only parsed here, not verified: call this on
/// certificates that rustls has already verified against the consortium CA.
///
/// # Errors
/// [`TlsError::BadCertificate`] when `leaf` is not X.509 DER,
/// [`TlsError::NoCommonName`] when the subject has no CN,
/// [`TlsError::SeveralCommonNames`] when it has more than one, and
/// [`TlsError::CommonNameNotText`] when the CN is not UTF-8 text.
pub fn identity_from_der(leaf: &CertificateDer<'_>) -> Result<String, TlsError> {
    let (_, cert) =
        X509Certificate::from_der(leaf.as_ref()).map_err(|e| TlsError::BadCertificate {
            detail: e.to_string(),
        })?;
    let subject = cert.subject();
    let names: Vec<_> = subject.iter_common_name().collect();
    match names.as_slice() {
        [] => Err(TlsError::NoCommonName {
            subject: subject.to_string(),
        }),
        [name] => name
            .as_str()
            .map(str::to_owned)
            .map_err(|_| TlsError::CommonNameNotText {
                subject: subject.to_string(),
            }),
        several => Err(TlsError::SeveralCommonNames {
            subject: subject.to_string(),
            count: several.len(),
        }),
    }
}

/// The identity of the client that made a tonic request: the CN of the leaf
/// certificate it presented during the mutual-TLS handshake.
///
/// `None` when the connection carried no TLS client certificate (the server
/// was not served through [`incoming`](crate::incoming()) or a TLS acceptor) or
/// when the leaf certificate names nobody; the latter is logged at warn level.
pub fn request_identity<T>(request: &tonic::Request<T>) -> Option<String> {
    let certs = request.peer_certs()?;
    let leaf = certs.first()?;
    match identity_from_der(leaf) {
        Ok(identity) => Some(identity),
        Err(error) => {
            tracing::warn!(
                peer = ?request.remote_addr(),
                %error,
                "a verified client certificate carries no usable identity"
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};

    fn cert_with(dn: DistinguishedName) -> CertificateDer<'static> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = dn;
        params.self_signed(&key).unwrap().der().clone()
    }

    #[test]
    fn single_common_name_is_the_identity() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "medfed");
        dn.push(DnType::CommonName, "hospital-a");
        assert_eq!(identity_from_der(&cert_with(dn)).unwrap(), "hospital-a");
    }

    #[test]
    fn printable_string_common_name_is_accepted() {
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            DnValue::PrintableString("hospital-b".try_into().unwrap()),
        );
        assert_eq!(identity_from_der(&cert_with(dn)).unwrap(), "hospital-b");
    }

    #[test]
    fn missing_common_name_is_an_error() {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "medfed");
        let error = identity_from_der(&cert_with(dn)).unwrap_err();
        assert!(matches!(error, TlsError::NoCommonName { .. }), "{error:?}");
    }

    #[test]
    fn several_common_names_are_an_error() {
        // rcgen keeps one value per attribute type, so build the subject by
        // hand: patch a certificate whose locality becomes a second CN.
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "hospital-a");
        dn.push(DnType::LocalityName, "hospital-z");
        let mut der = cert_with(dn).to_vec();
        // OID 2.5.4.7 (L) = 06 03 55 04 07; CN is 2.5.4.3 = 06 03 55 04 03.
        // The certificate is self-signed, so patch the issuer and the subject.
        let locality = [0x06, 0x03, 0x55, 0x04, 0x07];
        let spots: Vec<usize> = der
            .windows(locality.len())
            .enumerate()
            .filter(|(_, w)| *w == locality)
            .map(|(at, _)| at)
            .collect();
        assert_eq!(spots.len(), 2, "issuer and subject each hold a locality");
        for at in spots {
            der[at + 4] = 0x03;
        }
        let error = identity_from_der(&CertificateDer::from(der)).unwrap_err();
        assert!(
            matches!(error, TlsError::SeveralCommonNames { count: 2, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        let error = identity_from_der(&CertificateDer::from(vec![1, 2, 3])).unwrap_err();
        assert!(
            matches!(error, TlsError::BadCertificate { .. }),
            "{error:?}"
        );
    }
}
