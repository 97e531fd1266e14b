//! Tests of the node file: reading it, its refusals, and where each
//! setting comes from.

use std::path::{Path, PathBuf};
use std::time::Duration;

use medfed_vault::KEY_ENV_VAR;

use super::file::SCHEMA;
use super::privacy::privacy_budget;
use super::*;
use crate::import::KeySource;

const FULL: &str = r#"
[coordinator]
address = "https://fl.example.org:7443"
server_name = "fl.example.org"
task_id = "heart"
connect_timeout_seconds = 30

[vault]
path = "data/site.vault"
key_file = "/etc/medfed/vault.key"

[tls]
ca = "pki/ca.pem"
cert = "pki/site.pem"
key = "pki/site.key"
signing_key = "pki/site.sign.key"

[audit]
log = "logs/exchange.log"
key_file = "audit.key"

[privacy]
epsilon = 3.0
delta = 1e-5

[policy]
columns = ["age", "sex", "target"]
deny_columns = ["postcode"]
not_identifiers = ["visit"]
algorithms = ["newton", "closed-form"]
models = ["logistic"]
require_secure_aggregation = true
require_dp = false
min_noise_multiplier = 1.0
max_epsilon_per_round = 0.5
trust_coordinator_noise = true
dp_unnoised = "never"
min_rows = 20
min_cell = 8
max_parameters_per_row = 0.1
max_score_bins = 200
max_evaluations = 12
max_steps = 400
coordinator = "00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13:14:15:16:17:18:19:1a:1b:1c:1d:1e:1f"
members = ["site", "other"]
member_certificates = { other = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100" }
min_threshold = "3/4"
require_pinning = true
approved_tasks = "approved.txt"
"#;

fn parse(text: &str) -> Result<NodeFile, NodeConfigError> {
    NodeFile::parse(text, Path::new("node.toml"), Path::new("/srv/medfed"))
}

fn error_of(text: &str) -> String {
    parse(text).err().map(|e| e.to_string()).unwrap_or_default()
}

fn never_set(_: &str) -> bool {
    false
}

#[test]
fn every_key_is_read_and_relative_paths_follow_the_file() {
    let file = parse(FULL).unwrap();
    assert_eq!(
        file.coordinator.as_deref(),
        Some("https://fl.example.org:7443")
    );
    assert_eq!(file.server_name.as_deref(), Some("fl.example.org"));
    assert_eq!(file.task_id.as_deref(), Some("heart"));
    assert_eq!(file.connect_timeout, Some(Duration::from_secs(30)));
    assert_eq!(
        file.vault,
        Some(PathBuf::from("/srv/medfed/data/site.vault"))
    );
    // An absolute path stays as it is.
    assert_eq!(
        file.vault_key_file,
        Some(PathBuf::from("/etc/medfed/vault.key"))
    );
    assert_eq!(file.ca, Some(PathBuf::from("/srv/medfed/pki/ca.pem")));
    assert_eq!(file.cert, Some(PathBuf::from("/srv/medfed/pki/site.pem")));
    assert_eq!(file.key, Some(PathBuf::from("/srv/medfed/pki/site.key")));
    assert_eq!(
        file.signing_key,
        Some(PathBuf::from("/srv/medfed/pki/site.sign.key"))
    );
    assert_eq!(
        file.audit_log,
        Some(PathBuf::from("/srv/medfed/logs/exchange.log"))
    );
    assert_eq!(
        file.audit_key_file,
        Some(PathBuf::from("/srv/medfed/audit.key"))
    );
    let policy = &file.policy;
    assert_eq!(
        policy.columns.as_deref(),
        Some(&["age".to_owned(), "sex".into(), "target".into()][..])
    );
    assert_eq!(policy.deny_columns, ["postcode"]);
    assert_eq!(policy.not_identifiers, ["visit"]);
    assert_eq!(
        policy.algorithms,
        [
            medfed_wire::TrainingAlgorithm::Newton,
            medfed_wire::TrainingAlgorithm::ClosedForm
        ]
    );
    assert_eq!(policy.models, [medfed_model::ModelKind::Logistic]);
    assert!(policy.require_secure_aggregation && !policy.require_dp && policy.require_pinning);
    assert_eq!(
        (policy.min_noise_multiplier, policy.max_epsilon_per_round),
        (1.0, Some(0.5))
    );
    assert!(policy.trust_coordinator_noise);
    assert_eq!(policy.dp_unnoised, crate::policy::DpUnnoised::Never);
    assert_eq!((policy.min_rows, policy.min_cell), (20, 8));
    assert_eq!(policy.max_parameters_per_row, 0.1);
    assert_eq!(
        (
            policy.max_score_bins,
            policy.max_evaluations,
            policy.max_steps
        ),
        (200, 12, 400)
    );
    let pin: Vec<u8> = (0..32).collect();
    assert_eq!(policy.coordinator.map(|p| p.to_vec()), Some(pin));
    assert_eq!(
        policy.members.as_deref(),
        Some(&["site".to_owned(), "other".into()][..])
    );
    assert_eq!(
        policy.approved_tasks,
        Some(PathBuf::from("/srv/medfed/approved.txt"))
    );
    let other: Vec<u8> = (0..32).rev().collect();
    assert_eq!(
        policy.member_certificates.get("other").map(|p| p.to_vec()),
        Some(other)
    );
    assert_eq!(
        policy.min_threshold,
        crate::policy::Fraction::new(3, 4).unwrap()
    );
    assert!(policy.unpinned().is_empty());
    // Every key the schema allows was read, each with its line.
    let keys: usize = SCHEMA.iter().map(|(_, keys)| keys.len()).sum();
    assert_eq!(file.lines.len(), keys);
    assert_eq!(file.line_of("tls", "cert"), Some(14));
}

#[test]
fn a_policy_value_out_of_range_is_named_with_its_line_and_the_defaults_are_safe() {
    for (written, wanted) in [
        ("min_cell = 8", "min_cell = 0"),
        (
            "algorithms = [\"newton\", \"closed-form\"]",
            "algorithms = [\"sgd\"]",
        ),
        ("models = [\"logistic\"]", "models = [\"tree\"]"),
        (
            "max_parameters_per_row = 0.1",
            "max_parameters_per_row = -2.0",
        ),
        (
            "members = [\"site\", \"other\"]",
            "members = [\"site\", \"site\"]",
        ),
        ("require_dp = false", "require_dp = \"no\""),
        ("min_threshold = \"3/4\"", "min_threshold = \"1/2\""),
        ("min_threshold = \"3/4\"", "min_threshold = \"5/4\""),
        ("min_threshold = \"3/4\"", "min_threshold = \"0.7\""),
        ("min_threshold = \"3/4\"", "min_threshold = \"2/0\""),
        ("min_threshold = \"3/4\"", "min_threshold = 0.7"),
        ("dp_unnoised = \"never\"", "dp_unnoised = \"sometimes\""),
        (
            "trust_coordinator_noise = true",
            "trust_coordinator_noise = \"yes\"",
        ),
    ] {
        let err = error_of(&FULL.replace(written, wanted));
        let key = wanted.split(' ').next().unwrap_or_default();
        assert!(err.contains(&format!("[policy] {key}")), "{wanted}: {err}");
        assert!(err.contains("line "), "{wanted}: {err}");
    }
    let err = error_of(&FULL.replace("00:01:02", "zz:01:02"));
    assert!(
        err.contains("[policy] coordinator") && err.contains("64 hex"),
        "{err}"
    );
    let defaults = crate::policy::Policy::default();
    assert_eq!((defaults.min_rows, defaults.min_cell), (10, 5));
    assert_eq!(defaults.max_parameters_per_row, 0.33);
    assert!(defaults.columns.is_none() && defaults.approved_tasks.is_none());
    assert_eq!(defaults.min_threshold, crate::policy::Fraction::TWO_THIRDS);
    let err = error_of(&FULL.replace("\"3/4\"", "\"-2/3\""));
    assert!(
        err.contains("[policy] min_threshold")
            && err.contains("more than 1/2 and at most 1")
            && err.contains("\"-2/3\""),
        "{err}"
    );
    assert_eq!(defaults.unpinned().len(), 2);
    assert!(!defaults.trust_coordinator_noise);
    assert_eq!(defaults.dp_unnoised, crate::policy::DpUnnoised::SecureSums);
}

#[test]
fn required_pinning_without_a_pin_is_refused_at_resolution() {
    let unpinned = FULL.replace("members = [\"site\", \"other\"]\n", "");
    let file = parse(&unpinned).unwrap();
    let err = Settings::resolve(RunFlags::default(), Some(&file), &|_| true)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("[policy] require_pinning") && err.contains("members"),
        "{err}"
    );
}

