//! Bad inputs, one test per row: every file, certificate, configuration and
//! key a person can get wrong, fed to the real binaries. Each must fail with
//! a non-zero exit and an error that names the problem (the file, line,
//! column, key or peer, and what was expected), and must leave every stored
//! file exactly as it was. The rows are listed in `docs/RELIABILITY.md`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use medfed::{bin, files_below};

/// A consortium on disk: PKI, one site's CSV, vault and keys, a task file.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        ok(Command::new(bin("medfed-certs"))
            .args(["demo", "--out"])
            .arg(root.join("pki"))
            .args(["--member", "site-a", "--san", "127.0.0.1"]));
        std::fs::write(
            root.join("records.csv"),
            "age,chol,y\n63,233,0\n67,,1\n41,204,0\n56,236,1\n",
        )
        .expect("csv");
        ok(Command::new(bin("node"))
            .arg("import")
            .arg("--csv")
            .arg(root.join("records.csv"))
            .arg("--vault")
            .arg(root.join("site.vault"))
            .arg("--key-file")
            .arg(root.join("vault.key"))
            .args(["--create-key", "--target", "y"]));
        ok(Command::new(bin("medfed-audit"))
            .args(["keygen", "--audit-key"])
            .arg(root.join("audit.key")));
        std::fs::write(root.join("task.toml"), GOOD_TASK).expect("task");
        Fixture { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Every file and its bytes.
    fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        files_below(self.dir.path())
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).expect("read");
                (p, bytes)
            })
            .collect()
    }

    /// Runs `program` with `args`, expects a failure whose output contains
    /// every one of `expected`, and checks that no stored file changed
    /// (files the command was given to create may not appear either).
    fn fails(&self, program: &str, args: &[&OsStr], expected: &[&str]) -> String {
        self.fails_with(program, args, expected).1
    }

    /// As [`Fixture::fails`], also returning the exit code.
    fn fails_with(
        &self,
        program: &str,
        args: &[&OsStr],
        expected: &[&str],
    ) -> (Option<i32>, String) {
        let before = self.snapshot();
        let output = Command::new(bin(program))
            .args(args)
            .env_remove("MEDFED_VAULT_KEY")
            .env_remove("MEDFED_AUDIT_KEY")
            .output()
            .expect("run");
        let text = text(&output);
        assert!(!output.status.success(), "{program} succeeded: {text}");
        for needle in expected {
            assert!(text.contains(needle), "{needle:?} not in: {text}");
        }
        assert!(!text.contains("panicked"), "{text}");
        assert_eq!(before, self.snapshot(), "stored files changed");
        (output.status.code(), text)
    }
}

const GOOD_TASK: &str = r#"
[task]
id = "t"
members = ["site-a"]
model = "logistic"
features = ["age", "chol"]
target = "y"
"#;

fn ok(command: &mut Command) {
    let output = command.output().expect("run");
    assert!(output.status.success(), "{command:?}: {}", text(&output));
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn os(path: &Path) -> &OsStr {
    path.as_os_str()
}

// ---- node import: CSV files ------------------------------------------------

/// `node import` of `csv` over the fixture's existing vault, which a failed
/// import must leave as it was.
fn import_args(f: &Fixture, csv: &Path, extra: &[&str]) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "import".into(),
        "--csv".into(),
        csv.into(),
        "--vault".into(),
        f.path("site.vault").into(),
        "--key-file".into(),
        f.path("vault.key").into(),
    ];
    args.extend(extra.iter().map(|s| (*s).into()));
    args
}

fn import_fails(f: &Fixture, csv: &Path, extra: &[&str], expected: &[&str]) -> String {
    let args = import_args(f, csv, extra);
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    f.fails("node", &args, expected)
}

fn bad_csv(contents: &str, expected: &[&str]) {
    let f = Fixture::new();
    let csv = f.path("new.csv");
    std::fs::write(&csv, contents).expect("csv");
    import_fails(&f, &csv, &["--target", "y"], expected);
}

