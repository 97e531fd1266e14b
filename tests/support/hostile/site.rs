//! The hospital that faces the hostile coordinator: a real `node` process
//! on a vault imported with `node import`, run from a node file, and its
//! exchange log read back with `medfed-audit`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::server::{HostileCoordinator, Script};
use crate::{Guard, NodeRun, bin, run_ok, wait_with_timeout};

/// The exchange-log kinds of everything a node computes from its rows: none
/// of them may be in the log of a node that refused before computing.
pub const ROW_DERIVED_KINDS: &[&str] = &[
    "statistics",
    "histograms",
    "update",
    "newton-terms",
    "normal-terms",
    "baseline",
    "evaluation",
    "secagg",
];

/// Longest a node run may take before it is killed and the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// One entry of an exchange log, as `medfed-audit list --json` shows it.
#[derive(Clone, Debug)]
pub struct LogEntry {
    /// Sequence number.
    pub seq: u64,
    /// `in`, `out` or `local`.
    pub direction: String,
    /// The message kind (`join`, `refusal`, `evaluation`, ...).
    pub kind: String,
    /// The peer (the coordinator's name for messages).
    pub peer: String,
    /// SHA-256 of the payload, as hex.
    pub sha256: String,
}

/// A member's certificate (DER) and the signing key it certifies.
#[derive(Clone)]
pub struct Identity {
    /// The member name.
    pub name: String,
    /// The certificate's DER.
    pub certificate: Vec<u8>,
    /// The Ed25519 signing key.
    pub signing_key: medfed_audit::SigningKey,
}

impl Identity {
    fn read(name: &str, cert: &Path, signing_key: &Path) -> Identity {
        let certs = medfed_tls::load_certs(cert).expect("certificate");
        Identity {
            name: name.to_owned(),
            certificate: certs[0].as_ref().to_vec(),
            signing_key: medfed_audit::SigningKey::from_file(signing_key).expect("signing key"),
        }
    }

    /// The roster entry that names this certificate.
    pub fn roster_member(&self) -> medfed_wire::RosterMember {
        let hex = medfed_tls::certificate_sha256(&self.certificate);
        let mut digest = [0u8; 32];
        for (i, byte) in digest.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
        }
        medfed_wire::RosterMember {
            name: self.name.clone(),
            certificate_sha256: digest,
            certificate: Some(self.certificate.clone()),
        }
    }
}

/// A hospital in a temporary folder: the consortium's certificates (made by
/// `medfed-certs demo`, so a hostile coordinator can be served with the
/// real coordinator certificate), a vault, a vault key and an audit key.
pub struct Hospital {
    dir: tempfile::TempDir,
    name: String,
}

impl Hospital {
    /// Provisions the consortium PKI with member `name`, imports `csv` (the
    /// text of a CSV file, header row first) into `records.vault` with
    /// `target` as the required column, and makes the audit key.
    ///
    /// # Panics
    /// When a step fails.
    pub fn new(name: &str, csv: &str, target: &str) -> Hospital {
        Hospital::with_peers(name, &[], csv, target)
    }

    /// [`Hospital::new`], with certificates for the other members `peers`
    /// provisioned in the same consortium PKI (see [`Hospital::identity`]).
    ///
    /// # Panics
    /// When a step fails.
    pub fn with_peers(name: &str, peers: &[&str], csv: &str, target: &str) -> Hospital {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let mut demo = Command::new(bin("medfed-certs"));
        demo.arg("demo")
            .arg("--out")
            .arg(root.join("pki"))
            .args(["--member", name]);
        for peer in peers {
            demo.args(["--member", peer]);
        }
        run_ok(demo.args(["--san", "127.0.0.1", "--san", "localhost"]));
        let records = root.join("records.csv");
        fs::write(&records, csv).expect("write the CSV");
        run_ok(
            Command::new(bin("node"))
                .arg("import")
                .arg("--csv")
                .arg(&records)
                .arg("--vault")
                .arg(root.join("records.vault"))
                .arg("--vault-key-file")
                .arg(root.join("vault.key"))
                .arg("--create-key")
                .args(["--target", target]),
        );
        run_ok(
            Command::new(bin("medfed-audit"))
                .args(["keygen", "--audit-key-file"])
                .arg(root.join("audit.key")),
        );
        Hospital {
            dir,
            name: name.to_owned(),
        }
    }

    /// The member name its certificate carries.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its folder.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The consortium PKI (`ca/`, `coordinator/`, `<name>/`).
    pub fn pki(&self) -> PathBuf {
        self.root().join("pki")
    }

    /// A hostile coordinator serving `script` with this consortium's
    /// coordinator certificate.
    pub fn coordinator(&self, script: Script) -> HostileCoordinator {
        HostileCoordinator::start(&self.pki(), script)
    }

    /// Writes the node file `node.toml` for the coordinator at `url`, with
    /// `policy` as the body of its `[policy]` table and `extra` (more
    /// tables, e.g. `[privacy]`) after it; returns its path.
    pub fn node_file(&self, url: &str, policy: &str, extra: &str) -> PathBuf {
        let name = &self.name;
        let text = format!(
            "[coordinator]\n\
             address = \"{url}\"\n\
             server_name = \"localhost\"\n\
             connect_timeout_seconds = 10\n\
             \n\
             [vault]\n\
             path = \"records.vault\"\n\
             key_file = \"vault.key\"\n\
             \n\
             [tls]\n\
             ca = \"pki/{name}/ca.pem\"\n\
             cert = \"pki/{name}/{name}.pem\"\n\
             key = \"pki/{name}/{name}.key\"\n\
             signing_key = \"pki/{name}/{name}.sign.key\"\n\
             \n\
             [audit]\n\
             log = \"exchange.log\"\n\
             key_file = \"audit.key\"\n\
             \n\
             [policy]\n\
             {policy}\n\
             \n\
             {extra}\n"
        );
        let path = self.root().join("node.toml");
        fs::write(&path, text).expect("write the node file");
        path
    }

