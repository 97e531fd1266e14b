//! A hostile coordinator against a hospital's policy: for each way a
//! coordinator could try to single out a patient (a record identifier as a
//! feature, a dummy column that one row fills, a score histogram as fine as
//! a record number, a site too small to hide in, an instruction the task
//! never announced, more evaluations than agreed, a task other than the one
//! approved, a coordinator other than the pinned one), the real `node`
//! refuses before any value derived from a row leaves: the coordinator
//! receives one signed refusal naming the rule and no record value, the
//! hospital's exchange log holds that refusal and nothing computed from its
//! rows, and the node exits with the policy status.

use std::process::ExitStatus;

use medfed::NodeRun;
use medfed::hostile::{
    Hospital, HostileCoordinator, ROW_DERIVED_KINDS, Received, Script, plain_preprocessing,
};
use medfed_model::ModelKind;
use medfed_model::preprocess::ColumnSpec;
use medfed_wire::pb;
use medfed_wire::{DifferentialPrivacy, Instruction, Task, TrainingAlgorithm};
use ndarray::Array1;

/// The member the hospital's certificate names.
const MEMBER: &str = "st-elsewhere";
/// Patients at a site of ordinary size.
const ROWS: usize = 80;
/// Held-out share and seed of every task here: 20 of 80 rows held out.
const HOLDOUT: f64 = 0.25;
const SPLIT_SEED: u64 = 7;
/// The exit status of a policy refusal.
const POLICY_EXIT: i32 = 7;

/// The text of a CSV file with these columns (NaN is written as an empty
/// cell).
fn csv(columns: &[(&str, Vec<f64>)]) -> String {
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let mut text = names.join(",");
    text.push('\n');
    for row in 0..columns[0].1.len() {
        let cells: Vec<String> = columns
            .iter()
            .map(|(_, values)| {
                let v = values[row];
                if v.is_nan() {
                    String::new()
                } else {
                    format!("{v}")
                }
            })
            .collect();
        text.push_str(&cells.join(","));
        text.push('\n');
    }
    text
}

/// `x1` of patient `i` of `n`: distinct values in (0, 10), exact in decimal
/// (37 is prime to the site sizes used here).
fn x1(i: usize, n: usize) -> f64 {
    let k = (i * 37) % n;
    (k * 10_000 / n + 10) as f64 / 1000.0
}

/// `x2` of patient `i` of `n`: values in [-2.5, 2.5).
fn x2(i: usize, n: usize) -> f64 {
    ((i * 53) % n) as f64 * 5.0 / n as f64 - 2.5
}

/// The outcome of patient `i`: both classes in every part of the split.
fn y(i: usize) -> f64 {
    (i % 2) as f64
}

/// The ordinary columns `x1`, `x2` and `y` of `n` patients.
fn cohort(n: usize) -> Vec<(&'static str, Vec<f64>)> {
    vec![
        ("x1", (0..n).map(|i| x1(i, n)).collect()),
        ("x2", (0..n).map(|i| x2(i, n)).collect()),
        ("y", (0..n).map(y).collect()),
    ]
}

/// A plain logistic FedAvg task over `columns`, for this one member.
fn task(id: &str, columns: Vec<ColumnSpec>) -> Task {
    Task {
        task_id: id.to_owned(),
        features: columns.iter().map(|c| c.name.clone()).collect(),
        columns,
        target: "y".into(),
        model: ModelKind::Logistic,
        l2: 0.01,
        local_steps: 5,
        learning_rate: 0.1,
        holdout_fraction: HOLDOUT,
        split_seed: SPLIT_SEED,
        rounds: 3,
        score_bins: 100,
        members: vec![MEMBER.into()],
        secure_aggregation: None,
        differential_privacy: None,
        algorithm: TrainingAlgorithm::Fedavg,
        baselines: false,
        evaluate_every: 0,
    }
}

