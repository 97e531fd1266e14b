//! The provisioning steps as an operator and a hospital run them.

use std::path::Path;

use medfed_certs::{CertsError, create_ca, create_server, demo, request, sign};
use x509_parser::prelude::{FromDer, X509Certificate};

fn parse(path: &Path) -> Vec<u8> {
    let text = std::fs::read(path).unwrap();
    x509_parser::pem::parse_x509_pem(&text).unwrap().1.contents
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn hospital_key_stays_home_and_the_operator_signs_its_request() {
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("operator/ca");
    let home = root.path().join("hospital");
    create_ca(&ca, "test CA", 30).unwrap();
    let csr = request(&home, "hospital-a").unwrap();
    // The operator sees only the request, which holds no private key.
    let csr_text = std::fs::read_to_string(&csr).unwrap();
    assert!(csr_text.contains("CERTIFICATE REQUEST"));
    assert!(!csr_text.contains("PRIVATE KEY"));

    let cert_path = root.path().join("operator/hospital-a.pem");
    let name = sign(&ca, &csr, &cert_path, Some("hospital-a"), 30).unwrap();
    assert_eq!(name, "hospital-a");

    let der = parse(&cert_path);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let cn: Vec<_> = cert.subject().iter_common_name().collect();
    assert_eq!(cn.len(), 1);
    assert_eq!(cn[0].as_str().unwrap(), "hospital-a");
    assert!(!cert.is_ca());
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    // The certificate's key is the hospital's own.
    let key_pem = std::fs::read_to_string(home.join("hospital-a.key")).unwrap();
    let key = rcgen::KeyPair::from_pem(&key_pem).unwrap();
    assert_eq!(
        cert.public_key().raw,
        rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
    );
    // The certificate certifies the hospital's own Ed25519 signing key.
    let signing_pem = std::fs::read_to_string(home.join("hospital-a.sign.key")).unwrap();
    let pkcs8 = pem::parse(&signing_pem).unwrap();
    let pair = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.contents()).unwrap();
    let certified = medfed_tls::signing_key_from_der(&der.clone().into())
        .unwrap()
        .expect("a signing key in the certificate");
    assert_eq!(
        &certified[..],
        ring::signature::KeyPair::public_key(&pair).as_ref()
    );
    // Issued by the CA and verifiable with its key.
    let ca_der = parse(&ca.join("ca.pem"));
    let (_, ca_cert) = X509Certificate::from_der(&ca_der).unwrap();
    assert_eq!(cert.issuer(), ca_cert.subject());
    let days =
        (cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp()) / 86_400;
    assert_eq!(days, 30, "30 days plus the 5-minute backdating");

    #[cfg(unix)]
    {
        assert_eq!(mode(&ca.join("ca.key")), 0o600);
        assert_eq!(mode(&home.join("hospital-a.key")), 0o600);
        assert_eq!(mode(&home.join("hospital-a.sign.key")), 0o600);
    }
}

#[test]
fn a_request_for_another_name_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca");
    create_ca(&ca, "test CA", 30).unwrap();
    let csr = request(root.path(), "mallory").unwrap();
    let out = root.path().join("x.pem");
    let error = sign(&ca, &csr, &out, Some("hospital-a"), 30).unwrap_err();
    assert!(
        matches!(&error, CertsError::UnexpectedName { got, .. } if got == "mallory"),
        "{error}"
    );
    assert!(!out.exists());
}

#[test]
fn a_tampered_request_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca");
    create_ca(&ca, "test CA", 30).unwrap();
    let csr = request(root.path(), "hospital-a").unwrap();
    // Flip one bit inside the DER of the request: its signature breaks.
    let pem = std::fs::read(&csr).unwrap();
    let mut der = x509_parser::pem::parse_x509_pem(&pem).unwrap().1.contents;
    let middle = der.len() / 3;
    der[middle] ^= 0x01;
    let bad = rcgen::CertificateSigningRequestParams::from_der(&der.clone().into());
    assert!(bad.is_err(), "a flipped bit must not verify");
    std::fs::write(
        &csr,
        pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", der)),
    )
    .unwrap();
    let error = sign(&ca, &csr, &root.path().join("x.pem"), None, 30).unwrap_err();
    let text = error.to_string();
    assert!(text.contains("hospital-a.csr"), "{text}");
    assert!(text.contains("signing request"), "{text}");
}

