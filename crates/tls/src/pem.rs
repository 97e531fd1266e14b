//! Reading certificates and private keys from PEM files.

use std::path::Path;

use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

const CERTIFICATE: &str = "a PEM \"CERTIFICATE\" block";
const PRIVATE_KEY: &str = "a PEM \"PRIVATE KEY\", \"EC PRIVATE KEY\" or \"RSA PRIVATE KEY\" block";

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn bad_pem(path: &Path, expected: &'static str, error: &pem::Error) -> TlsError {
    TlsError::BadPem {
        path: path.to_path_buf(),
        expected,
        detail: error.to_string(),
    }
}

/// Reads every `CERTIFICATE` block of a PEM file, in order (leaf first for a
/// chain). Other blocks (e.g. a key in the same file) are skipped.
///
/// # Errors
/// [`TlsError::Read`] when the file cannot be read, [`TlsError::BadPem`] when
/// it is not valid PEM, [`TlsError::NoCertificate`] when it holds no
/// certificate.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(path, CERTIFICATE, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Reads the first private key (PKCS#8, SEC1 or PKCS#1) of a PEM file.
///
/// # Errors
/// [`TlsError::Read`] when the file cannot be read, [`TlsError::BadPem`] when
/// it is not valid PEM, [`TlsError::NoPrivateKey`] when it holds no key.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    match PrivateKeyDer::from_pem_slice(&bytes) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        }),
        Err(e) => Err(bad_pem(path, PRIVATE_KEY, &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn empty_file_has_no_certificate_and_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "empty.pem", "");
        let error = load_certs(&path).unwrap_err();
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("\"CERTIFICATE\""), "{message}");
    }

    #[test]
    fn broken_base64_is_bad_pem() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        );
        let error = load_certs(&path).unwrap_err();
        assert!(matches!(error, TlsError::BadPem { .. }), "{error:?}");
        assert!(error.to_string().contains("broken.pem"), "{error}");
    }

    #[test]
    fn missing_end_marker_is_bad_pem() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "cut.pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
        let error = load_certs(&path).unwrap_err();
        assert!(matches!(error, TlsError::BadPem { .. }), "{error:?}");
    }

    #[test]
    fn missing_file_is_a_read_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.pem");
        let error = load_private_key(&path).unwrap_err();
        assert!(matches!(error, TlsError::Read { .. }), "{error:?}");
        assert!(error.to_string().contains("absent.pem"), "{error}");
    }

    #[test]
    fn certificate_file_has_no_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(["a".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let path = write(dir.path(), "cert.pem", &cert.pem());
        assert_eq!(load_certs(&path).unwrap().len(), 1);
        let error = load_private_key(&path).unwrap_err();
        assert!(matches!(error, TlsError::NoPrivateKey { .. }), "{error:?}");
        assert!(error.to_string().contains("cert.pem"), "{error}");

        let key_path = write(dir.path(), "key.pem", &key.serialize_pem());
        assert!(matches!(
            load_private_key(&key_path).unwrap(),
            PrivateKeyDer::Pkcs8(_)
        ));
        let error = load_certs(&key_path).unwrap_err();
        assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
    }
}
