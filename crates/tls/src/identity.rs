//! Who a peer is: the Common Name of its leaf certificate's subject, and the
//! Ed25519 key with which it signs what it contributes.

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

/// How a certificate names its holder's Ed25519 signing key: a URI subject
/// alternative name `urn:medfed:signing-key:ed25519:` followed by the 32-byte
/// public key in lowercase hex. The member asks for it in its signing request
/// and the consortium CA certifies it, which binds the signing key to the
/// member's identity at enrolment.
pub const SIGNING_KEY_URI_PREFIX: &str = "urn:medfed:signing-key:ed25519:";

/// The URI subject alternative name that names `public_key` (see
/// [`SIGNING_KEY_URI_PREFIX`]).
pub fn signing_key_uri(public_key: &[u8; 32]) -> String {
    let mut uri = String::with_capacity(SIGNING_KEY_URI_PREFIX.len() + 64);
    uri.push_str(SIGNING_KEY_URI_PREFIX);
    for byte in public_key {
        uri.push_str(&format!("{byte:02x}"));
    }
    uri
}

/// Parses one signing-key URI; `None` when `uri` is not one at all.
///
/// # Errors
/// A URI with the prefix whose key is not 64 lowercase hex digits.
pub fn parse_signing_key_uri(uri: &str) -> Option<Result<[u8; 32], String>> {
    let hex = uri.strip_prefix(SIGNING_KEY_URI_PREFIX)?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Some(Err(format!(
            "the key has {} characters; expected 64 lowercase hex digits",
            hex.len()
        )));
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        let pair = &hex[2 * i..2 * i + 2];
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(Ok(key))
}

/// The Ed25519 signing key a certificate certifies (see
/// [`SIGNING_KEY_URI_PREFIX`]), or `None` when it names none.
///
/// # Errors
/// [`TlsError::BadCertificate`] when `cert` is not X.509 DER, and
/// [`TlsError::BadSigningKey`] when it names a malformed key or several.
pub fn signing_key_from_der(cert: &CertificateDer<'_>) -> Result<Option<[u8; 32]>, TlsError> {
    let (_, cert) =
        X509Certificate::from_der(cert.as_ref()).map_err(|e| TlsError::BadCertificate {
            detail: e.to_string(),
        })?;
    let bad = |problem: String| TlsError::BadSigningKey {
        subject: cert.subject().to_string(),
        problem,
    };
    let Some(sans) = cert
        .subject_alternative_name()
        .map_err(|e| bad(format!("unreadable subject alternative names: {e}")))?
    else {
        return Ok(None);
    };
    let mut found = None;
    for name in &sans.value.general_names {
        if let x509_parser::extensions::GeneralName::URI(uri) = name
            && let Some(parsed) = parse_signing_key_uri(uri)
        {
            let key = parsed.map_err(bad)?;
            if found.replace(key).is_some() {
                return Err(bad("more than one signing key".into()));
            }
        }
    }
    Ok(found)
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
    fn signing_key_round_trips_through_a_certificate() {
        let key = [0xab; 32];
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            signing_key_uri(&key).try_into().unwrap(),
        ));
        let der = params
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap()
            .der()
            .clone();
        assert_eq!(signing_key_from_der(&der).unwrap(), Some(key));
        let plain = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&KeyPair::generate().unwrap())
            .unwrap();
        assert_eq!(signing_key_from_der(plain.der()).unwrap(), None);
    }

    #[test]
    fn malformed_signing_keys_are_errors() {
        assert!(parse_signing_key_uri("urn:other").is_none());
        assert!(
            parse_signing_key_uri(&format!("{SIGNING_KEY_URI_PREFIX}abc"))
                .unwrap()
                .is_err()
        );
        let upper = format!("{SIGNING_KEY_URI_PREFIX}{}", "AB".repeat(32));
        assert!(parse_signing_key_uri(&upper).unwrap().is_err());
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