#[test]
fn an_unknown_key_is_named_with_its_table_line_and_the_allowed_keys() {
    let err = error_of(&FULL.replace("cert = ", "cetr = "));
    assert_eq!(
        err,
        "node.toml, line 14: [tls] unknown key `cetr`; allowed: ca, cert, key, signing_key"
    );
    let err = error_of(&format!("colour = \"blue\"\n{FULL}"));
    assert!(
        err.starts_with("node.toml, line 1: top level unknown key `colour`; allowed: coordinator"),
        "{err}"
    );
    let err = error_of("[privacy]\nepsilon = 1.0\nbudget = 2\n");
    assert!(
        err.contains("[privacy] unknown key `budget`; allowed: epsilon, delta"),
        "{err}"
    );
}

#[test]
fn values_out_of_range_name_the_key_the_value_and_what_is_expected() {
    let err = error_of(&FULL.replace("= 30", "= -3"));
    assert_eq!(
        err,
        "node.toml, line 6: [coordinator] connect_timeout_seconds = -3: \
         expected a positive number of seconds"
    );
    let err = error_of(&FULL.replace("= 30", "= 0"));
    assert!(
        err.contains("expected a positive number of seconds"),
        "{err}"
    );
    let err = error_of(&FULL.replace("= 30", "= 100000"));
    assert!(err.contains("at most 86400"), "{err}");
    let err = error_of(&FULL.replace("= 30", "= \"30\""));
    assert!(
        err.contains("line 6") && err.contains("expected an integer number of seconds, got string"),
        "{err}"
    );
    let err = error_of(&FULL.replace("\"data/site.vault\"", "7"));
    assert!(
        err.contains("line 9: [vault] path: expected a string (a file path), got integer"),
        "{err}"
    );
    let err = error_of(&FULL.replace("https://fl.example.org:7443", "http://fl.example.org:7443"));
    assert!(
        err.contains(
            "[coordinator] address = \"http://fl.example.org:7443\": the scheme must be https"
        ),
        "{err}"
    );
    let err = error_of(&FULL.replace("server_name = \"fl.example.org\"", "server_name = \"a b\""));
    assert!(err.contains("[coordinator] server_name"), "{err}");
    let err = error_of("tls = \"pki\"\n");
    assert!(err.contains("[tls]: expected a table, got string"), "{err}");
    let err = error_of("[vault]\npath = \n");
    assert!(
        err.contains("line 2") && err.contains("not valid TOML"),
        "{err}"
    );
}