    /// `node run --config <node_file>`, killed if it runs past a generous
    /// timeout.
    ///
    /// # Panics
    /// When it cannot start or does not finish in time.
    pub fn run(&self, node_file: &Path) -> NodeRun {
        let out = self.root().join("node.stdout");
        let err = self.root().join("node.stderr");
        let mut child = Guard(
            Command::new(bin("node"))
                .arg("run")
                .arg("--config")
                .arg(node_file)
                .stdin(Stdio::null())
                .stdout(fs::File::create(&out).expect("stdout file"))
                .stderr(fs::File::create(&err).expect("stderr file"))
                .spawn()
                .expect("start node"),
        );
        let status = wait_with_timeout(&mut child, RUN_TIMEOUT);
        NodeRun {
            name: self.name.clone(),
            status,
            stdout: fs::read_to_string(out).unwrap_or_default(),
            stderr: fs::read_to_string(err).unwrap_or_default(),
            killed_stdout: None,
        }
    }

    /// `node <args> --config <node_file>` to completion (e.g. `task
    /// approve`).
    ///
    /// # Panics
    /// When it cannot start.
    pub fn node(&self, args: &[&str], node_file: &Path) -> Output {
        Command::new(bin("node"))
            .args(args)
            .arg("--config")
            .arg(node_file)
            .stdin(Stdio::null())
            .output()
            .expect("run node")
    }

    /// The certificate and signing key of member `name` as the consortium
    /// PKI issued them (`pki/<name>/`).
    ///
    /// # Panics
    /// When they cannot be read.
    pub fn identity(&self, name: &str) -> Identity {
        let dir = self.pki().join(name);
        Identity::read(
            name,
            &dir.join(format!("{name}.pem")),
            &dir.join(format!("{name}.sign.key")),
        )
    }

    /// A second certificate under member `name`'s name, issued by the
    /// consortium CA for a new key (as an operator who runs the CA could):
    /// `medfed-certs request` and `sign`, in `pki/second-<name>/`.
    ///
    /// # Panics
    /// When a step fails.
    pub fn second_identity(&self, name: &str) -> Identity {
        let dir = self.pki().join(format!("second-{name}"));
        run_ok(
            Command::new(bin("medfed-certs"))
                .args(["request", "--name", name, "--out"])
                .arg(&dir),
        );
        let cert = dir.join(format!("{name}.pem"));
        run_ok(
            Command::new(bin("medfed-certs"))
                .arg("sign")
                .arg("--ca-dir")
                .arg(self.pki().join("ca"))
                .arg("--csr")
                .arg(dir.join(format!("{name}.csr")))
                .arg("--out")
                .arg(&cert)
                .args(["--expect-name", name]),
        );
        Identity::read(name, &cert, &dir.join(format!("{name}.sign.key")))
    }

    /// The exchange log's path.
    pub fn log_path(&self) -> PathBuf {
        self.root().join("exchange.log")
    }

    /// The exchange log, checked with `medfed-audit verify` (chain,
    /// payloads and member signatures, against the signing key the
    /// hospital's certificate certifies) and listed with `medfed-audit list
    /// --json`.
    ///
    /// # Panics
    /// When the log does not verify or cannot be listed.
    pub fn exchange_log(&self) -> Vec<LogEntry> {
        let log = self.log_path();
        let cert = self
            .pki()
            .join(&self.name)
            .join(format!("{}.pem", self.name));
        let leaf = medfed_tls::load_certs(&cert).expect("certificate");
        let key = medfed_tls::signing_key_from_der(&leaf[0])
            .expect("readable certificate")
            .expect("a certified signing key");
        let writer_key: String = key.iter().map(|b| format!("{b:02x}")).collect();
        run_ok(
            Command::new(bin("medfed-audit"))
                .arg("verify")
                .arg(&log)
                .arg("--audit-key-file")
                .arg(self.root().join("audit.key"))
                .args(["--writer-key", &writer_key]),
        );
        let listed: serde_json::Value = serde_json::from_str(&run_ok(
            Command::new(bin("medfed-audit"))
                .arg("list")
                .arg(&log)
                .arg("--json"),
        ))
        .expect("JSON listing");
        let text = |entry: &serde_json::Value, key: &str| {
            entry[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key} in {entry}"))
                .to_owned()
        };
        listed["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|entry| LogEntry {
                seq: entry["seq"].as_u64().expect("seq"),
                direction: text(entry, "direction"),
                kind: text(entry, "kind"),
                peer: text(entry, "peer"),
                sha256: text(entry, "sha256"),
            })
            .collect()
    }

    /// The payload of log entry `seq`, decrypted and decoded by `medfed-audit
    /// show --json`.
    ///
    /// # Panics
    /// When the entry cannot be shown.
    pub fn show(&self, seq: u64) -> serde_json::Value {
        let shown: serde_json::Value = serde_json::from_str(&run_ok(
            Command::new(bin("medfed-audit"))
                .arg("show")
                .arg(self.log_path())
                .args(["--seq", &seq.to_string()])
                .arg("--audit-key-file")
                .arg(self.root().join("audit.key"))
                .arg("--json"),
        ))
        .expect("JSON entry");
        shown["payload"].clone()
    }
}
