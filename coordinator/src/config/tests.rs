//! Unit tests of the task file: parsing, the checks and their errors,
//! the summary.

use super::*;

const GOOD: &str = r#"
[task]
id = "t"
members = ["a", "b"]
model = "logistic"
features = ["x1", "x2"]
target = "y"

[training]
rounds = 3
"#;

#[test]
fn good_file_parses_with_defaults() {
    let config = TaskConfig::parse(GOOD, "task.toml").unwrap();
    assert_eq!(config.task.rounds, 3);
    assert_eq!(config.task.local_steps, 5);
    assert_eq!(config.task.dimension(), 3);
    assert!(!config.baselines);
}

fn error_of(text: &str) -> String {
    TaskConfig::parse(text, "task.toml")
        .unwrap_err()
        .to_string()
}

#[test]
fn unknown_key_is_named() {
    let err = error_of(&format!("{GOOD}\nrounds_typo = 4\n"));
    assert!(err.contains("rounds_typo"), "{err}");
}

#[test]
fn out_of_range_values_name_their_key() {
    let err = error_of(&GOOD.replace("rounds = 3", "rounds = 0"));
    assert!(err.contains("training.rounds"), "{err}");
    let err = error_of(&format!("{GOOD}learning_rate = -1.0\n"));
    assert!(err.contains("training.learning_rate"), "{err}");
    let err = error_of(&GOOD.replace(r#"["x1", "x2"]"#, r#"["x1", "y"]"#));
    assert!(err.contains("task.features"), "{err}");
    let err = error_of(&GOOD.replace(r#"["a", "b"]"#, r#"["a", "a"]"#));
    assert!(
        err.contains("task.members") && err.contains("twice"),
        "{err}"
    );
    let err = error_of(&GOOD.replace("logistic", "forest"));
    assert!(err.contains("forest"), "{err}");
    let err = error_of(&format!("{GOOD}quorum = 3\n"));
    assert!(
        err.contains("training.quorum") && err.contains("1 to 2"),
        "{err}"
    );
    let err = error_of(&format!("{GOOD}trim_fraction = 0.5\n"));
    assert!(err.contains("training.trim_fraction"), "{err}");
    let err = error_of(&format!("{GOOD}clip_norm = 0.0\n"));
    assert!(err.contains("training.clip_norm"), "{err}");
    let err = error_of(&format!("{GOOD}aggregation = \"mean\"\n"));
    assert!(err.contains("mean") && err.contains("median"), "{err}");
}

#[test]
fn dp_settings_are_checked_and_named() {
    let dp = "\n[privacy.dp]\nnoise_multiplier = 1.0\nclip_norm = 0.5\n";
    let config = TaskConfig::parse(&format!("{GOOD}{dp}"), "task.toml").expect("valid");
    let settings = config.task.differential_privacy.expect("on");
    assert_eq!(settings.noise_multiplier, 1.0);
    assert_eq!(config.algorithm, Algorithm::Fedavg);
    // Without secure aggregation each site places its own noise, and the
    // rounds ask for no held-out counts (a DP site releases none).
    assert!(
        config.summary().contains("noise placed by each site"),
        "{}",
        config.summary()
    );
    assert_eq!(config.task.evaluate_every, 0);
    assert_eq!(config.evaluate_every, 0);
    let err = error_of(&format!(
        "{GOOD}\n[privacy.dp]\nnoise_multiplier = 0.0\nclip_norm = 0.5\n"
    ));
    assert!(err.contains("privacy.dp.noise_multiplier"), "{err}");
    let err = error_of(&format!("{GOOD}\n[privacy.dp]\nnoise_multiplier = 1.0\n"));
    assert!(err.contains("clip_norm"), "{err}");
    let newton = GOOD.replace("[training]", "[training]\nalgorithm = \"newton\"");
    let err = error_of(&format!("{newton}{dp}"));
    assert!(
        err.contains("privacy.dp") && err.contains("newton"),
        "{err}"
    );
    let median = GOOD.replace("[training]", "[training]\naggregation = \"median\"");
    let err = error_of(&format!("{median}{dp}"));
    assert!(err.contains("training.aggregation"), "{err}");
}

#[test]
fn secure_aggregation_settings_are_checked_and_named() {
    let five = GOOD.replace(r#"["a", "b"]"#, r#"["a", "b", "c", "d", "e"]"#);
    let on = format!("{five}\n[privacy]\nsecure_aggregation = true\n");
    let config = TaskConfig::parse(&on, "task.toml").unwrap();
    let settings = config.task.secure_aggregation.expect("on");
    // ⌈2n/3⌉ of five members.
    assert_eq!(settings.threshold, 4);
    assert_eq!(settings.fixed_point_bits, DEFAULT_FIXED_POINT_BITS);
    // "auto" picks Newton for a small logistic model, as without
    // secure aggregation: its terms are masked like updates.
    assert_eq!(config.algorithm, Algorithm::Newton);
    for bad in ["threshold = 2", "threshold = 6"] {
        let err = error_of(&format!("{on}{bad}\n"));
        assert!(
            err.contains("privacy.threshold") && err.contains("3 to 5"),
            "{err}"
        );
    }
    let err = error_of(&format!("{on}fixed_point_bits = 60\n"));
    assert!(err.contains("privacy.fixed_point_bits"), "{err}");
    let err = error_of(&format!("{five}\n[privacy]\nthreshold = 3\n"));
    assert!(err.contains("privacy.threshold"), "{err}");
    assert_eq!(config.failed_round, FailedRound::Stop);
    let fedavg = on.replace("rounds = 3", "rounds = 3\nalgorithm = \"fedavg\"");
    let skip =
        TaskConfig::parse(&format!("{fedavg}failed_round = \"skip\"\n"), "task.toml").unwrap();
    assert_eq!(skip.failed_round, FailedRound::Skip);
    // "auto" picks Newton here.
    let err = error_of(&format!("{on}failed_round = \"skip\"\n"));
    assert!(err.contains("privacy.failed_round"), "{err}");
    let err = error_of(&format!("{on}failed_round = \"retry\"\n"));
    assert!(err.contains("failed_round"), "{err}");
    let err = error_of(&format!("{five}\n[privacy]\nfailed_round = \"skip\"\n"));
    assert!(err.contains("privacy.failed_round"), "{err}");
    let newton = on.replace("rounds = 3", "rounds = 3\nalgorithm = \"newton\"");
    let config = TaskConfig::parse(&newton, "task.toml").unwrap();
    assert_eq!(config.algorithm, Algorithm::Newton);
    let linear = on.replace("logistic", "linear");
    let config = TaskConfig::parse(&linear, "task.toml").unwrap();
    assert_eq!(config.algorithm, Algorithm::ClosedForm);
    let err = error_of(&on.replace("rounds = 3", "rounds = 3\naggregation = \"median\""));
    assert!(err.contains("training.aggregation"), "{err}");
    let err = error_of(&on.replace("rounds = 3", "rounds = 3\nclip_norm = 1.0"));
    assert!(err.contains("training.clip_norm"), "{err}");
    // Site-alone models are each one site's: not with secure
    // aggregation.
    let err = error_of(&format!(
        "{five}\n[evaluation]\nbaselines = true\n[privacy]\nsecure_aggregation = true\n"
    ));
    assert!(err.contains("evaluation.baselines"), "{err}");
}

#[test]
fn errors_carry_the_line_and_the_key() {
    // GOOD: [task] on line 2, [training] on line 9, rounds on line 10.
    let err = error_of(&format!("{GOOD}roundz = 4\n"));
    assert!(
        err.starts_with(
            "task.toml, line 11, column 1: [training] unknown key `roundz`; allowed: rounds, "
        ),
        "{err}"
    );
    let err = error_of(&format!("colour = 1\n{GOOD}"));
    assert!(
        err.starts_with(
            "task.toml, line 1, column 1: top level unknown key `colour`; allowed: task, "
        ),
        "{err}"
    );
    let err = error_of(&GOOD.replace("rounds = 3", "rounds = \"3\""));
    assert!(
        err.starts_with("task.toml, line 10, column 10: training.rounds: invalid type"),
        "{err}"
    );
    let err = error_of(&GOOD.replace("rounds = 3", "rounds = 0"));
    assert!(
        err.starts_with("task.toml, line 10: training.rounds: "),
        "{err}"
    );
    let err = error_of(&format!("{GOOD}quorum = 3\n"));
    assert!(
        err.starts_with("task.toml, line 11: training.quorum: "),
        "{err}"
    );
    let err = error_of(&format!(
        "{GOOD}\n[[columns]]\nname = \"x1\"\n\n[[columns]]\nname = \"x9\"\n"
    ));
    assert!(
        err.starts_with("task.toml, line 16: columns[1].name: "),
        "{err}"
    );
    let err = error_of(&format!(
        "{GOOD}\n[[columns]]\nname = \"x1\"\ntransfrom = \"none\"\n"
    ));
    assert!(
        err.starts_with("task.toml, line 14, column 1: [columns[0]] unknown key `transfrom`"),
        "{err}"
    );
}

#[test]
fn the_summary_names_what_the_task_defines() {
    let config = TaskConfig::parse(GOOD, "task.toml").unwrap();
    let summary = config.summary();
    assert!(summary.contains("members     a, b (quorum 2)"), "{summary}");
    assert!(
        summary.contains("logistic, target y, 2 features, 3 parameters"),
        "{summary}"
    );
    assert!(summary.contains("newton"), "{summary}");
    assert!(summary.contains("at most 3 rounds"), "{summary}");
}

#[test]
fn a_hand_built_config_with_a_bad_trim_is_an_error_not_a_panic() {
    let mut config = TaskConfig::parse(GOOD, "task.toml").unwrap();
    config.aggregation = Aggregation::TrimmedMean;
    assert!(config.strategy().is_ok());
    config.trim_fraction = 0.7;
    let err = config.strategy().err().expect("refused").to_string();
    assert!(err.contains("training.trim_fraction"), "{err}");
    config.trim_fraction = 0.1;
    config.clip_norm = Some(-1.0);
    let err = config.strategy().err().expect("refused").to_string();
    assert!(err.contains("training.clip_norm"), "{err}");
}
