//! The four provisioning steps: create the consortium CA, issue the
//! coordinator's server certificate, create a hospital's key and signing
//! request, and sign that request.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use time::{Duration, OffsetDateTime};

use crate::CertsError;
use crate::files::{Secrecy, create_dir, ensure_absent, in_dir, read_pem, write_new};
use crate::name::check_name;

/// Default validity of the consortium CA, in days (ten years).
pub const CA_DAYS: u32 = 3650;
/// Default validity of coordinator and hospital certificates, in days.
pub const LEAF_DAYS: u32 = 825;
/// The longest validity accepted for any certificate, in days.
pub const MAX_DAYS: u32 = 3650;

/// Backdating of `not_before`, so that a peer whose clock is a little behind
/// does not see a brand-new certificate as not yet valid.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Where a consortium CA lives: `DIR/ca.pem` (public) and `DIR/ca.key`
/// (secret, mode 0600).
#[derive(Debug, Clone)]
pub struct CaFiles {
    /// The CA certificate.
    pub cert: PathBuf,
    /// The CA private key.
    pub key: PathBuf,
}

impl CaFiles {
    /// The files of the CA in `dir`.
    pub fn in_dir(dir: &Path) -> CaFiles {
        CaFiles {
            cert: in_dir(dir, "ca.pem"),
            key: in_dir(dir, "ca.key"),
        }
    }
}

/// Creates a consortium CA in `dir`: `ca.pem` and `ca.key` (0600).
///
/// # Errors
/// Either file exists already, `days` is out of range, or a write fails.
pub fn create_ca(dir: &Path, common_name: &str, days: u32) -> Result<CaFiles, CertsError> {
    let files = CaFiles::in_dir(dir);
    ensure_absent(&[&files.cert, &files.key])?;
    let mut params = base_params(common_name, days)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().map_err(CertsError::rcgen("generate the CA key"))?;
    let cert = params
        .self_signed(&key)
        .map_err(CertsError::rcgen("self-sign the CA certificate"))?;
    create_dir(dir)?;
    write_new(&files.key, &key.serialize_pem(), Secrecy::Secret)?;
    write_new(&files.cert, &cert.pem(), Secrecy::Public)?;
    Ok(files)
}

/// Issues the coordinator's server certificate, signed by the CA in
/// `ca_dir`, into `out`: `<name>.pem`, `<name>.key` (0600) and a copy of
/// `ca.pem`. `sans` are the addresses nodes dial (IP addresses or DNS names).
///
/// # Errors
/// A bad name, SAN or validity, an unreadable or mismatched CA, or an output
/// file that exists already.
pub fn create_server(
    ca_dir: &Path,
    out: &Path,
    name: &str,
    sans: &[String],
    days: u32,
) -> Result<PathBuf, CertsError> {
    check_name(name)?;
    let (ca_pem, issuer) = load_issuer(&CaFiles::in_dir(ca_dir))?;
    let cert_path = in_dir(out, format!("{name}.pem"));
    let key_path = in_dir(out, format!("{name}.key"));
    let signing_path = in_dir(out, format!("{name}.sign.key"));
    let ca_copy = in_dir(out, "ca.pem");
    ensure_absent(&[&cert_path, &key_path, &signing_path, &ca_copy])?;

    let mut params = base_params(name, days)?;
    params.subject_alt_names = sans.iter().map(|s| san(s)).collect::<Result<_, _>>()?;
    let signing = SigningKeyPem::generate()?;
    params.subject_alt_names.push(signing.san()?);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(CertsError::rcgen("generate the server key"))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(CertsError::rcgen("sign the server certificate"))?;
    create_dir(out)?;
    write_new(&key_path, &key.serialize_pem(), Secrecy::Secret)?;
    write_new(&signing_path, &signing.pem, Secrecy::Secret)?;
    write_new(&cert_path, &cert.pem(), Secrecy::Public)?;
    write_new(&ca_copy, &ca_pem, Secrecy::Public)?;
    Ok(cert_path)
}

