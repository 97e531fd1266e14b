//! The operator's and the hospital's files checked by the real binaries:
//! `coordinator config check` and `node config check` on the examples and on
//! broken files (exit status 3, the error naming the key and its line),
//! where `node run` takes each setting from (flag, environment, file), and
//! the command line shared by the four tools (`--version`, an example in
//! every subcommand's help, exit status 6 for a log that fails
//! verification).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use medfed::{bin, heart_csv, repo_root, run_ok};

/// Runs a workspace binary with the secrets' environment variables cleared
/// (and `env` set), returning its output.
fn run(program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin(program));
    command
        .args(args)
        .env_remove("MEDFED_VAULT_KEY")
        .env_remove("MEDFED_AUDIT_KEY");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// A hospital's folder laid out as `examples/heart/node.toml` expects,
/// made the way the README says: the operator's CA, the hospital's request
/// signed by it, the vault imported, the audit key made.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let certs = |args: &[&str]| {
            run_ok(
                Command::new(bin("medfed-certs"))
                    .args(args)
                    .current_dir(root),
            );
        };
        certs(&["ca", "--out", "ca"]);
        certs(&["request", "--name", "cleveland", "--out", "pki"]);
        certs(&[
            "sign",
            "--ca-dir",
            "ca",
            "--csr",
            "pki/cleveland.csr",
            "--out",
            "pki/cleveland.pem",
            "--expect-name",
            "cleveland",
        ]);
        std::fs::copy(root.join("ca/ca.pem"), root.join("pki/ca.pem")).expect("ca.pem");
        run_ok(
            Command::new(bin("node"))
                .args(["import", "--csv"])
                .arg(heart_csv("cleveland"))
                .args([
                    "--vault",
                    "cleveland.vault",
                    "--vault-key-file",
                    "vault.key",
                    "--create-key",
                    "--target",
                    "target",
                ])
                .current_dir(root),
        );
        run_ok(
            Command::new(bin("medfed-audit"))
                .args(["keygen", "--audit-key-file", "audit.key"])
                .current_dir(root),
        );
        let example = std::fs::read_to_string(repo_root().join("examples/heart/node.toml"))
            .expect("examples/heart/node.toml");
        std::fs::write(root.join("node.toml"), example).expect("node.toml");
        Site { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The example node file with `from` replaced by `to`, written as `name`.
    fn variant(&self, name: &str, from: &str, to: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.path("node.toml")).expect("node.toml");
        assert!(text.contains(from), "{from:?} is not in the example");
        let path = self.path(name);
        std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
        path
    }

    /// The vault key's text, as an operator would put in MEDFED_VAULT_KEY.
    fn vault_key_text(&self) -> String {
        std::fs::read_to_string(self.path("vault.key"))
            .expect("vault.key")
            .trim()
            .to_owned()
    }
}

