//! A small federation's exchange, logged by the coordinator and by one node
//! (`st-marys`), with optional faults; shared by the integration tests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use medfed_audit::{
    AuditError, AuditKey, Direction, LogWriter, Record, Signature, SigningKey, SyncPolicy,
};
use medfed_wire::pb;
use prost::Message as _;
use tempfile::TempDir;

pub const TASK: &str = "sepsis-2025";
pub const COORDINATOR: &str = "coordinator";
pub const NODE: &str = "st-marys";
pub const OTHER: &str = "city-general";

/// What goes wrong in the exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// The coordinator does not log st-marys' round-1 update.
    CoordinatorDropsUpdate,
    /// The coordinator logs different bytes for st-marys' round-1 update.
    CoordinatorAltersUpdate,
    /// The node never logs receiving the round-1 global model.
    NodeMissesGlobalModel,
}

/// Two logs and every key involved.
pub struct Federation {
    pub dir: TempDir,
    pub coordinator_log: PathBuf,
    pub node_log: PathBuf,
    pub audit_key: AuditKey,
    pub coordinator_key: SigningKey,
    pub node_key: SigningKey,
    pub other_key: SigningKey,
}

/// A member's submission as it signs and logs it.
fn submitted(body: pb::submission::Body) -> Vec<u8> {
    pb::Submission { body: Some(body) }.encode_to_vec()
}

pub fn update_bytes(round: u32, scale: f64) -> Vec<u8> {
    submitted(pb::submission::Body::Update(pb::ModelUpdate {
        task_id: TASK.into(),
        step: 2 + u64::from(round),
        round,
        delta: Some(pb::Parameters {
            values: vec![0.5 * scale, -1.25 * scale, 3.0 * scale, 0.0, 0.125, 7.0],
        }),
        num_rows: 812,
        train_loss: 0.41,
        ..pb::ModelUpdate::default()
    }))
}

fn global_model(round: u32) -> Vec<u8> {
    pb::Instruction {
        step: 2 + u64::from(round),
        kind: Some(pb::instruction::Kind::Train(pb::TrainRound {
            round,
            global: Some(pb::Parameters {
                values: vec![0.1; 6],
            }),
            preprocessing: None,
            ..pb::TrainRound::default()
        })),
    }
    .encode_to_vec()
}

fn statistics() -> Vec<u8> {
    submitted(pb::submission::Body::Statistics(pb::StatisticsReport {
        task_id: TASK.into(),
        step: 1,
        summaries_json: r#"[{"rows":812,"count":800,"sum":40000.0,"sum_sq":2100000.0,"min":1.0,"max":90.0,"category_counts":[]}]"#.into(),
        train_rows: 812,
        holdout_rows: 203,
        rows_missing_target: 3,
    }))
}

fn msg<'a>(
    round: u32,
    direction: Direction,
    peer: &'a str,
    kind: &'a str,
    bytes: &'a [u8],
    member_signature: Option<Signature>,
) -> Record<'a> {
    Record {
        task: TASK,
        round,
        direction,
        peer,
        kind,
        bytes,
        member_signature,
    }
}