#[test]
fn r01_csv_file_missing() {
    let f = Fixture::new();
    let csv = f.path("nowhere.csv");
    let args = import_args(&f, &csv, &[]);
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    // Exit code 4: a data problem.
    assert_eq!(f.fails_with("node", &args, &["nowhere.csv"]).0, Some(4));
}

#[test]
fn r02_csv_file_empty() {
    bad_csv("", &["new.csv", "header"]);
}

#[test]
fn r03_csv_cell_not_numeric() {
    let text = {
        let f = Fixture::new();
        let csv = f.path("new.csv");
        std::fs::write(&csv, "age,chol,y\n50,200,1\n61,Smithson,0\n").expect("csv");
        import_fails(&f, &csv, &["--target", "y"], &["new.csv", "line 3", "chol"])
    };
    assert!(!text.contains("Smithson"), "the cell leaked: {text}");
}

#[test]
fn r04_csv_row_with_too_few_fields() {
    bad_csv("age,chol,y\n50,200,1\n61,0\n", &["new.csv", "line 3"]);
}

#[test]
fn r05_csv_duplicate_column() {
    bad_csv("age,age,y\n50,200,1\n", &["new.csv", "age"]);
}

#[test]
fn r06_csv_target_column_missing() {
    bad_csv("age,chol,outcome\n50,200,1\n", &["new.csv", "\"y\""]);
}

// ---- vault and vault keys --------------------------------------------------

fn run_args(f: &Fixture, overrides: &[(&str, PathBuf)]) -> Vec<std::ffi::OsString> {
    let pki = f.path("pki");
    let mut flags: Vec<(&str, PathBuf)> = vec![
        ("--ca", pki.join("site-a/ca.pem")),
        ("--cert", pki.join("site-a/site-a.pem")),
        ("--key", pki.join("site-a/site-a.key")),
        ("--signing-key", pki.join("site-a/site-a.sign.key")),
        ("--vault", f.path("site.vault")),
        ("--key-file", f.path("vault.key")),
        ("--audit-key-file", f.path("audit.key")),
        ("--audit-log", f.path("exchange.log")),
    ];
    for (flag, value) in overrides {
        if let Some(slot) = flags.iter_mut().find(|(f, _)| f == flag) {
            slot.1 = value.clone();
        }
    }
    let mut args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        "--coordinator".into(),
        "https://127.0.0.1:9".into(),
        "--connect-timeout".into(),
        "1".into(),
    ];
    for (flag, value) in flags {
        args.push(flag.into());
        args.push(value.into_os_string());
    }
    args
}

fn node_run_fails(f: &Fixture, overrides: &[(&str, PathBuf)], expected: &[&str]) -> String {
    let args = run_args(f, overrides);
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    f.fails("node", &args, expected)
}

#[test]
fn r07_vault_key_file_missing() {
    let f = Fixture::new();
    node_run_fails(&f, &[("--key-file", f.path("lost.key"))], &["lost.key"]);
}

#[test]
fn r08_vault_key_file_malformed() {
    let f = Fixture::new();
    std::fs::write(f.path("odd.key"), "not a key\n").expect("write");
    node_run_fails(&f, &[("--key-file", f.path("odd.key"))], &["odd.key"]);
}

#[test]
fn r09_vault_opened_with_another_key() {
    let f = Fixture::new();
    ok(Command::new(bin("node"))
        .arg("import")
        .arg("--csv")
        .arg(f.path("records.csv"))
        .arg("--vault")
        .arg(f.path("other.vault"))
        .arg("--key-file")
        .arg(f.path("other.key"))
        .args(["--create-key", "--target", "y"]));
    node_run_fails(
        &f,
        &[("--key-file", f.path("other.key"))],
        &["site.vault", "fingerprint"],
    );
}