/// A hospital's first step, on its own machine: creates its TLS private key
/// `<name>.key` (0600), its Ed25519 signing key `<name>.sign.key` (0600), and
/// a certificate signing request `<name>.csr` in `out` that asks the CA to
/// certify both the name and the signing key's public half. Only the request
/// goes to the operator.
///
/// # Errors
/// A bad name, an output file that exists already, or a write failure.
pub fn request(out: &Path, name: &str) -> Result<PathBuf, CertsError> {
    check_name(name)?;
    let key_path = in_dir(out, format!("{name}.key"));
    let signing_path = in_dir(out, format!("{name}.sign.key"));
    let csr_path = in_dir(out, format!("{name}.csr"));
    ensure_absent(&[&key_path, &signing_path, &csr_path])?;
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_only(name);
    let signing = SigningKeyPem::generate()?;
    params.subject_alt_names = vec![signing.san()?];
    let key = KeyPair::generate().map_err(CertsError::rcgen("generate the member key"))?;
    let csr = params
        .serialize_request(&key)
        .map_err(CertsError::rcgen("build the signing request"))?;
    let csr_pem = csr
        .pem()
        .map_err(CertsError::rcgen("encode the signing request"))?;
    create_dir(out)?;
    write_new(&key_path, &key.serialize_pem(), Secrecy::Secret)?;
    write_new(&signing_path, &signing.pem, Secrecy::Secret)?;
    write_new(&csr_path, &csr_pem, Secrecy::Public)?;
    Ok(csr_path)
}

/// The operator's step: checks the request at `csr` (its signature proves
/// the requester holds the key) and signs a client certificate for the name
/// it carries, written to `out`. When `expected` is given, a request for any
/// other name is refused.
///
/// Only the requester's public key, Common Name and signing key (a URI
/// subject alternative name, see `medfed_tls::SIGNING_KEY_URI_PREFIX`) are
/// taken from the request; everything else (CA flag, key usages, other
/// names, validity) is set here, so a request cannot ask for more than a
/// member certificate.
///
/// # Errors
/// An unreadable, malformed or badly signed request, a name that breaks the
/// naming rule or differs from `expected`, a bad validity, an unreadable or
/// mismatched CA, or `out` existing already. Returns the member's name.
pub fn sign(
    ca_dir: &Path,
    csr: &Path,
    out: &Path,
    expected: Option<&str>,
    days: u32,
) -> Result<String, CertsError> {
    ensure_absent(&[out])?;
    let (_, issuer) = load_issuer(&CaFiles::in_dir(ca_dir))?;
    let text = read_pem(csr)?;
    let mut request =
        CertificateSigningRequestParams::from_pem(&text).map_err(|error| CertsError::BadFile {
            path: csr.to_owned(),
            what: format!(
                "not a valid certificate signing request ({error}); expected the .csr \
                 written by `medfed-certs request`"
            ),
        })?;
    let name = request_name(csr, &request.params.distinguished_name)?;
    check_name(&name)?;
    if let Some(expected) = expected
        && expected != name
    {
        return Err(CertsError::UnexpectedName {
            path: csr.to_owned(),
            expected: expected.to_owned(),
            got: name,
        });
    }
    let signing = request_signing_key(csr, &request.params.subject_alt_names)?;
    let mut params = base_params(&name, days)?;
    params.subject_alt_names = vec![signing];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    request.params = params;
    let cert = request
        .signed_by(&issuer)
        .map_err(CertsError::rcgen("sign the member certificate"))?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir(parent)?;
    }
    write_new(out, &cert.pem(), Secrecy::Public)?;
    Ok(name)
}

/// Parameters every certificate here shares: a subject holding only the
/// Common Name, a random serial number and a validity of `days` from now.
fn base_params(common_name: &str, days: u32) -> Result<CertificateParams, CertsError> {
    if days == 0 || days > MAX_DAYS {
        return Err(CertsError::BadDays {
            got: days,
            max: MAX_DAYS,
        });
    }
    let mut serial = [0u8; 16];
    SystemRandom::new()
        .fill(&mut serial)
        .map_err(|_| CertsError::Rcgen {
            step: "draw a serial number",
            source: rcgen::Error::RingUnspecified,
        })?;
    // A positive INTEGER: clear the top bit.
    serial[0] &= 0x7f;
    let now = OffsetDateTime::now_utc();
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name_only(common_name);
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + Duration::days(i64::from(days));
    Ok(params)
}