/// The numeric columns `x1` and `x2` with the defaults.
fn numeric() -> Vec<ColumnSpec> {
    vec![ColumnSpec::numeric("x1"), ColumnSpec::numeric("x2")]
}

/// Which of `n` patients the tasks here hold out.
fn held_out(n: usize) -> Vec<bool> {
    medfed_model::holdout_mask(n, HOLDOUT, SPLIT_SEED).expect("split")
}

/// A hospital with `columns` facing a hostile coordinator that serves
/// `script`, run once with `policy` (and `extra` tables) in its node file.
struct Attack {
    hospital: Hospital,
    coordinator: HostileCoordinator,
    run: NodeRun,
}

impl Attack {
    fn run(columns: &[(&str, Vec<f64>)], script: Script, policy: &str, extra: &str) -> Attack {
        let hospital = Hospital::new(MEMBER, &csv(columns), "y");
        let coordinator = hospital.coordinator(script);
        let node_file = hospital.node_file(&coordinator.url(), policy, extra);
        let run = hospital.run(&node_file);
        Attack {
            hospital,
            coordinator,
            run,
        }
    }

    fn output(&self) -> String {
        format!("{}{}", self.run.stdout, self.run.stderr)
    }

    /// Checks that the node answered with `sent_first` (in order, the kinds
    /// it was right to send) and then refused `step` by `rule`: the
    /// coordinator received exactly those and one signed refusal from this
    /// member, the node's output names the rule, the node exited with the
    /// policy status, and its exchange log holds the refusal as sent and no
    /// row-derived entry beyond `sent_first`. Returns the refusal.
    fn refused_after(&self, sent_first: &[&str], rule: &str, step: u64) -> pb::Refusal {
        let output = self.output();
        let received = self.coordinator.received();
        let mut expected = sent_first.to_vec();
        expected.push("refusal");
        assert_eq!(
            received.kinds(),
            expected,
            "what the coordinator received; node output:\n{output}"
        );
        assert_exit(self.run.status, POLICY_EXIT, &output);
        let submitted = received.submissions.last().expect("a submission");
        assert!(submitted.signature_valid, "the refusal is not signed");
        assert_eq!(submitted.peer.as_deref(), Some(MEMBER));
        let refusal = submitted.refusal().expect("a refusal").clone();
        assert_eq!(refusal.rule, rule, "{refusal:?}\n{output}");
        assert_eq!(refusal.step, step, "{refusal:?}");
        assert!(!refusal.reason.is_empty(), "{refusal:?}");
        assert!(
            output.contains(&format!("`{rule}`")),
            "the node's output does not name the rule `{rule}`:\n{output}"
        );
        let log = self.hospital.exchange_log();
        let logged: Vec<_> = log.iter().filter(|e| e.kind == "refusal").collect();
        assert_eq!(logged.len(), 1, "refusals in the exchange log: {log:#?}");
        assert_eq!(logged[0].direction, "out");
        assert_eq!(
            logged[0].sha256,
            medfed_audit::Digest::of(&submitted.signed.body).to_string(),
            "the log holds another refusal than the one sent"
        );
        let row_derived: Vec<&str> = log
            .iter()
            .filter(|e| ROW_DERIVED_KINDS.contains(&e.kind.as_str()))
            .map(|e| e.kind.as_str())
            .collect();
        assert_eq!(row_derived, sent_first, "row-derived entries in the log");
        refusal
    }

    /// [`Attack::refused_after`] with nothing sent first.
    fn refused(&self, rule: &str, step: u64) -> pb::Refusal {
        self.refused_after(&[], rule, step)
    }
}

fn assert_exit(status: ExitStatus, code: i32, output: &str) {
    assert_eq!(
        status.code(),
        Some(code),
        "node exit status ({status}); output:\n{output}"
    );
}

/// Asserts that `reason` quotes none of `values` (a patient's cells, as the
/// CSV wrote them).
fn assert_quotes_none(reason: &str, values: &[f64]) {
    for v in values {
        let text = format!("{v}");
        assert!(
            !reason.contains(&text),
            "the refusal quotes a record value {text}: {reason}"
        );
    }
}