fn flags() -> RunFlags {
    RunFlags::default()
}

#[test]
fn a_flag_wins_over_the_file() {
    let file = parse(FULL).unwrap();
    let mut given = flags();
    given.vault = Some(PathBuf::from("other.vault"));
    given.connect_timeout = Some(Duration::from_secs(5));
    given.server_name = Some("localhost".into());
    let s = Settings::resolve(given, Some(&file), &never_set).unwrap();
    assert_eq!(s.vault, PathBuf::from("other.vault"));
    assert_eq!(s.connect_timeout, Duration::from_secs(5));
    assert_eq!(s.server_name, "localhost");
    // Not overridden: from the file.
    assert_eq!(s.ca, PathBuf::from("/srv/medfed/pki/ca.pem"));
    assert_eq!(s.task_id.as_deref(), Some("heart"));
}

#[test]
fn secrets_come_from_the_flag_then_the_environment_then_the_file() {
    let file = parse(FULL).unwrap();
    let all_set = |_: &str| true;
    let vault_only = |var: &str| var == KEY_ENV_VAR;

    let s = Settings::resolve(flags(), Some(&file), &never_set).unwrap();
    assert!(matches!(&s.vault_key, KeySource::File(p) if p == Path::new("/etc/medfed/vault.key")));
    assert_eq!(
        s.audit_key,
        AuditKeySource::File(PathBuf::from("/srv/medfed/audit.key"))
    );

    let s = Settings::resolve(flags(), Some(&file), &vault_only).unwrap();
    assert!(matches!(s.vault_key, KeySource::Env));
    assert_eq!(
        s.audit_key,
        AuditKeySource::File(PathBuf::from("/srv/medfed/audit.key"))
    );

    let s = Settings::resolve(flags(), Some(&file), &all_set).unwrap();
    assert!(matches!(s.vault_key, KeySource::Env));
    assert_eq!(s.audit_key, AuditKeySource::Env);

    let mut given = flags();
    given.vault_key_file = Some(PathBuf::from("flag.key"));
    given.audit_key_file = Some(PathBuf::from("flag-audit.key"));
    let s = Settings::resolve(given, Some(&file), &all_set).unwrap();
    assert!(matches!(&s.vault_key, KeySource::File(p) if p == Path::new("flag.key")));
    assert_eq!(
        s.audit_key,
        AuditKeySource::File(PathBuf::from("flag-audit.key"))
    );
}