#[test]
fn nothing_is_overwritten() {
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca");
    create_ca(&ca, "test CA", 30).unwrap();
    let before = std::fs::read(ca.join("ca.key")).unwrap();
    let error = create_ca(&ca, "test CA", 30).unwrap_err();
    assert!(matches!(error, CertsError::Exists { .. }), "{error}");
    assert_eq!(std::fs::read(ca.join("ca.key")).unwrap(), before);
}

#[test]
fn a_key_that_is_not_the_ca_key_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca");
    let other = root.path().join("other");
    create_ca(&ca, "test CA", 30).unwrap();
    create_ca(&other, "other CA", 30).unwrap();
    std::fs::remove_file(ca.join("ca.key")).unwrap();
    std::fs::copy(other.join("ca.key"), ca.join("ca.key")).unwrap();
    let error = create_server(
        &ca,
        &root.path().join("srv"),
        "coordinator",
        &["localhost".into()],
        30,
    )
    .unwrap_err();
    assert!(matches!(error, CertsError::KeyMismatch { .. }), "{error}");
}

#[test]
fn bad_inputs_name_the_problem() {
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca");
    assert!(matches!(
        create_ca(&ca, "x", 0).unwrap_err(),
        CertsError::BadDays { got: 0, .. }
    ));
    create_ca(&ca, "test CA", 30).unwrap();
    let error = create_server(
        &ca,
        &root.path().join("s"),
        "coordinator",
        &["bad name!".into()],
        30,
    )
    .unwrap_err();
    assert!(error.to_string().contains("bad name!"), "{error}");
    let error = demo(
        &root.path().join("d"),
        &["a".into(), "a".into()],
        &["127.0.0.1".into()],
    )
    .unwrap_err();
    assert!(
        matches!(error, CertsError::DuplicateMember { .. }),
        "{error}"
    );
    let error = request(root.path(), "Bad Name").unwrap_err();
    assert!(error.to_string().contains("Bad Name"), "{error}");
}

#[test]
fn demo_lays_out_a_whole_consortium() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("pki");
    let members = ["cleveland".to_string(), "va".to_string()];
    demo(&out, &members, &["127.0.0.1".into(), "localhost".into()]).unwrap();
    for file in [
        "ca/ca.pem",
        "ca/ca.key",
        "coordinator/coordinator.pem",
        "coordinator/coordinator.key",
        "coordinator/ca.pem",
        "cleveland/cleveland.pem",
        "cleveland/cleveland.key",
        "cleveland/ca.pem",
        "va/va.pem",
    ] {
        assert!(out.join(file).is_file(), "{file}");
    }
    let der = parse(&out.join("coordinator/coordinator.pem"));
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let sans = cert.subject_alternative_name().unwrap().unwrap();
    // 127.0.0.1, localhost, and the coordinator's signing key.
    assert_eq!(sans.value.general_names.len(), 3);
    assert!(
        medfed_tls::signing_key_from_der(&der.clone().into())
            .unwrap()
            .is_some()
    );
    assert!(out.join("coordinator/coordinator.sign.key").is_file());
    assert!(out.join("va/va.sign.key").is_file());
    // A second run refuses instead of replacing the CA.
    assert!(demo(&out, &members, &["127.0.0.1".into()]).is_err());
}

#[test]
fn a_request_without_a_signing_key_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let ca = root.path().join("ca");
    create_ca(&ca, "test CA", 30).unwrap();
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "hospital-a");
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = root.path().join("plain.csr");
    std::fs::write(&csr, params.serialize_request(&key).unwrap().pem().unwrap()).unwrap();
    let error = sign(&ca, &csr, &root.path().join("x.pem"), None, 30).unwrap_err();
    assert!(error.to_string().contains("no signing key"), "{error}");
}