/// Attack 1: a record identifier used as a feature.
#[test]
fn an_identifier_column_as_a_feature_is_refused_by_columns() {
    let ids: Vec<f64> = (0..ROWS).map(|i| (4_100_017 + 7 * i) as f64).collect();
    let mut columns = vec![("patient_id", ids.clone())];
    columns.extend(cohort(ROWS));
    let task = task(
        "identifier-feature",
        vec![ColumnSpec::numeric("patient_id"), ColumnSpec::numeric("x1")],
    );
    let attack = Attack::run(&columns, Script::new(&task), "", "");
    let refusal = attack.refused("columns", 0);
    assert!(refusal.reason.contains("patient_id"), "{refusal:?}");
    assert_quotes_none(&refusal.reason, &ids);
}

/// The first patient of an ordinary site who is held out (`true`) or
/// trains (`false`).
fn first_patient(held: bool) -> usize {
    let mask = held_out(ROWS);
    (0..ROWS).find(|&i| mask[i] == held).expect("a patient")
}

/// Attack 2: an unknown-value code that one patient has, with a missing
/// indicator, would make a column that is 1 for that patient alone.
fn unknown_value_isolating(singled_out: usize) {
    let (columns, task) = unknown_value_site(singled_out);
    let attack = Attack::run(&columns, Script::new(&task), "", "");
    let refusal = attack.refused("min_cell", 0);
    assert_quotes_none(&refusal.reason, &[x1(singled_out, ROWS)]);
}