impl Federation {
    pub fn new() -> Result<Federation, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        Ok(Federation {
            coordinator_log: dir.path().join("coordinator.log"),
            node_log: dir.path().join("st-marys.log"),
            dir,
            audit_key: AuditKey::generate(),
            coordinator_key: SigningKey::generate()?,
            node_key: SigningKey::generate()?,
            other_key: SigningKey::generate()?,
        })
    }

    pub fn open_coordinator(&self) -> Result<LogWriter, AuditError> {
        Ok(LogWriter::open(
            &self.coordinator_log,
            COORDINATOR,
            &self.coordinator_key,
            &self.audit_key,
            SyncPolicy::EveryEntry,
        )?
        .0)
    }

    pub fn open_node(&self) -> Result<LogWriter, AuditError> {
        Ok(LogWriter::open(
            &self.node_log,
            NODE,
            &self.node_key,
            &self.audit_key,
            SyncPolicy::EveryEntry,
        )?
        .0)
    }

    /// Runs join, statistics, one training round and the finish, logging
    /// each message on both sides (except where `fault` says otherwise).
    pub fn run(&self, fault: Fault) -> Result<(), AuditError> {
        let mut c = self.open_coordinator()?;
        let mut n = self.open_node()?;
        let node_pk = self.node_key.public_key();
        n.bind_member(TASK, NODE, &node_pk)?;
        c.bind_member(TASK, NODE, &node_pk)?;
        c.bind_member(TASK, OTHER, &self.other_key.public_key())?;

        let join = pb::JoinRequest {
            task_id: TASK.into(),
            protocol_version: 1,
        }
        .encode_to_vec();
        n.append(&msg(0, Direction::Out, COORDINATOR, "join", &join, None))?;
        c.append(&msg(0, Direction::In, NODE, "join", &join, None))?;
        c.append(&msg(0, Direction::In, OTHER, "join", &join, None))?;

        let task = pb::JoinResponse {
            task: Some(pb::TaskSpec {
                task_id: TASK.into(),
                features: vec!["age".into(), "lactate".into()],
                target: "sepsis".into(),
                model: pb::ModelKind::Logistic as i32,
                rounds: 1,
                members: vec![NODE.into(), OTHER.into()],
                ..pb::TaskSpec::default()
            }),
            coordinator: COORDINATOR.into(),
        }
        .encode_to_vec();
        c.append(&msg(0, Direction::Out, NODE, "task", &task, None))?;
        c.append(&msg(0, Direction::Out, OTHER, "task", &task, None))?;
        n.append(&msg(0, Direction::In, COORDINATOR, "task", &task, None))?;

        let stats = statistics();
        let stats_sig = self.node_key.sign(&stats);
        n.append(&msg(
            0,
            Direction::Out,
            COORDINATOR,
            "statistics",
            &stats,
            Some(stats_sig),
        ))?;
        c.append(&msg(
            0,
            Direction::In,
            NODE,
            "statistics",
            &stats,
            Some(stats_sig),
        ))?;

        let global = global_model(1);
        c.append(&msg(1, Direction::Out, NODE, "global-model", &global, None))?;
        c.append(&msg(
            1,
            Direction::Out,
            OTHER,
            "global-model",
            &global,
            None,
        ))?;
        if fault != Fault::NodeMissesGlobalModel {
            n.append(&msg(
                1,
                Direction::In,
                COORDINATOR,
                "global-model",
                &global,
                None,
            ))?;
        }

        let update = update_bytes(1, 1.0);
        let update_sig = self.node_key.sign(&update);
        n.append(&msg(
            1,
            Direction::Out,
            COORDINATOR,
            "update",
            &update,
            Some(update_sig),
        ))?;
        let other_update = update_bytes(1, 2.0);
        let other_sig = self.other_key.sign(&other_update);
        c.append(&msg(
            1,
            Direction::In,
            OTHER,
            "update",
            &other_update,
            Some(other_sig),
        ))?;
        match fault {
            Fault::CoordinatorDropsUpdate => {}
            Fault::CoordinatorAltersUpdate => {
                // The coordinator cannot sign as st-marys: it keeps the
                // signature it received over different bytes.
                let altered = update_bytes(1, 100.0);
                c.append(&msg(
                    1,
                    Direction::In,
                    NODE,
                    "update",
                    &altered,
                    Some(update_sig),
                ))?;
            }
            _ => {
                c.append(&msg(
                    1,
                    Direction::In,
                    NODE,
                    "update",
                    &update,
                    Some(update_sig),
                ))?;
            }
        }

        let finished = pb::Instruction {
            step: 9,
            kind: Some(pb::instruction::Kind::Finished(pb::Finished {
                reason: "all rounds done".into(),
            })),
        }
        .encode_to_vec();
        c.append(&msg(0, Direction::Out, NODE, "finished", &finished, None))?;
        n.append(&msg(
            0,
            Direction::In,
            COORDINATOR,
            "finished",
            &finished,
            None,
        ))?;
        c.close()?;
        n.close()?;
        Ok(())
    }
}

/// The lines of a file, each with its newline.
pub fn lines(path: &Path) -> Result<Vec<Vec<u8>>, std::io::Error> {
    let data = std::fs::read(path)?;
    Ok(data
        .split_inclusive(|&b| b == b'\n')
        .map(<[u8]>::to_vec)
        .collect())
}

/// Writes `lines` back as the file.
pub fn write_lines(path: &Path, lines: &[Vec<u8>]) -> Result<(), std::io::Error> {
    std::fs::write(path, lines.concat())
}