#[test]
fn r10_vault_truncated() {
    let f = Fixture::new();
    let bytes = std::fs::read(f.path("site.vault")).expect("vault");
    std::fs::write(f.path("cut.vault"), &bytes[..bytes.len() / 2]).expect("write");
    node_run_fails(&f, &[("--vault", f.path("cut.vault"))], &["cut.vault"]);
}

#[test]
fn r11_vault_altered() {
    let f = Fixture::new();
    let mut bytes = std::fs::read(f.path("site.vault")).expect("vault");
    let at = bytes.len() - 20;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(f.path("odd.vault"), &bytes).expect("write");
    node_run_fails(&f, &[("--vault", f.path("odd.vault"))], &["odd.vault"]);
}

#[test]
fn r12_vault_missing() {
    let f = Fixture::new();
    node_run_fails(&f, &[("--vault", f.path("gone.vault"))], &["gone.vault"]);
}

// ---- certificates and keys for `node run` ------------------------------------

#[test]
fn r13_certificate_file_missing() {
    let f = Fixture::new();
    node_run_fails(&f, &[("--cert", f.path("none.pem"))], &["none.pem"]);
}

#[test]
fn r14_certificate_file_not_a_certificate() {
    let f = Fixture::new();
    std::fs::write(f.path("junk.pem"), "hello\n").expect("write");
    node_run_fails(&f, &[("--cert", f.path("junk.pem"))], &["junk.pem"]);
}

#[test]
fn r15_signing_key_not_the_certified_one() {
    let f = Fixture::new();
    ok(Command::new(bin("medfed-certs"))
        .args(["request", "--name", "site-a", "--out"])
        .arg(f.path("elsewhere")));
    node_run_fails(
        &f,
        &[("--signing-key", f.path("elsewhere/site-a.sign.key"))],
        &[
            "elsewhere/site-a.sign.key",
            "not the one certified",
            "site-a.pem",
        ],
    );
}

#[test]
fn r16_audit_key_missing() {
    let f = Fixture::new();
    node_run_fails(
        &f,
        &[("--audit-key-file", f.path("no-audit.key"))],
        &["no-audit.key"],
    );
}

#[test]
fn r17_exchange_log_of_another_writer() {
    let f = Fixture::new();
    // A log opened by someone else: the node must refuse to continue it.
    let other = medfed_audit::SigningKey::generate().expect("key");
    let audit = medfed_audit::AuditKey::from_file(&f.path("audit.key")).expect("audit key");
    let (writer, _) = medfed_audit::LogWriter::open(
        &f.path("theirs.log"),
        "mallory",
        &other,
        &audit,
        medfed_audit::SyncPolicy::EveryEntry,
    )
    .expect("log");
    drop(writer);
    node_run_fails(
        &f,
        &[("--audit-log", f.path("theirs.log"))],
        &["theirs.log"],
    );
}

// ---- task files (`coordinator check`) ---------------------------------------

fn bad_task(contents: &str, expected: &[&str]) {
    let f = Fixture::new();
    std::fs::write(f.path("bad.toml"), contents).expect("task");
    let mut all = vec!["bad.toml"];
    all.extend(expected);
    f.fails(
        "coordinator",
        &["check".as_ref(), "--task".as_ref(), os(&f.path("bad.toml"))],
        &all,
    );
}

#[test]
fn r18_task_file_missing() {
    let f = Fixture::new();
    f.fails(
        "coordinator",
        &[
            "check".as_ref(),
            "--task".as_ref(),
            os(&f.path("absent.toml")),
        ],
        &["absent.toml"],
    );
}

#[test]
fn r19_task_file_not_toml() {
    bad_task("[task\nid = 3\n", &["line 1"]);
}

#[test]
fn r20_task_file_unknown_key() {
    let f = Fixture::new();
    std::fs::write(
        f.path("bad.toml"),
        format!("{GOOD_TASK}colour = \"blue\"\n"),
    )
    .expect("task");
    let (code, _) = f.fails_with(
        "coordinator",
        &["check".as_ref(), "--task".as_ref(), os(&f.path("bad.toml"))],
        &["bad.toml", "colour"],
    );
    // Exit code 3: a configuration problem.
    assert_eq!(code, Some(3));
}