/// A site where patient `singled_out` alone has the unknown-value code of
/// `x2`, and a task that reads it with a missing indicator.
fn unknown_value_site(singled_out: usize) -> (Vec<(&'static str, Vec<f64>)>, Task) {
    let mut columns = cohort(ROWS);
    columns[1].1[singled_out] = 999.0;
    let mut x2 = ColumnSpec::numeric("x2");
    x2.unknown_values = vec![999.0];
    x2.missing_indicator = true;
    let task = task(
        "unknown-value-isolation",
        vec![ColumnSpec::numeric("x1"), x2],
    );
    (columns, task)
}

#[test]
fn an_unknown_value_code_that_isolates_one_training_patient_is_refused_by_min_cell() {
    unknown_value_isolating(first_patient(false));
}

/// The held-out rows are scored by models the coordinator chooses: a model
/// with a large weight on the indicator would move the singled-out patient's
/// score (and the released log-loss sum) alone. The site still trains (its
/// training rows single nobody out), but no held-out count leaves: the
/// evaluation it sends is the counts of no rows.
#[test]
fn an_unknown_value_code_that_isolates_one_held_out_patient_withholds_every_held_out_count() {
    let (columns, task) = unknown_value_site(first_patient(true));
    held_out_counts_withheld(&columns, &task);
}

/// Sends one evaluation of a model with a large weight on the last design
/// column (the one that singles a held-out patient out) and checks that the
/// node answers with the counts of no rows.
fn held_out_counts_withheld(columns: &[(&str, Vec<f64>)], task: &Task) {
    let mut model = Array1::zeros(task.dimension());
    model[task.dimension() - 1] = 30.0;
    let script = Script::new(task).then(Instruction::Evaluate {
        preprocessing: plain_preprocessing(task),
        models: vec![model],
    });
    let attack = Attack::run(columns, script, "", "");
    let output = attack.output();
    assert_exit(attack.run.status, 0, &output);
    assert!(output.contains("held-out counts withheld"), "{output}");
    let received = attack.coordinator.received();
    assert_eq!(received.kinds(), ["evaluation"], "{output}");
    let report = received.submissions[0]
        .evaluation()
        .expect("an evaluation")
        .clone();
    assert!(
        report.models[0].values.iter().all(|v| *v == 0.0),
        "withheld counts must be the counts of no rows: {:?}",
        &report.models[0].values[..6]
    );
    assert!(
        report
            .calibration
            .iter()
            .all(|c| c.count.iter().all(|n| *n == 0)),
        "calibration counts must be withheld too"
    );
}

/// Attack 3: a one-hot category that one patient has.
fn one_hot_isolating(singled_out: usize) {
    let (columns, task) = one_hot_site(singled_out);
    let attack = Attack::run(&columns, Script::new(&task), "", "");
    let refusal = attack.refused("min_cell", 0);
    assert_quotes_none(
        &refusal.reason,
        &[x1(singled_out, ROWS), x2(singled_out, ROWS)],
    );
}

/// A site where patient `singled_out` alone has category 3 of `c`, and a
/// task that one-hot encodes it.
fn one_hot_site(singled_out: usize) -> (Vec<(&'static str, Vec<f64>)>, Task) {
    let mut columns = cohort(ROWS);
    let codes: Vec<f64> = (0..ROWS)
        .map(|i| {
            if i == singled_out {
                3.0
            } else {
                1.0 + (i % 2) as f64
            }
        })
        .collect();
    columns.insert(2, ("c", codes));
    let task = task(
        "singleton-one-hot",
        vec![
            ColumnSpec::numeric("x1"),
            ColumnSpec::categorical("c", vec![1, 2, 3]),
        ],
    );
    (columns, task)
}

#[test]
fn a_one_hot_category_of_one_training_patient_is_refused_by_min_cell() {
    one_hot_isolating(first_patient(false));
}

/// As for the unknown-value code: a held-out patient alone in a dummy
/// column would be singled out by the models the held-out rows are scored
/// with, so no held-out count leaves.
#[test]
fn a_one_hot_category_of_one_held_out_patient_withholds_every_held_out_count() {
    let (columns, task) = one_hot_site(first_patient(true));
    held_out_counts_withheld(&columns, &task);
}

/// Attack 4: a score histogram with as many bins as there could be record
/// numbers.
#[test]
fn a_score_histogram_finer_than_the_policy_is_refused_by_max_score_bins() {
    let mut task = task("record-number-bins", numeric());
    task.score_bins = 1_000_000;
    let script = Script::new(&task);
    let attack = Attack::run(&cohort(ROWS), script, "", "");
    attack.refused("max_score_bins", 0);
}

/// Attack 4, within the policy's bins: a model crafted so that every
/// held-out patient would land in a score bin of their own. The node sends
/// its counts, but only after merging bins: every nonzero cell of the score
/// histograms and of the calibration table counts at least `min_cell` (5)
/// patients, and the merged histograms still count every held-out row. (The
/// site is large enough that every cell of the confusion matrix, which is
/// released as it is, holds 5 patients: the counts are not withheld.)
#[test]
fn a_model_crafted_to_bin_each_patient_alone_gets_only_merged_bins() {
    let rows = 200;
    let bins = 10_000;
    let mut task = task("crafted-scores", numeric());
    task.score_bins = bins;
    // p = sigmoid(x1 / 2 - 2.5): x1 values 0.05 apart land bins apart.
    let model = Array1::from(vec![-2.5, 0.5, 0.0]);
    let mask = held_out(rows);
    let held: Vec<usize> = (0..rows).filter(|&i| mask[i]).collect();
    let score = |i: usize| 1.0 / (1.0 + (-(model[0] + model[1] * x1(i, rows))).exp());
    let cell = |positive: bool, predicted: bool| {
        held.iter()
            .filter(|&&i| (y(i) == 1.0) == positive && (score(i) >= 0.5) == predicted)
            .count()
    };
    let confusion = [
        cell(true, true),
        cell(false, true),
        cell(false, false),
        cell(true, false),
    ];
    assert!(confusion.iter().all(|&c| c >= 5), "{confusion:?}");
    let mut scored: Vec<usize> = held
        .iter()
        .map(|&i| (score(i) * f64::from(bins)).floor() as usize)
        .collect();
    scored.sort_unstable();
    scored.dedup();
    assert_eq!(
        scored.len(),
        held.len(),
        "the crafted model must give every held-out patient a bin of their own"
    );
    let script = Script::new(&task).then(Instruction::Evaluate {
        preprocessing: plain_preprocessing(&task),
        models: vec![model],
    });
    let attack = Attack::run(&cohort(rows), script, "", "");
    let output = attack.output();
    assert_exit(attack.run.status, 0, &output);
    let received = attack.coordinator.received();
    assert_eq!(received.kinds(), ["evaluation"], "{output}");
    let report = received.submissions[0]
        .evaluation()
        .expect("an evaluation")
        .clone();
    assert_eq!(report.models.len(), 1);
    let values = &report.models[0].values;
    let n = values[0];
    assert_eq!(n, held.len() as f64, "held-out rows counted");
    let histograms = &values[6..];
    assert_eq!(histograms.len(), 2 * bins as usize, "layout of the counts");
    let small: Vec<(usize, f64)> = histograms
        .iter()
        .copied()
        .enumerate()
        .filter(|&(_, count)| count > 0.0 && count < 5.0)
        .collect();
    assert!(
        small.is_empty(),
        "score-histogram cells under min_cell (index, count): {small:?}"
    );
    assert_eq!(histograms.iter().sum::<f64>(), n, "merged bins lose rows");
    for calibration in &report.calibration {
        // Per decile: rows, positives and negatives.
        let small: Vec<(u64, u64)> = calibration
            .count
            .iter()
            .zip(&calibration.label_sum)
            .map(|(&count, &positives)| (count, positives))
            .filter(|&(count, positives)| {
                [count, positives, count.saturating_sub(positives)]
                    .iter()
                    .any(|&c| c > 0 && c < 5)
            })
            .collect();
        assert!(
            small.is_empty(),
            "calibration cells under min_cell (rows, positives): {small:?}"
        );
    }
    let log = attack.hospital.exchange_log();
    assert!(log.iter().all(|e| e.kind != "refusal"), "{log:#?}");
}

/// Attack 5: a site so small that any aggregate of it describes a few
/// patients.
#[test]
fn a_site_of_three_rows_refuses_by_min_rows() {
    let mut task = task("tiny-site", vec![ColumnSpec::numeric("x1")]);
    task.holdout_fraction = 0.0;
    let columns = cohort(3);
    // Two parameters for three rows: only the row count is at fault.
    let attack = Attack::run(
        &columns,
        Script::new(&task),
        "max_parameters_per_row = 1.0",
        "",
    );
    let refusal = attack.refused("min_rows", 0);
    let values: Vec<f64> = columns.iter().flat_map(|(_, v)| v.clone()).collect();
    assert_quotes_none(&refusal.reason, &values[..6]);
}

/// Attack 6: a statistics step over a categorical column where one
/// category counts one training patient. The category has 5 patients in
/// all (one training, four held out), so a check of the site's rows as a
/// whole would let the task through and leave it to the check of the
/// statistics about to leave. The node checks the training rows, the very
/// rows the statistics summarise, at the task already: it refuses at step
/// 0, and no statistics leave.
#[test]
fn a_category_count_of_one_at_statistics_is_refused_by_min_cell() {
    let mask = held_out(ROWS);
    let training: Vec<usize> = (0..ROWS).filter(|&i| !mask[i]).collect();
    let holdout: Vec<usize> = (0..ROWS).filter(|&i| mask[i]).collect();
    let rare: Vec<usize> = std::iter::once(training[0])
        .chain(holdout[..4].iter().copied())
        .collect();
    let codes: Vec<f64> = (0..ROWS)
        .map(|i| {
            if rare.contains(&i) {
                3.0
            } else {
                1.0 + (i % 2) as f64
            }
        })
        .collect();
    let mut columns = cohort(ROWS);
    columns.insert(2, ("c", codes));
    let task = task(
        "singleton-statistics",
        vec![
            ColumnSpec::numeric("x1"),
            ColumnSpec::categorical("c", vec![1, 2, 3]),
        ],
    );
    let script = Script::new(&task).then(Instruction::CollectStatistics);
    let attack = Attack::run(&columns, script, "", "");
    let refusal = attack.refused("min_cell", 0);
    assert_quotes_none(
        &refusal.reason,
        &[x1(training[0], ROWS), x2(training[0], ROWS)],
    );
}

/// The `[privacy]` table of a hospital that takes part in DP tasks.
const BUDGET: &str = "[privacy]\nepsilon = 10.0\ndelta = 1e-5\n";

/// A DP-FedAvg task.
fn dp_task(id: &str) -> Task {
    let mut task = task(id, numeric());
    task.differential_privacy = Some(DifferentialPrivacy {
        noise_multiplier: 2.0,
        clip_norm: 1.0,
    });
    task
}

/// Attack 7: a DP-FedAvg task whose coordinator asks for exact, unnoised
/// Newton sums.
#[test]
fn newton_in_a_dp_fedavg_task_is_refused_by_task() {
    let task = dp_task("dp-then-newton");
    let script = Script::new(&task).then(Instruction::Newton {
        round: 1,
        params: Array1::zeros(task.dimension()),
        preprocessing: plain_preprocessing(&task),
        evaluate: false,
    });
    let attack = Attack::run(&cohort(ROWS), script, "", BUDGET);
    attack.refused("task", 1);
}

/// Attack 7: a DP task that also asks for a model trained on this site's
/// rows alone, which DP-FedAvg does not protect.
#[test]
fn baselines_in_a_dp_task_are_refused_by_task() {
    let mut task = dp_task("dp-baselines");
    task.baselines = true;
    let attack = Attack::run(&cohort(ROWS), Script::new(&task), "", BUDGET);
    attack.refused("task", 0);
}

/// Attack 8: more held-out evaluations than the hospital agreed to (each
/// one scored model reveals a little more about the held-out rows).
#[test]
fn a_third_evaluation_past_max_evaluations_is_refused() {
    let task = task("too-many-evaluations", numeric());
    let evaluate = |weight: f64| Instruction::Evaluate {
        preprocessing: plain_preprocessing(&task),
        models: vec![Array1::from(vec![0.0, weight, 0.0])],
    };
    let script = Script::new(&task)
        .then(evaluate(0.0))
        .then(evaluate(0.1))
        .then(evaluate(0.2));
    let attack = Attack::run(&cohort(ROWS), script, "max_evaluations = 2", "");
    attack.refused_after(&["evaluation", "evaluation"], "max_evaluations", 3);
}

/// The policy line that names the hospital's file of approved task hashes.
const APPROVED: &str = "approved_tasks = \"approved-tasks.txt\"";

/// Attack 9: a task whose hash is not among the approved ones.
#[test]
fn a_task_not_approved_is_refused_by_approved_tasks() {
    let hospital = Hospital::new(MEMBER, &csv(&cohort(ROWS)), "y");
    let other = medfed_audit::Digest::of(b"a task approved some other day");
    std::fs::write(
        hospital.root().join("approved-tasks.txt"),
        format!("{other}\n"),
    )
    .expect("approved tasks");
    let task = task("not-approved", numeric());
    let coordinator = hospital.coordinator(Script::new(&task));
    let node_file = hospital.node_file(&coordinator.url(), APPROVED, "");
    let run = hospital.run(&node_file);
    let attack = Attack {
        hospital,
        coordinator,
        run,
    };
    attack.refused("approved_tasks", 0);
}

/// Approves the task the coordinator serves with `node task approve`,
/// checking that it only described the task (no join, nothing sent) and
/// that the hash approved is the one `node task review` prints.
fn approve(hospital: &Hospital, coordinator: &HostileCoordinator, node_file: &std::path::Path) {
    let review = hospital.node(&["task", "review"], node_file);
    let reviewed = String::from_utf8_lossy(&review.stdout).into_owned();
    // Not approved yet, the task is one the policy would refuse, by that
    // rule alone.
    assert_eq!(
        review.status.code(),
        Some(POLICY_EXIT),
        "node task review: {reviewed}{}",
        String::from_utf8_lossy(&review.stderr)
    );
    let refused: Vec<&str> = reviewed
        .lines()
        .filter(|line| line.trim_start().starts_with("REFUSED"))
        .collect();
    assert_eq!(refused.len(), 1, "{reviewed}");
    assert!(refused[0].contains("approved_tasks"), "{reviewed}");
    let hash = reviewed
        .lines()
        .find_map(|line| line.trim().strip_prefix("task sha256: "))
        .unwrap_or_else(|| panic!("no `task sha256:` line in the review:\n{reviewed}"))
        .trim()
        .to_owned();
    assert!(
        hash.len() == 64
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "task sha256 {hash:?}"
    );
    let approved = hospital.node(&["task", "approve", "--sha256", &hash], node_file);
    assert!(
        approved.status.success(),
        "node task approve: {}{}",
        String::from_utf8_lossy(&approved.stdout),
        String::from_utf8_lossy(&approved.stderr)
    );
    let file = std::fs::read_to_string(hospital.root().join("approved-tasks.txt"))
        .expect("the approved-tasks file");
    assert!(file.contains(&hash), "approved {file:?}, reviewed {hash}");
    let received: Received = coordinator.received();
    assert_eq!(
        received.describes.len(),
        2,
        "review and approve describe the task"
    );
    assert!(received.joins.is_empty(), "approving joined the task");
    assert!(received.submissions.is_empty(), "approving sent something");
}

/// Attack 9: the task approved, then served with one field changed.
#[test]
fn an_approved_task_altered_afterwards_is_refused_by_approved_tasks() {
    let hospital = Hospital::new(MEMBER, &csv(&cohort(ROWS)), "y");
    let approved = task("approved-then-altered", numeric());
    let coordinator = hospital.coordinator(Script::new(&approved));
    let node_file = hospital.node_file(&coordinator.url(), APPROVED, "");
    approve(&hospital, &coordinator, &node_file);
    let mut altered = approved.clone();
    altered.l2 = 0.0;
    coordinator.serve(Script::new(&altered).then(Instruction::CollectStatistics));
    let run = hospital.run(&node_file);
    let attack = Attack {
        hospital,
        coordinator,
        run,
    };
    attack.refused("approved_tasks", 0);
}

/// The control of attack 9: the approved task, served unchanged, is taken
/// part in.
#[test]
fn an_approved_task_served_unchanged_is_accepted() {
    let hospital = Hospital::new(MEMBER, &csv(&cohort(ROWS)), "y");
    let approved = task("approved-unchanged", numeric());
    let coordinator = hospital.coordinator(Script::new(&approved));
    let node_file = hospital.node_file(&coordinator.url(), APPROVED, "");
    approve(&hospital, &coordinator, &node_file);
    coordinator.serve(Script::new(&approved).then(Instruction::CollectStatistics));
    let run = hospital.run(&node_file);
    let output = format!("{}{}", run.stdout, run.stderr);
    assert_exit(run.status, 0, &output);
    assert_eq!(coordinator.received().kinds(), ["statistics"], "{output}");
}

/// Attack 10: a coordinator whose certificate is not the one the hospital
/// pinned (here the consortium CA's own is pinned): the node does not even
/// join. The control: pinning the coordinator's real certificate, it does.
#[test]
fn a_coordinator_certificate_other_than_the_pinned_one_gets_no_join() {
    let hospital = Hospital::new(MEMBER, &csv(&cohort(ROWS)), "y");
    let digest_of = |path: std::path::PathBuf| {
        let certs = medfed_tls::load_certs(&path).expect("certificate");
        medfed_audit::Digest::of(certs[0].as_ref()).to_string()
    };
    let other = digest_of(hospital.pki().join("ca/ca.pem"));
    let real = digest_of(hospital.pki().join("coordinator/coordinator.pem"));
    let task = task("pinned-coordinator", numeric());
    let coordinator = hospital.coordinator(Script::new(&task).then(Instruction::CollectStatistics));

    let node_file = hospital.node_file(
        &coordinator.url(),
        &format!("coordinator = \"{other}\""),
        "",
    );
    let run = hospital.run(&node_file);
    let output = format!("{}{}", run.stdout, run.stderr);
    assert_exit(run.status, 5, &output);
    let lower = output.to_lowercase();
    assert!(
        lower.contains("coordinator") && lower.contains("pin"),
        "the node does not say the coordinator is not the pinned one:\n{output}"
    );
    let received = coordinator.received();
    assert!(received.joins.is_empty(), "joined: {received:?}");
    assert!(received.describes.is_empty(), "described: {received:?}");
    assert!(
        received.polls.is_empty(),
        "asked for instructions: {received:?}"
    );
    assert!(received.submissions.is_empty(), "sent: {received:?}");

    let node_file =
        hospital.node_file(&coordinator.url(), &format!("coordinator = \"{real}\""), "");
    let run = hospital.run(&node_file);
    let output = format!("{}{}", run.stdout, run.stderr);
    assert_exit(run.status, 0, &output);
    let received = coordinator.received();
    assert_eq!(received.joins.len(), 1, "{output}");
    assert_eq!(received.kinds(), ["statistics"], "{output}");
}

/// A Sybil in the roster: the operator, who runs the consortium CA, issues
/// a second certificate under a member's name and routes a secure round to
/// it. A hospital that pinned that member's certificate
/// (`member_certificates`) refuses the round before its masked input (or
/// anything else) leaves.
#[test]
fn a_roster_certificate_other_than_the_pinned_one_is_refused_by_member_certificates() {
    let hospital = Hospital::new(MEMBER, &csv(&cohort(ROWS)), "y");
    let own = medfed_tls::load_certs(&hospital.pki().join(format!("{MEMBER}/{MEMBER}.pem")))
        .expect("certificate")[0]
        .as_ref()
        .to_vec();
    let entry = |name: &str, der: Vec<u8>| medfed_wire::RosterMember {
        name: name.into(),
        certificate_sha256: {
            let hex = medfed_tls::certificate_sha256(&der);
            let mut digest = [0u8; 32];
            for (i, byte) in digest.iter_mut().enumerate() {
                *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
            }
            digest
        },
        certificate: Some(der),
    };
    let mut task = task("sybil-roster", numeric());
    task.members = vec![MEMBER.into(), "peer-b".into(), "peer-c".into()];
    task.secure_aggregation = Some(medfed_wire::SecureAggregation {
        threshold: 2,
        fixed_point_bits: 24,
    });
    let work = Instruction::Train {
        round: 1,
        global: Array1::zeros(task.dimension()),
        preprocessing: plain_preprocessing(&task),
        prox_mu: 0.0,
        evaluate: false,
    };
    // The impostor's certificate: any bytes the operator likes (the pin is
    // checked before the CA); it comes first, so the refusal is its own.
    let roster = vec![
        entry("peer-b", b"a second certificate issued for peer-b".to_vec()),
        entry(MEMBER, own.clone()),
        entry("peer-c", own),
    ];
    let script = Script::new(&task).then(Instruction::SecAggKeys {
        work: Box::new(work),
        roster,
    });
    let pinned = format!(
        "member_certificates = {{ peer-b = \"{}\" }}",
        "ab".repeat(32)
    );
    let attack = Attack::run(&cohort(ROWS), script, &pinned, "");
    let refusal = attack.refused("member_certificates", 1);
    assert!(refusal.reason.contains("peer-b"), "{refusal:?}");
}