fn common_name_only(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// The single Common Name of a request's subject.
fn request_name(path: &Path, dn: &DistinguishedName) -> Result<String, CertsError> {
    let bad = |what: &str| CertsError::BadFile {
        path: path.to_owned(),
        what: what.to_owned(),
    };
    match dn.get(&DnType::CommonName) {
        Some(rcgen::DnValue::Utf8String(s)) => Ok(s.clone()),
        Some(rcgen::DnValue::PrintableString(s)) => Ok(s.as_str().to_owned()),
        Some(_) => Err(bad("the request's Common Name is not text")),
        None => Err(bad(
            "the request has no Common Name; expected the member's name",
        )),
    }
}

/// A new Ed25519 signing key: its PKCS#8 PEM (`PRIVATE KEY`) and public half.
struct SigningKeyPem {
    pem: String,
    public: [u8; 32],
}

impl SigningKeyPem {
    fn generate() -> Result<SigningKeyPem, CertsError> {
        let failed = || CertsError::Rcgen {
            step: "generate the Ed25519 signing key",
            source: rcgen::Error::RingUnspecified,
        };
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| failed())?;
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| failed())?;
        let public = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| failed())?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", pkcs8.as_ref().to_vec()));
        Ok(SigningKeyPem { pem, public })
    }

    fn san(&self) -> Result<SanType, CertsError> {
        let uri = medfed_tls::signing_key_uri(&self.public);
        Ok(SanType::URI(uri.try_into().map_err(CertsError::rcgen(
            "encode the signing key name",
        ))?))
    }
}

/// The one signing-key name a request carries, checked.
fn request_signing_key(path: &Path, names: &[SanType]) -> Result<SanType, CertsError> {
    let bad = |what: String| CertsError::BadFile {
        path: path.to_owned(),
        what,
    };
    let mut found = None;
    for name in names {
        if let SanType::URI(uri) = name
            && let Some(parsed) = medfed_tls::parse_signing_key_uri(uri.as_str())
        {
            parsed.map_err(|problem| bad(format!("bad signing key: {problem}")))?;
            if found.replace(name.clone()).is_some() {
                return Err(bad("the request names more than one signing key".into()));
            }
        }
    }
    found.ok_or_else(|| {
        bad(
            "the request names no signing key; expected a request made by \
             `medfed-certs request`, which adds one"
                .into(),
        )
    })
}

fn san(value: &str) -> Result<SanType, CertsError> {
    if let Ok(ip) = value.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let valid_dns = !value.is_empty()
        && value.len() <= 253
        && value.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !valid_dns {
        return Err(CertsError::BadSan {
            san: value.to_owned(),
        });
    }
    let name = value.try_into().map_err(|_| CertsError::BadSan {
        san: value.to_owned(),
    })?;
    Ok(SanType::DnsName(name))
}

/// Loads the CA: its certificate text and an issuer holding its key, after
/// checking that the key belongs to the certificate.
fn load_issuer(files: &CaFiles) -> Result<(String, Issuer<'static, KeyPair>), CertsError> {
    let cert_pem = read_pem(&files.cert)?;
    let key_pem = read_pem(&files.key)?;
    let key = KeyPair::from_pem(&key_pem).map_err(|error| CertsError::BadFile {
        path: files.key.clone(),
        what: format!("not a PEM private key ({error})"),
    })?;
    let der = rustls_pem_cert(&files.cert, &cert_pem)?;
    let (_, parsed) =
        x509_parser::parse_x509_certificate(&der).map_err(|error| CertsError::BadFile {
            path: files.cert.clone(),
            what: format!("not an X.509 certificate ({error})"),
        })?;
    if !parsed.is_ca() {
        return Err(CertsError::BadFile {
            path: files.cert.clone(),
            what: "not a CA certificate; expected the ca.pem written by `medfed-certs ca`".into(),
        });
    }
    if parsed.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice() {
        return Err(CertsError::KeyMismatch {
            key: files.key.clone(),
            cert: files.cert.clone(),
        });
    }
    let issuer = Issuer::from_ca_cert_der(&der.clone().into(), key).map_err(|error| {
        CertsError::BadFile {
            path: files.cert.clone(),
            what: format!("cannot act as an issuer ({error})"),
        }
    })?;
    Ok((cert_pem, issuer))
}

/// The DER of the first certificate in a PEM text.
fn rustls_pem_cert(path: &Path, text: &str) -> Result<Vec<u8>, CertsError> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(text.as_bytes()).map_err(|error| CertsError::BadFile {
            path: path.to_owned(),
            what: format!("not a PEM certificate ({error})"),
        })?;
    if pem.label != "CERTIFICATE" {
        return Err(CertsError::BadFile {
            path: path.to_owned(),
            what: format!("holds a {:?} block; expected CERTIFICATE", pem.label),
        });
    }
    Ok(pem.contents)
}