#[test]
fn r21_task_learning_rate_negative() {
    bad_task(
        &format!("{GOOD_TASK}\n[training]\nalgorithm = \"fedavg\"\nlearning_rate = -0.5\n"),
        &["training.learning_rate"],
    );
}

#[test]
fn r22_task_quorum_larger_than_the_consortium() {
    bad_task(
        &format!("{GOOD_TASK}\n[training]\nquorum = 4\n"),
        &["training.quorum", "1 to 1"],
    );
}

#[test]
fn r23_task_holdout_fraction_out_of_range() {
    bad_task(
        &format!("{GOOD_TASK}\n[evaluation]\nholdout_fraction = 1.5\n"),
        &["evaluation.holdout_fraction"],
    );
}

#[test]
fn r24_task_newton_for_a_linear_model() {
    bad_task(
        &format!(
            "{}\n[training]\nalgorithm = \"newton\"\n",
            GOOD_TASK.replace("logistic", "linear")
        ),
        &["training.algorithm", "closed-form"],
    );
}

#[test]
fn r25_task_column_spec_for_an_unknown_feature() {
    bad_task(
        &format!("{GOOD_TASK}\n[[columns]]\nname = \"bmi\"\n"),
        &["columns[0].name", "bmi"],
    );
}

#[test]
fn r26_task_member_listed_twice() {
    bad_task(
        &GOOD_TASK.replace(r#"["site-a"]"#, r#"["site-a", "site-a"]"#),
        &["task.members", "twice"],
    );
}

// ---- provisioning (`medfed-certs`) ------------------------------------------

#[test]
fn r27_certs_request_with_a_bad_name() {
    let f = Fixture::new();
    f.fails(
        "medfed-certs",
        &[
            "request".as_ref(),
            "--name".as_ref(),
            "Site A".as_ref(),
            "--out".as_ref(),
            os(&f.path("req")),
        ],
        &["Site A", "lowercase"],
    );
}

#[test]
fn r28_certs_sign_a_request_for_another_name() {
    let f = Fixture::new();
    ok(Command::new(bin("medfed-certs"))
        .args(["request", "--name", "mallory", "--out"])
        .arg(f.path("req")));
    f.fails(
        "medfed-certs",
        &[
            "sign".as_ref(),
            "--ca".as_ref(),
            os(&f.path("pki/ca")),
            "--csr".as_ref(),
            os(&f.path("req/mallory.csr")),
            "--out".as_ref(),
            os(&f.path("req/mallory.pem")),
            "--expect-name".as_ref(),
            "site-b".as_ref(),
        ],
        &["mallory.csr", "\"mallory\"", "\"site-b\""],
    );
}

#[test]
fn r29_certs_sign_with_a_key_that_is_not_the_cas() {
    let f = Fixture::new();
    ok(Command::new(bin("medfed-certs"))
        .args(["ca", "--out"])
        .arg(f.path("other-ca")));
    ok(Command::new(bin("medfed-certs"))
        .args(["request", "--name", "site-b", "--out"])
        .arg(f.path("req")));
    // A CA folder whose key belongs to another CA.
    std::fs::create_dir(f.path("mixed")).expect("dir");
    std::fs::copy(f.path("pki/ca/ca.pem"), f.path("mixed/ca.pem")).expect("copy");
    std::fs::copy(f.path("other-ca/ca.key"), f.path("mixed/ca.key")).expect("copy");
    f.fails(
        "medfed-certs",
        &[
            "sign".as_ref(),
            "--ca".as_ref(),
            os(&f.path("mixed")),
            "--csr".as_ref(),
            os(&f.path("req/site-b.csr")),
            "--out".as_ref(),
            os(&f.path("req/site-b.pem")),
        ],
        &["ca.key", "is not the key of the certificate", "ca.pem"],
    );
}

#[test]
fn r30_certs_never_overwrite_a_ca() {
    let f = Fixture::new();
    f.fails(
        "medfed-certs",
        &["ca".as_ref(), "--out".as_ref(), os(&f.path("pki/ca"))],
        &["exists already"],
    );
}

#[test]
fn r31_certs_validity_out_of_range() {
    let f = Fixture::new();
    f.fails(
        "medfed-certs",
        &[
            "ca".as_ref(),
            "--out".as_ref(),
            os(&f.path("new-ca")),
            "--days".as_ref(),
            "0".as_ref(),
        ],
        &["--days 0", "expected 1 to"],
    );
}

// ---- coordinator start-up -----------------------------------------------------

/// `coordinator run` on the fixture's task and PKI, signing with
/// `signing_key`, writing to `out`.
fn coordinator_run_fails(f: &Fixture, signing_key: &Path, out: &Path, expected: &[&str]) -> String {
    let pki = f.path("pki");
    let args: Vec<std::ffi::OsString> = vec![
        "run".into(),
        "--task".into(),
        f.path("task.toml").into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--ca".into(),
        pki.join("coordinator/ca.pem").into(),
        "--cert".into(),
        pki.join("coordinator/coordinator.pem").into(),
        "--key".into(),
        pki.join("coordinator/coordinator.key").into(),
        "--signing-key".into(),
        signing_key.into(),
        "--audit-key-file".into(),
        f.path("audit.key").into(),
        "--out".into(),
        out.into(),
    ];
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    f.fails("coordinator", &args, expected)
}

#[test]
fn r32_coordinator_signing_key_not_the_certified_one() {
    let f = Fixture::new();
    coordinator_run_fails(
        &f,
        &f.path("pki/site-a/site-a.sign.key"),
        f.dir.path(),
        &[
            "site-a.sign.key",
            "not the one certified",
            "coordinator.pem",
        ],
    );
}

// ---- the auditor's tool --------------------------------------------------------

#[test]
fn r33_audit_verify_a_file_that_is_not_a_log() {
    let f = Fixture::new();
    f.fails(
        "medfed-audit",
        &["verify".as_ref(), os(&f.path("records.csv"))],
        &["records.csv", "entry 0"],
    );
}

#[test]
fn r34_audit_keygen_never_overwrites_a_key() {
    let f = Fixture::new();
    f.fails(
        "medfed-audit",
        &[
            "keygen".as_ref(),
            "--audit-key".as_ref(),
            os(&f.path("audit.key")),
        ],
        &["audit.key"],
    );
}

// ---- certificates presented to a running coordinator ---------------------------

/// Two heart sites and one intruder with a flawed certificate carrying the
/// name of a member: the handshake must be refused, with the flaw logged,
/// and the run must go on without the intruder.
fn flawed_certificate_refused(flaw: medfed::Flaw, reason: &str, alert: &str) {
    let sites = ["cleveland", "hungarian"];
    let task = r#"
[task]
id = "t"
members = ["cleveland", "hungarian"]
model = "logistic"
features = ["age", "sex", "thalach"]
target = "target"

[training]
rounds = 3
"#;
    let mut federation = medfed::Federation::heart(&sites, task.into());
    federation.intruders = vec![medfed::Intruder::Flawed("cleveland".into(), flaw)];
    let run = federation.run();
    assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
    let intruder = run.node("intruder-cleveland");
    assert!(
        !intruder.status.success(),
        "a {flaw:?} certificate was admitted"
    );
    assert!(
        !intruder.stdout.contains("joined task"),
        "{}",
        intruder.stdout
    );
    assert!(
        run.coordinator_stderr.contains("refused a TLS handshake")
            && run.coordinator_stderr.contains(reason),
        "{reason} not logged: {}",
        run.coordinator_stderr
    );
    // The node hears the coordinator's TLS alert and says so.
    assert!(
        intruder.stderr.contains(alert) && intruder.stderr.contains("TLS handshake failed"),
        "{}",
        intruder.stderr
    );
    let summary = run.summary.as_ref().expect("summary.json");
    assert_eq!(
        summary["train_rows"].as_object().map(|o| o.len()),
        Some(2),
        "{summary}"
    );
}

#[test]
fn r35_expired_certificate() {
    flawed_certificate_refused(
        medfed::Flaw::Expired,
        "certificate expired",
        "CertificateExpired",
    );
}

#[test]
fn r36_certificate_not_yet_valid() {
    flawed_certificate_refused(
        medfed::Flaw::NotYetValid,
        "certificate not valid yet",
        "CertificateExpired",
    );
}

#[test]
fn r37_server_certificate_used_by_a_node() {
    flawed_certificate_refused(
        medfed::Flaw::ServerUsage,
        "does not allow extended key usage for client authentication",
        "UnsupportedCertificate",
    );
}

#[test]
fn r38_a_site_whose_records_lack_a_feature() {
    // One site's CSV has no `thalach` column: that node names the column
    // and stops; the others finish on the quorum.
    let dir = tempfile::tempdir().expect("temp dir");
    let short = dir.path().join("short.csv");
    let full = std::fs::read_to_string(medfed::heart_csv("va")).expect("csv");
    let mut lines = full.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let drop = header
        .iter()
        .position(|h| *h == "thalach")
        .expect("thalach");
    let mut text = String::new();
    for line in std::iter::once(header.join(",")).chain(lines.map(str::to_owned)) {
        let cells: Vec<&str> = line
            .split(',')
            .enumerate()
            .filter(|(i, _)| *i != drop)
            .map(|(_, c)| c)
            .collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    std::fs::write(&short, text).expect("write");
    let task = r#"
[task]
id = "t"
members = ["cleveland", "hungarian", "va"]
model = "logistic"
features = ["age", "sex", "thalach"]
target = "target"

[training]
rounds = 3
quorum = 2

[timeouts]
step_seconds = 2
join_seconds = 30
"#;
    let mut federation = medfed::Federation::heart(&["cleveland", "hungarian", "va"], task.into());
    federation.sites[2].csv = short;
    let run = federation.run();
    assert!(run.coordinator.success(), "{}", run.coordinator_stderr);
    let va = run.node("va");
    assert!(!va.status.success());
    assert!(
        va.stderr.contains("thalach") && va.stderr.contains("task t"),
        "{}",
        va.stderr
    );
    let summary = run.summary.as_ref().expect("summary.json");
    assert_eq!(summary["train_rows"].as_object().map(|o| o.len()), Some(2));
}

#[test]
fn r39_coordinator_state_of_another_task() {
    // A state file left by another task file in the output folder: resuming
    // from it would mix two tasks, so the coordinator refuses to start.
    let f = Fixture::new();
    std::fs::create_dir(f.path("out")).expect("dir");
    let preprocessing = r#"{"columns":[{"name":"age","unknown_values":[],"missing_indicator":false,"encoding":{"numeric":{"fill":50.0,"center":50.0,"scale":10.0}}}]}"#;
    std::fs::write(
        f.path("out/state.json"),
        format!(
            r#"{{"format":"medfed-checkpoint/1","task_sha256":"{}","step":3,"preprocessing":{preprocessing},"notes":[],"train_rows":[],"global":[0.0,0.0],"rounds":[],"stop_reason":null}}"#,
            "ab".repeat(32)
        ),
    )
    .expect("state");
    let text = coordinator_run_fails(
        &f,
        &f.path("pki/coordinator/coordinator.sign.key"),
        &f.path("out"),
        &["state.json", "belongs to another task file"],
    );
    assert!(text.contains("move it away"), "{text}");
}