#[test]
fn the_example_task_files_pass_and_say_what_they_define() {
    let out = run(
        "coordinator",
        &[
            "config",
            "check",
            s(&repo_root().join("examples/heart/task.toml")),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "task heart-disease-demo is valid",
        "4 members, 12 features, logistic model, 30 rounds",
        "cleveland, hungarian, switzerland, va (quorum 4)",
        "newton",
        "own preprocessing for chol, thal",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }

    let out = run(
        "coordinator",
        &[
            "config",
            "check",
            s(&repo_root().join("examples/heart/linear.toml")),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("task heart-thalach is valid"), "{stdout}");
    assert!(stdout.contains("closed-form"), "{stdout}");

    // The former spelling still works.
    let out = run(
        "coordinator",
        &[
            "check",
            "--task",
            s(&repo_root().join("examples/heart/task.toml")),
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_example_node_file_passes_with_the_files_it_names() {
    let site = Site::new();
    let out = run(
        "node",
        &["config", "check", s(&site.path("node.toml"))],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "coordinator https://127.0.0.1:7443",
        "certificate of cleveland",
        "the one the certificate certifies",
        "cleveland.vault ([vault] path): a medfed vault",
        "the vault's key",
        "will be created on the first run",
        "valid; `node run --config",
    ] {
        assert!(stdout.contains(needle), "{needle:?} not in:\n{stdout}");
    }
    // No secret is printed: not the vault key's text.
    assert!(!text(&out).contains(&site.vault_key_text()));
}

const TASK: &str = r#"[task]
id = "t"
members = ["a", "b"]
model = "logistic"
features = ["x1", "x2"]
target = "y"

[training]
rounds = 5
"#;

/// `coordinator config check` on `text` fails with exit status 3 and an
/// error holding every one of `expected`.
fn task_refused(name: &str, text_of_file: &str, expected: &[&str]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("{name}.toml"));
    std::fs::write(&path, text_of_file).expect("write");
    let out = run("coordinator", &["config", "check", s(&path)], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{name}: {all}");
    assert!(all.contains(&format!("{name}.toml")), "{name}: {all}");
    for needle in expected {
        assert!(all.contains(needle), "{name}: {needle:?} not in: {all}");
    }
    assert!(!all.contains("panicked"), "{name}: {all}");
}

#[test]
fn broken_task_files_are_refused_naming_the_key_and_line() {
    task_refused(
        "unknown-top-level-key",
        &format!("colour = \"blue\"\n{TASK}"),
        &[
            "line 1",
            "top level unknown key `colour`; allowed: task, columns",
        ],
    );
    task_refused(
        "unknown-key-in-table",
        &format!("{TASK}roundz = 4\n"),
        &[
            "line 10",
            "[training] unknown key `roundz`; allowed: rounds, ",
        ],
    );
    task_refused(
        "wrong-type",
        &TASK.replace("rounds = 5", "rounds = \"five\""),
        &["line 9", "training.rounds: invalid type: string"],
    );
    task_refused(
        "zero-rounds",
        &TASK.replace("rounds = 5", "rounds = 0"),
        &["line 9", "training.rounds"],
    );
    task_refused(
        "negative-rounds",
        &TASK.replace("rounds = 5", "rounds = -3"),
        &["line 9", "training.rounds", "-3"],
    );
    task_refused(
        "quorum-above-members",
        &format!("{TASK}quorum = 3\n"),
        &["line 10", "training.quorum", "1 to 2"],
    );
    task_refused(
        "empty-members",
        &TASK.replace(r#"["a", "b"]"#, "[]"),
        &["line 3", "task.members"],
    );
    task_refused(
        "duplicate-member",
        &TASK.replace(r#"["a", "b"]"#, r#"["a", "b", "a"]"#),
        &["line 3", "task.members", "\"a\" twice"],
    );
    task_refused(
        "feature-is-target",
        &TASK.replace(r#"["x1", "x2"]"#, r#"["x1", "y"]"#),
        &["line 5", "task.features", "target"],
    );
    task_refused(
        "unknown-column",
        &format!("{TASK}\n[[columns]]\nname = \"x3\"\n"),
        &[
            "line 12",
            "columns[0].name",
            "\"x3\" is not one of task.features",
        ],
    );
    task_refused(
        "bad-algorithm",
        &format!("{TASK}algorithm = \"newtonn\"\n"),
        &["line 10", "training.algorithm", "newtonn", "closed-form"],
    );
    task_refused(
        "bad-model",
        &TASK.replace("\"logistic\"", "\"forest\""),
        &["line 4", "task.model", "forest", "logistic"],
    );
    task_refused("not-toml", "[task\nid = 3\n", &["line 1", "not-toml.toml"]);
}

/// `node config check` on a variant of the example fails with exit status
/// 3 and an error holding every one of `expected`.
fn node_refused(site: &Site, name: &str, from: &str, to: &str, expected: &[&str]) {
    let path = site.variant(&format!("{name}.toml"), from, to);
    let out = run("node", &["config", "check", s(&path)], &[]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(3), "{name}: {all}");
    assert!(all.contains(&format!("{name}.toml")), "{name}: {all}");
    for needle in expected {
        assert!(all.contains(needle), "{name}: {needle:?} not in: {all}");
    }
    assert!(!all.contains("panicked"), "{name}: {all}");
}

#[test]
fn broken_node_files_are_refused_naming_the_key_and_line() {
    let site = Site::new();
    node_refused(
        &site,
        "no-vault",
        "path = \"cleveland.vault\"",
        "",
        &["no vault: pass --vault or set `path` in [vault]"],
    );
    node_refused(
        &site,
        "missing-certificate",
        "cert = \"pki/cleveland.pem\"",
        "cert = \"pki/elsewhere.pem\"",
        &[
            "line 43",
            "[tls] cert",
            // Resolved against the file's folder, not the working directory.
            s(&site.path("pki/elsewhere.pem")),
        ],
    );
    node_refused(
        &site,
        "bad-address",
        "address = \"https://127.0.0.1:7443\"",
        "address = \"127.0.0.1:7443\"",
        &[
            "line 23",
            "[coordinator] address = \"127.0.0.1:7443\"",
            "https",
        ],
    );
    node_refused(
        &site,
        "unknown-key",
        "cert = ",
        "cetr = ",
        &["line 43: [tls] unknown key `cetr`; allowed: ca, cert, key, signing_key"],
    );
    node_refused(
        &site,
        "negative-timeout",
        "connect_timeout_seconds = 60",
        "connect_timeout_seconds = -3",
        &[
            "line 31",
            "connect_timeout_seconds = -3: expected a positive number of seconds",
        ],
    );
    node_refused(
        &site,
        "wrong-type",
        "path = \"cleveland.vault\"",
        "path = 7",
        &[
            "line 35",
            "[vault] path: expected a string (a file path), got integer",
        ],
    );
    node_refused(
        &site,
        "unknown-table",
        "[audit]",
        "[auditing]",
        &["top level unknown key `auditing`; allowed: coordinator, vault, tls, audit, privacy"],
    );
    node_refused(
        &site,
        "wrong-vault-key",
        "key_file = \"vault.key\"",
        "key_file = \"audit.key\"",
        &["[vault] key_file", "the vault was encrypted with key"],
    );
}

/// Sets the example up to reach a closed port within a second, so that
/// `node run` gets as far as the network and fails there (exit 5) unless an
/// earlier setting fails first.
fn unreachable_node_file(site: &Site, name: &str, extra: (&str, &str)) -> PathBuf {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let text = std::fs::read_to_string(site.path("node.toml"))
        .expect("node.toml")
        .replace("127.0.0.1:7443", &format!("127.0.0.1:{port}"))
        .replace(
            "connect_timeout_seconds = 60",
            "connect_timeout_seconds = 1",
        )
        .replace(extra.0, extra.1);
    let path = site.path(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn a_flag_overrides_the_file() {
    let site = Site::new();
    let file = unreachable_node_file(&site, "closed.toml", ("", ""));
    // From the file alone: everything loads, then the coordinator is not there.
    let out = run("node", &["run", "--config", s(&file)], &[]);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(
        text(&out).contains("cannot reach the coordinator"),
        "{}",
        text(&out)
    );
    // A --vault flag replaces the file's vault.
    let out = run(
        "node",
        &[
            "run",
            "--config",
            s(&file),
            "--vault",
            s(&site.path("elsewhere.vault")),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("elsewhere.vault"), "{}", text(&out));
}

#[test]
fn medfed_vault_key_overrides_the_files_key_source() {
    let site = Site::new();
    let file = unreachable_node_file(
        &site,
        "lost-key.toml",
        ("key_file = \"vault.key\"", "key_file = \"lost.key\""),
    );
    // The file's key file is missing: a data error naming it.
    let out = run("node", &["run", "--config", s(&file)], &[]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("lost.key"), "{}", text(&out));
    // With MEDFED_VAULT_KEY set, the file's key file is not used: the node
    // decrypts its vault and goes on to the (absent) coordinator.
    let key = site.vault_key_text();
    let env = [("MEDFED_VAULT_KEY", key.as_str())];
    let out = run("node", &["run", "--config", s(&file)], &env);
    assert_eq!(out.status.code(), Some(5), "{}", text(&out));
    assert!(!text(&out).contains("lost.key"), "{}", text(&out));
    // `config check` takes the key from the same place.
    let out = run("node", &["config", "check", s(&file)], &env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("environment MEDFED_VAULT_KEY): key "),
        "{}",
        text(&out)
    );
    // And the --vault-key-file flag overrides the environment.
    let out = run(
        "node",
        &[
            "run",
            "--config",
            s(&file),
            "--vault-key-file",
            s(&site.path("flag.key")),
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(text(&out).contains("flag.key"), "{}", text(&out));
}

#[test]
fn every_tool_has_a_version_and_an_example_in_every_subcommand() {
    for tool in ["coordinator", "node", "medfed-certs", "medfed-audit"] {
        let out = run(tool, &["--version"], &[]);
        assert_eq!(out.status.code(), Some(0), "{tool}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with(&format!("{tool} ")) && stdout.trim_end().ends_with("0.1.0"),
            "{tool}: {stdout}"
        );
    }
    let subcommands: &[(&str, &[&str])] = &[
        ("coordinator", &["run"]),
        ("coordinator", &["config"]),
        ("coordinator", &["config", "check"]),
        ("node", &["import"]),
        ("node", &["run"]),
        ("node", &["config"]),
        ("node", &["config", "check"]),
        ("node", &["predict"]),
        ("node", &["model"]),
        ("node", &["model", "show"]),
        ("medfed-certs", &["ca"]),
        ("medfed-certs", &["server"]),
        ("medfed-certs", &["request"]),
        ("medfed-certs", &["sign"]),
        ("medfed-certs", &["demo"]),
        ("medfed-audit", &["verify"]),
        ("medfed-audit", &["list"]),
        ("medfed-audit", &["show"]),
        ("medfed-audit", &["cross-check"]),
        ("medfed-audit", &["keygen"]),
    ];
    for (tool, path) in subcommands {
        let mut args = path.to_vec();
        args.push("--help");
        let out = run(tool, &args, &[]);
        assert_eq!(out.status.code(), Some(0), "{tool} {path:?}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Example:"), "{tool} {path:?}:\n{help}");
    }
    // A usage error is 2 on every tool.
    for tool in ["coordinator", "node", "medfed-certs", "medfed-audit"] {
        let out = run(tool, &["--no-such-flag"], &[]);
        assert_eq!(out.status.code(), Some(2), "{tool}: {}", text(&out));
    }
}

#[test]
fn a_log_that_fails_verification_exits_with_6() {
    use medfed_audit::{AuditKey, Direction, LogWriter, Record, SigningKey, SyncPolicy};
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("exchange.log");
    let key = SigningKey::generate().expect("key");
    let audit_key = AuditKey::generate();
    let (mut writer, _) = LogWriter::open(
        &log,
        "coordinator",
        &key,
        &audit_key,
        SyncPolicy::EveryEntry,
    )
    .expect("open log");
    for round in 1..=3 {
        writer
            .append(&Record {
                task: "t",
                round,
                direction: Direction::Out,
                peer: "cleveland",
                kind: "global-model",
                bytes: &[round as u8; 16],
                member_signature: None,
            })
            .expect("append");
    }
    writer.close().expect("close");
    let out = run("medfed-audit", &["verify", s(&log)], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Change one character of the second entry.
    let mut text_of_log = std::fs::read_to_string(&log).expect("log");
    let second = text_of_log.find('\n').expect("two lines") + 1;
    let at = second
        + text_of_log[second..]
            .find("\"round\":")
            .expect("round field")
        + 8;
    text_of_log.replace_range(at..at + 1, "7");
    std::fs::write(&log, text_of_log).expect("write");
    let out = run("medfed-audit", &["verify", s(&log)], &[]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(text(&out).contains("FAILED"), "{}", text(&out));
    // A log that cannot be read is a data error, not a finding.
    let out = run(
        "medfed-audit",
        &["verify", s(&dir.path().join("absent.log"))],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
}