#[test]
fn a_setting_given_nowhere_says_where_it_can_come_from() {
    let file = parse(&FULL.replace("path = \"data/site.vault\"", "")).unwrap();
    let err = Settings::resolve(flags(), Some(&file), &never_set)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "no vault: pass --vault or set `path` in [vault] of node.toml"
    );

    let file = parse(&FULL.replace("key_file = \"/etc/medfed/vault.key\"", "")).unwrap();
    let err = Settings::resolve(flags(), Some(&file), &never_set)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no vault key") && err.contains("MEDFED_VAULT_KEY"),
        "{err}"
    );

    // The audit key given nowhere is looked for in the environment when the
    // log is opened (after the vault and certificates are read).
    let file = parse(&FULL.replace("key_file = \"audit.key\"", "")).unwrap();
    let s = Settings::resolve(flags(), Some(&file), &never_set).unwrap();
    assert_eq!(s.audit_key, AuditKeySource::Env);

    let err = Settings::resolve(flags(), None, &never_set)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--coordinator"), "{err}");
}

#[test]
fn defaults_apply_when_neither_flag_nor_file_gives_a_value() {
    let text = FULL
        .replace("server_name = \"fl.example.org\"", "")
        .replace("connect_timeout_seconds = 30", "")
        .replace("log = \"logs/exchange.log\"", "");
    let file = parse(&text).unwrap();
    let s = Settings::resolve(flags(), Some(&file), &never_set).unwrap();
    assert_eq!(s.server_name, DEFAULT_SERVER_NAME);
    assert_eq!(s.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(s.audit_log, PathBuf::from("/srv/medfed/data/exchange.log"));
}

#[test]
fn a_bad_coordinator_flag_is_refused_like_the_file_value() {
    let file = parse(FULL).unwrap();
    let mut given = flags();
    given.coordinator = Some("fl.example.org:7443".into());
    let err = Settings::resolve(given, Some(&file), &never_set)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--coordinator"), "{err}");
}

#[test]
fn privacy_budget_comes_from_flags_over_the_file_and_needs_both_halves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = "[privacy]\nepsilon = 2.0\ndelta = 1e-5\n";
    let file = NodeFile::parse(text, &dir.path().join("node.toml"), dir.path()).expect("valid");
    assert_eq!(file.privacy_epsilon, Some(2.0));
    let bad = NodeFile::parse(
        "[privacy]\nepsilon = -1\n",
        &dir.path().join("n.toml"),
        dir.path(),
    )
    .expect_err("refused");
    assert!(bad.to_string().contains("[privacy] epsilon"), "{bad}");
    let bad = NodeFile::parse(
        "[privacy]\ndelta = 1.5\n",
        &dir.path().join("n.toml"),
        dir.path(),
    )
    .expect_err("refused");
    assert!(bad.to_string().contains("line 2"), "{bad}");
    let half = NodeFile::parse(
        "[privacy]\nepsilon = 1\n",
        &dir.path().join("n.toml"),
        dir.path(),
    )
    .expect("valid alone");
    let flags = RunFlags::default();
    let err = privacy_budget(&flags, Some(&half)).expect_err("half a budget");
    assert!(err.to_string().contains("--dp-delta"), "{err}");
    let flags = RunFlags {
        dp_epsilon: Some(0.5),
        ..RunFlags::default()
    };
    let budget = privacy_budget(&flags, Some(&file))
        .expect("valid")
        .expect("a budget");
    assert_eq!(budget.epsilon(), 0.5);
    assert_eq!(budget.delta(), 1e-5);
}

/// A node file is read only up to its size limit, even from something
/// that reports no length and never ends (a device, a pipe).
#[test]
fn an_endless_or_oversized_file_is_refused_at_the_limit() {
    let endless = NodeFile::load(Path::new("/dev/zero"));
    assert!(
        matches!(endless, Err(NodeConfigError::TooLarge { .. })),
        "{endless:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("node.toml");
    std::fs::write(&big, "#".repeat(MAX_FILE_BYTES as usize + 1)).unwrap();
    assert!(matches!(
        NodeFile::load(&big),
        Err(NodeConfigError::TooLarge { .. })
    ));
    let limit = dir.path().join("limit.toml");
    std::fs::write(&limit, "#".repeat(MAX_FILE_BYTES as usize)).unwrap();
    assert!(NodeFile::load(&limit).is_ok());
}
