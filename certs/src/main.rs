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
#[command(version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Operator: create the consortium CA (DIR/ca.pem, DIR/ca.key mode 0600).
    ///
    /// Example: medfed-certs ca --out ca/
    Ca {
        /// Directory for ca.pem and ca.key (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Common Name of the CA certificate.
        #[arg(long, default_value = "medfed consortium CA")]
        name: String,
        /// Validity in days.
        #[arg(long, default_value_t = CA_DAYS)]
        days: u32,
    },
    /// Operator: issue the coordinator's server certificate.
    ///
    /// Writes OUT/<name>.pem, OUT/<name>.key (0600) and OUT/ca.pem.
    /// Example: medfed-certs server --ca ca/ --out coordinator/ --san fl.example.org --san 10.0.0.5
    Server {
        /// Directory of the CA (ca.pem, ca.key).
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Certificate name (Common Name and file name).
        #[arg(long, default_value = "coordinator")]
        name: String,
        /// An address the nodes dial: DNS name or IP address (repeat for several).
        #[arg(long, value_name = "NAME_OR_IP", required = true)]
        san: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = LEAF_DAYS)]
        days: u32,
    },
    /// Hospital: create your private key and a certificate signing request.
    ///
    /// Writes OUT/<name>.key (0600, stays here) and OUT/<name>.csr (send it
    /// to the operator). Example: medfed-certs request --name my-hospital --out pki/
    Request {
        /// Your member name, as the operator lists it in the task.
        #[arg(long)]
        name: String,
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Operator: sign a hospital's request into a client certificate.
    ///
    /// Example: medfed-certs sign --ca ca/ --csr my-hospital.csr --out my-hospital.pem --expect-name my-hospital
    Sign {
        /// Directory of the CA (ca.pem, ca.key).
        #[arg(long, value_name = "DIR")]
        ca: PathBuf,
        /// The hospital's .csr file.
        #[arg(long, value_name = "FILE")]
        csr: PathBuf,
        /// Where to write the certificate (must not exist).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Refuse the request unless it is for this member name.
        #[arg(long, value_name = "NAME")]
        expect_name: Option<String>,
        /// Validity in days.
        #[arg(long, default_value_t = LEAF_DAYS)]
        days: u32,
    },
    /// Everything at once, for a federation on one machine.
    ///
    /// Writes OUT/ca/, OUT/coordinator/ and OUT/<member>/ for each member.
    /// Example: medfed-certs demo --out pki --member a --member b --san 127.0.0.1 --san localhost
    Demo {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// A member name (repeat for each hospital).
        #[arg(long, value_name = "NAME", required = true)]
        member: Vec<String>,
        /// An address the nodes dial for the coordinator (repeat for several).
        #[arg(long, value_name = "NAME_OR_IP", required = true)]
        san: Vec<String>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("medfed-certs: error: {error:#}");
            ExitCode::FAILURE
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
