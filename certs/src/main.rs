//! `medfed-certs`: provisioning for a medfed consortium.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use medfed_certs::{CA_DAYS, LEAF_DAYS};

/// Provision a medfed consortium: a certificate authority (CA), the
/// coordinator's server certificate, and hospital certificates signed from
/// requests. A hospital's private key never leaves its machine: it runs
/// `request`, sends the .csr to the operator, and gets a certificate back.
#[derive(Parser)]
#[command(
    version,
    about,
    long_about,
    after_help = "Exit status: 0 success, 2 usage (a missing flag, or a name, --days or --san \
                  value that is not allowed), 4 data (a file that cannot be read or written, \
                  exists already, or does not hold the expected key, certificate or request), \
                  1 anything else."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Anyone: print the SHA-256 of a certificate's DER, the value a
    /// hospital pins in `[policy] coordinator` of its node file (or, for a
    /// member's certificate, in `[policy] member_certificates`).
    ///
    /// Example: medfed-certs fingerprint --cert coordinator/coordinator.pem
    Fingerprint {
        /// The certificate (PEM), e.g. coordinator/coordinator.pem.
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
    },
    /// Operator: create the consortium CA (DIR/ca.pem, DIR/ca.key mode 0600).
    ///
    /// Keep ca.key offline: it signs every member's certificate.
    ///
    /// Example: medfed-certs ca --out ca/
    Ca {
        /// Directory for ca.pem and ca.key (created if needed), e.g. ca/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Common Name of the CA certificate, e.g. "Heart consortium CA".
        #[arg(long, value_name = "NAME", default_value = "medfed consortium CA")]
        name: String,
        /// Validity in days, e.g. 3650.
        #[arg(long, value_name = "DAYS", default_value_t = CA_DAYS)]
        days: u32,
    },
    /// Operator: issue the coordinator's server certificate.
    ///
    /// Writes OUT/<name>.pem, OUT/<name>.key (0600), OUT/<name>.sign.key (0600)
    /// and OUT/ca.pem.
    ///
    /// Example: medfed-certs server --ca-dir ca/ --out coordinator/ --san fl.example.org --san 10.0.0.5
    Server {
        /// Directory of the CA (ca.pem, ca.key), e.g. ca/.
        #[arg(long = "ca-dir", alias = "ca", value_name = "DIR")]
        ca: PathBuf,
        /// Output directory, e.g. coordinator/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Certificate name (Common Name and file name).
        #[arg(long, value_name = "NAME", default_value = "coordinator")]
        name: String,
        /// An address the nodes dial, DNS name or IP address, e.g. fl.example.org
        /// (repeat for several).
        #[arg(long, value_name = "NAME_OR_IP", required = true)]
        san: Vec<String>,
        /// Validity in days, e.g. 365.
        #[arg(long, value_name = "DAYS", default_value_t = LEAF_DAYS)]
        days: u32,
    },
    /// Hospital: create your private keys and a certificate signing request.
    ///
    /// Writes OUT/<name>.key (TLS key, 0600) and OUT/<name>.sign.key (Ed25519
    /// signing key, 0600), which stay here, and OUT/<name>.csr: send it to the
    /// operator.
    ///
    /// Example: medfed-certs request --name my-hospital --out pki/
    Request {
        /// Your member name, as the operator lists it in the task, e.g. my-hospital.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// Output directory, e.g. pki/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Operator: sign a hospital's request into a client certificate.
    ///
    /// The certificate certifies the member name and its signing key; send it
    /// back with ca.pem.
    ///
    /// Example: medfed-certs sign --ca-dir ca/ --csr my-hospital.csr --out my-hospital.pem --expect-name my-hospital
    Sign {
        /// Directory of the CA (ca.pem, ca.key), e.g. ca/.
        #[arg(long = "ca-dir", alias = "ca", value_name = "DIR")]
        ca: PathBuf,
        /// The hospital's request, e.g. my-hospital.csr.
        #[arg(long, value_name = "FILE")]
        csr: PathBuf,
        /// Where to write the certificate (must not exist), e.g. my-hospital.pem.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Refuse the request unless it is for this member name, e.g. my-hospital.
        #[arg(long, value_name = "NAME")]
        expect_name: Option<String>,
        /// Validity in days, e.g. 365.
        #[arg(long, value_name = "DAYS", default_value_t = LEAF_DAYS)]
        days: u32,
    },
    /// Everything at once, for a federation on one machine (tests, demos).
    ///
    /// Writes OUT/ca/, OUT/coordinator/ and OUT/<member>/ for each member.
    ///
    /// Example: medfed-certs demo --out pki --member a --member b --san 127.0.0.1 --san localhost
    Demo {
        /// Output directory, e.g. pki/.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A member name, e.g. cleveland (repeat for each hospital).
        #[arg(long, value_name = "NAME", required = true)]
        member: Vec<String>,
        /// An address the nodes dial for the coordinator, e.g. 127.0.0.1 (repeat
        /// for several).
        #[arg(long, value_name = "NAME_OR_IP", required = true)]
        san: Vec<String>,
    },
}

/// Exit codes, the same for every medfed tool (README, "Exit codes"). 0 is
/// success; clap itself exits with 2 for a malformed command line.
#[derive(Clone, Copy)]
enum Exit {
    Unexpected = 1,
    Usage = 2,
    Data = 4,
}

/// A flag value the library refused is a usage error, like one clap
/// refuses; a file problem is a data error.
fn exit_code(error: &anyhow::Error) -> Exit {
    use medfed_certs::CertsError;
    let Some(error) = error.chain().find_map(|c| c.downcast_ref::<CertsError>()) else {
        return Exit::Unexpected;
    };
    match error {
        CertsError::BadName { .. }
        | CertsError::BadDays { .. }
        | CertsError::BadSan { .. }
        | CertsError::DuplicateMember { .. } => Exit::Usage,
        CertsError::Rcgen { .. } => Exit::Unexpected,
        _ => Exit::Data,
    }
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("medfed-certs: error: {error:#}");
            ExitCode::from(exit_code(&error) as u8)
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Ca { out, name, days } => {
            let files = medfed_certs::create_ca(&out, &name, days)?;
            println!(
                "CA certificate {} and key {} (keep the key offline)",
                files.cert.display(),
                files.key.display()
            );
        }
        Command::Server {
            ca,
            out,
            name,
            san,
            days,
        } => {
            let cert = medfed_certs::create_server(&ca, &out, &name, &san, days)?;
            println!("server certificate {}", cert.display());
        }
        Command::Request { name, out } => {
            let csr = medfed_certs::request(&out, &name)?;
            println!(
                "signing request {}: send it to the operator; the .key beside it stays here",
                csr.display()
            );
        }
        Command::Sign {
            ca,
            csr,
            out,
            expect_name,
            days,
        } => {
            let name = medfed_certs::sign(&ca, &csr, &out, expect_name.as_deref(), days)?;
            println!(
                "certificate for {name}: {} (send it back with ca.pem)",
                out.display()
            );
        }
        Command::Fingerprint { cert } => {
            let certs = medfed_tls::load_certs(&cert)?;
            let Some(leaf) = certs.first() else {
                anyhow::bail!("{} holds no certificate", cert.display());
            };
            println!("{}", medfed_tls::certificate_sha256(leaf.as_ref()));
        }
        Command::Demo { out, member, san } => {
            let layout = medfed_certs::demo(&out, &member, &san)?;
            println!(
                "consortium CA, coordinator and {} members under {}",
                layout.members.len(),
                out.display()
            );
        }
    }
    Ok(())
}
