//! Certificates that the consortium CA really signed but that must still be
//! refused: expired, not yet valid, or issued for server use only. Made
//! here with rcgen from the CA's own key, the way a careless or compromised
//! provisioning step might make them.

use std::path::Path;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// What is wrong with a crafted certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// Its validity ended yesterday.
    Expired,
    /// Its validity starts tomorrow.
    NotYetValid,
    /// Its extended key usage is server authentication only.
    ServerUsage,
}

/// Writes `<dir>/<name>.pem`, `<name>.key` and `<name>.sign.key`: a member
/// certificate for `name` (with a certified signing key) signed by the CA
/// in `ca_dir`, with `flaw`.
///
/// # Panics
/// On any failure: this is test support.
pub fn craft(ca_dir: &Path, dir: &Path, name: &str, flaw: Flaw) {
    std::fs::create_dir_all(dir).expect("dir");
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(ca_dir.join("ca.key")).expect("ca key"))
            .expect("CA key");
    let issuer = Issuer::from_ca_cert_pem(
        &std::fs::read_to_string(ca_dir.join("ca.pem")).expect("ca cert"),
        ca_key,
    )
    .expect("issuer");
    let signing = medfed_audit::SigningKey::generate().expect("signing key");
    signing
        .write_new(&dir.join(format!("{name}.sign.key")))
        .expect("write signing key");
    let uri = medfed_tls::signing_key_uri(signing.public_key().as_bytes());

    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, name);
    params.subject_alt_names = vec![SanType::URI(uri.try_into().expect("uri"))];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(30);
    params.not_after = now + Duration::days(30);
    match flaw {
        Flaw::Expired => params.not_after = now - Duration::days(1),
        Flaw::NotYetValid => params.not_before = now + Duration::days(1),
        Flaw::ServerUsage => {
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        }
    }
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &issuer).expect("sign");
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write cert");
    std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write key");
}
