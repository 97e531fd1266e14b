//! A hostile coordinator and the hospital that faces it: the harness of the
//! tests that prove a node refuses, under its own policy, before any value
//! derived from a row leaves.
//!
//! The coordinator is played in-process by [`HostileCoordinator`]: a real
//! gRPC server over mutual TLS with the consortium's certificates, which
//! answers `Join` and `Describe` with a crafted task, hands out a scripted
//! list of instructions, and records everything a node sends. The hospital
//! is a real `node` process: [`Hospital`] provisions its certificates,
//! imports its CSV into a vault with `node import`, writes its node file
//! (with a `[policy]` table), runs it, and reads its exchange log back with
//! `medfed-audit`.
//!
//! # Layout
//! - `server`: [`HostileCoordinator`], the [`Script`] it serves and what it
//!   [`Received`].
//! - `site`: [`Hospital`], its node file, its runs and its exchange log
//!   ([`LogEntry`]), and the other members' [`Identity`] in its PKI.
//! - `secagg`: [`SecureRuns`], a [`Director`] that runs secure rounds for
//!   real up to the node's masked input, playing the other members.
//! - This file: [`plain_preprocessing`], a published preprocessing that
//!   matches a task's column specs without having been fitted to any data.

mod secagg;
mod server;
mod site;

pub use secagg::{Gathered, Outcome, SecureRun, SecureRuns, SplitView};
pub use server::{Call, Director, HostileCoordinator, Received, Script, Submitted};
pub use site::{Hospital, Identity, LogEntry, ROW_DERIVED_KINDS};

use medfed_model::ModelKind;
use medfed_model::preprocess::ColumnSpec;
use medfed_model::preprocess::{Encoding, FittedColumn, FittedPreprocessor, Scaling};
use medfed_wire::{Task, TrainingAlgorithm};

/// The preprocessing a coordinator could publish for `task` without any
/// statistics: every column as its spec declares it (unknown-value codes,
/// missing indicator, one-hot codes), values used as they are (centre 0,
/// scale 1) and a missing value filled with 0.
pub fn plain_preprocessing(task: &Task) -> FittedPreprocessor {
    let unit = Scaling {
        fill: 0.0,
        center: 0.0,
        scale: 1.0,
    };
    FittedPreprocessor {
        columns: task
            .columns
            .iter()
            .map(|spec| FittedColumn {
                name: spec.name.clone(),
                unknown_values: spec.unknown_values.clone(),
                missing_indicator: spec.missing_indicator,
                encoding: match &spec.categories {
                    None => Encoding::Numeric(unit),
                    Some(codes) => Encoding::Categorical {
                        codes: codes.clone(),
                        dummies: vec![unit; codes.len()],
                    },
                },
            })
            .collect(),
    }
}

/// `rows` patients with two numeric features `x1`, `x2` and a two-class
/// `y` (alternating), as a CSV text: the cohort of the secure-aggregation
/// and DP attacks.
pub fn two_feature_csv(rows: usize) -> String {
    let mut text = String::from("x1,x2,y\n");
    for i in 0..rows {
        let x1 = ((i * 37) % rows) as f64 / 8.0;
        let x2 = ((i * 53) % rows) as f64 / 16.0 - 2.5;
        text.push_str(&format!("{x1},{x2},{}\n", i % 2));
    }
    text
}

/// A logistic FedAvg task over [`two_feature_csv`]'s `x1` and `x2` for
/// `members`, in clear and without DP: each attack sets what it is about
/// with struct update syntax.
pub fn two_feature_task(id: &str, members: &[&str]) -> Task {
    Task {
        task_id: id.to_owned(),
        features: vec!["x1".into(), "x2".into()],
        columns: vec![ColumnSpec::numeric("x1"), ColumnSpec::numeric("x2")],
        target: "y".into(),
        model: ModelKind::Logistic,
        l2: 0.01,
        local_steps: 5,
        learning_rate: 0.1,
        holdout_fraction: 0.25,
        split_seed: 7,
        rounds: 3,
        score_bins: 100,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
        secure_aggregation: None,
        differential_privacy: None,
        algorithm: TrainingAlgorithm::Fedavg,
        baselines: false,
        evaluate_every: 0,
    }
}
