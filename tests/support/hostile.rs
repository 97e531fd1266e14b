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

use medfed_model::preprocess::{Encoding, FittedColumn, FittedPreprocessor, Scaling};
use medfed_wire::Task;

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
