//! [`cross_check`]: compares a node's log with the coordinator's, message
//! by message, in both directions.
//!
//! The node is named by its log's `log-opened` entry, the coordinator by
//! its own. What the node sent (`out` to the coordinator) must appear in
//! the coordinator's log as received (`in` from the node), and what the
//! coordinator sent to the node as received in the node's log. Messages are
//! grouped by (task, round, kind); within a group, equal SHA-256s are
//! paired in order, leftovers on both sides are paired in order as
//! *altered* (same task, round and kind, different bytes), and what remains
//! is missing on one side. Paired messages that both carry a member
//! signature must carry the same one (Ed25519 signatures are
//! deterministic). `local` entries, the coordinator's exchanges with other
//! members and the node's exchanges with other peers are not compared.
//!
//! Cross-checking reads only clear fields; it does not verify either log
//! (run [`verify`](crate::verify) on each) and needs no audit key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::digest::Digest;
use crate::entry::{Direction, kinds};
use crate::error::AuditError;
use crate::reader::LogReader;
use crate::signing::Signature;

/// Which way a compared message went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// Sent by the node, received by the coordinator.
    NodeToCoordinator,
    /// Sent by the coordinator, received by the node.
    CoordinatorToNode,
}

impl Flow {
    /// `node-to-coordinator` or `coordinator-to-node`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::NodeToCoordinator => "node-to-coordinator",
            Flow::CoordinatorToNode => "coordinator-to-node",
        }
    }
}

/// How the two logs disagree about one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DiscrepancyKind {
    /// Only the node's log has it.
    MissingInCoordinatorLog,
    /// Only the coordinator's log has it.
    MissingInNodeLog,
    /// Both have a message of this task, round and kind, with different
    /// bytes.
    Altered,
    /// Same bytes, different member signatures.
    SignatureDiffers,
}

impl DiscrepancyKind {
    /// The kebab-case name, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            DiscrepancyKind::MissingInCoordinatorLog => "missing-in-coordinator-log",
            DiscrepancyKind::MissingInNodeLog => "missing-in-node-log",
            DiscrepancyKind::Altered => "altered",
            DiscrepancyKind::SignatureDiffers => "signature-differs",
        }
    }
}

/// One side's entry for a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Side {
    /// Sequence number in that log.
    pub seq: u64,
    /// Time recorded there.
    pub time: String,
    /// SHA-256 recorded there.
    pub sha256: Digest,
}

/// A message the logs disagree about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Discrepancy {
    /// How they disagree.
    pub kind: DiscrepancyKind,
    /// Which way the message went.
    pub flow: Flow,
    /// Task id.
    pub task: String,
    /// Round.
    pub round: u32,
    /// Message kind.
    pub message_kind: String,
    /// The node's entry, if it has one.
    pub node: Option<Side>,
    /// The coordinator's entry, if it has one.
    pub coordinator: Option<Side>,
}

/// The result of [`cross_check`].
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct CrossCheckReport {
    /// The node's name (its log's writer).
    pub node: String,
    /// The coordinator's name (its log's writer).
    pub coordinator: String,
    /// Messages found identical in both logs.
    pub matched: u64,
    /// Messages in the node's log with a peer other than the coordinator
    /// (not compared). All of them, with nothing matched, usually means
    /// the coordinator's writer name is not the name the node knows it by.
    pub node_entries_skipped: u64,
    /// Every disagreement, node-to-coordinator first, each in log order.
    pub discrepancies: Vec<Discrepancy>,
}

impl CrossCheckReport {
    /// Whether the logs agree on every message.
    pub fn is_clean(&self) -> bool {
        self.discrepancies.is_empty()
    }
}

/// A message as one log records it.
#[derive(Clone, Debug)]
struct Message {
    seq: u64,
    time: String,
    task: String,
    round: u32,
    kind: String,
    sha256: Digest,
    member_signature: Option<Signature>,
}

impl Message {
    fn side(&self) -> Side {
        Side {
            seq: self.seq,
            time: self.time.clone(),
            sha256: self.sha256,
        }
    }
}

/// The clear fields of one log that cross-checking needs.
struct LogMessages {
    /// The writer, from `log-opened`.
    writer: String,
    /// Every message entry: direction, peer, message.
    messages: Vec<(Direction, String, Message)>,
}

/// Reads the message entries of the log at `path`, keeping clear fields
/// only (memory stays small whatever the payload sizes).
fn read_messages(path: &Path) -> Result<LogMessages, AuditError> {
    let mut reader = LogReader::open(path)?;
    let first = match reader.next() {
        Some(first) => first?,
        None => {
            return Err(AuditError::EmptyLog {
                path: path.to_path_buf(),
            });
        }
    };
    let writer = match first.recorded_writer() {
        Some(writer) if first.kind == kinds::LOG_OPENED => writer.to_owned(),
        _ => {
            return Err(AuditError::CorruptLog {
                path: path.to_path_buf(),
                index: 0,
                offset: 0,
                reason: format!(
                    "expected the first entry to be `{}`, got `{}`",
                    kinds::LOG_OPENED,
                    first.kind
                ),
            });
        }
    };
    let mut messages = Vec::new();
    for entry in reader {
        let entry = entry?;
        if entry.direction == Direction::Local {
            continue;
        }
        let message = Message {
            seq: entry.seq,
            time: entry.time,
            task: entry.task,
            round: entry.round,
            kind: entry.kind,
            sha256: entry.sha256,
            member_signature: entry.member_signature,
        };
        messages.push((entry.direction, entry.peer, message));
    }
    Ok(LogMessages { writer, messages })
}

/// The messages of `log` exchanged with `peer`, as (sent, received), and
/// how many others there were.
fn with_peer(log: LogMessages, peer: &str) -> (Vec<Message>, Vec<Message>, u64) {
    let (mut sent, mut received, mut others) = (Vec::new(), Vec::new(), 0);
    for (direction, their_peer, message) in log.messages {
        if their_peer != peer {
            others += 1;
            continue;
        }
        match direction {
            Direction::Out => sent.push(message),
            Direction::In => received.push(message),
            Direction::Local => {}
        }
    }
    (sent, received, others)
}

/// Compares the node's log with the coordinator's (see the module docs).
///
/// # Errors
/// [`AuditError::Io`], [`AuditError::EmptyLog`], or the error of the first
/// line of either log that is not a valid entry (including a torn last
/// line: repair or verify the log first).
pub fn cross_check(
    node_log: &Path,
    coordinator_log: &Path,
) -> Result<CrossCheckReport, AuditError> {
    let node = read_messages(node_log)?;
    let coordinator = read_messages(coordinator_log)?;
    let node_name = node.writer.clone();
    let coordinator_name = coordinator.writer.clone();
    let (node_sent, node_received, node_skipped) = with_peer(node, &coordinator_name);
    let (coordinator_sent, coordinator_received, _) = with_peer(coordinator, &node_name);
    let mut report = CrossCheckReport {
        node: node_name,
        coordinator: coordinator_name,
        matched: 0,
        node_entries_skipped: node_skipped,
        discrepancies: Vec::new(),
    };
    compare(
        Flow::NodeToCoordinator,
        &node_sent,
        &coordinator_received,
        &mut report,
    );
    compare(
        Flow::CoordinatorToNode,
        &node_received,
        &coordinator_sent,
        &mut report,
    );
    Ok(report)
}

/// Group key: task, round, kind.
type Key = (String, u32, String);

/// Compares one flow: `node_side` and `coordinator_side` hold the same
/// messages seen from each end.
fn compare(
    flow: Flow,
    node_side: &[Message],
    coordinator_side: &[Message],
    report: &mut CrossCheckReport,
) {
    let group = |messages: &[Message]| {
        let mut groups: BTreeMap<Key, Vec<usize>> = BTreeMap::new();
        for (i, m) in messages.iter().enumerate() {
            groups
                .entry((m.task.clone(), m.round, m.kind.clone()))
                .or_default()
                .push(i);
        }
        groups
    };
    let node_groups = group(node_side);
    let mut coordinator_groups = group(coordinator_side);
    let mut found = Vec::new();
    for (key, node_indices) in node_groups {
        let coordinator_indices = coordinator_groups.remove(&key).unwrap_or_default();
        let (pairs, node_left, coordinator_left) = pair_by_hash(
            &node_indices,
            &coordinator_indices,
            node_side,
            coordinator_side,
        );
        for (n, c) in pairs {
            let (n, c) = (&node_side[n], &coordinator_side[c]);
            match (n.member_signature, c.member_signature) {
                (Some(a), Some(b)) if a != b => {
                    found.push(discrepancy(
                        DiscrepancyKind::SignatureDiffers,
                        flow,
                        &key,
                        Some(n),
                        Some(c),
                    ));
                }
                _ => report.matched += 1,
            }
        }
        let altered = node_left.len().min(coordinator_left.len());
        for (n, c) in node_left.iter().zip(&coordinator_left) {
            found.push(discrepancy(
                DiscrepancyKind::Altered,
                flow,
                &key,
                Some(&node_side[*n]),
                Some(&coordinator_side[*c]),
            ));
        }
        for n in &node_left[altered..] {
            found.push(discrepancy(
                DiscrepancyKind::MissingInCoordinatorLog,
                flow,
                &key,
                Some(&node_side[*n]),
                None,
            ));
        }
        for c in &coordinator_left[altered..] {
            found.push(discrepancy(
                DiscrepancyKind::MissingInNodeLog,
                flow,
                &key,
                None,
                Some(&coordinator_side[*c]),
            ));
        }
    }
    for (key, coordinator_indices) in coordinator_groups {
        for c in coordinator_indices {
            found.push(discrepancy(
                DiscrepancyKind::MissingInNodeLog,
                flow,
                &key,
                None,
                Some(&coordinator_side[c]),
            ));
        }
    }
    // Log order: by the node's entry when there is one, else the coordinator's.
    found.sort_by_key(|d| {
        (
            d.node.as_ref().map_or(u64::MAX, |s| s.seq),
            d.coordinator.as_ref().map_or(u64::MAX, |s| s.seq),
        )
    });
    report.discrepancies.extend(found);
}

/// Pairs equal hashes in order (greedy: each node message takes the first
/// later unpaired coordinator message with the same hash). Returns the
/// pairs and the unpaired indices of each side, in order.
fn pair_by_hash(
    node_indices: &[usize],
    coordinator_indices: &[usize],
    node_side: &[Message],
    coordinator_side: &[Message],
) -> (Vec<(usize, usize)>, Vec<usize>, Vec<usize>) {
    let mut taken = vec![false; coordinator_indices.len()];
    let mut pairs = Vec::new();
    let mut node_left = Vec::new();
    let mut cursor = 0;
    for &n in node_indices {
        let hash = node_side[n].sha256;
        let hit = (cursor..coordinator_indices.len())
            .find(|&j| !taken[j] && coordinator_side[coordinator_indices[j]].sha256 == hash);
        match hit {
            Some(j) => {
                taken[j] = true;
                cursor = j + 1;
                pairs.push((n, coordinator_indices[j]));
            }
            None => node_left.push(n),
        }
    }
    let coordinator_left = coordinator_indices
        .iter()
        .zip(&taken)
        .filter(|(_, taken)| !**taken)
        .map(|(c, _)| *c)
        .collect();
    (pairs, node_left, coordinator_left)
}

fn discrepancy(
    kind: DiscrepancyKind,
    flow: Flow,
    key: &Key,
    node: Option<&Message>,
    coordinator: Option<&Message>,
) -> Discrepancy {
    let (task, round, message_kind) = key.clone();
    Discrepancy {
        kind,
        flow,
        task,
        round,
        message_kind,
        node: node.map(Message::side),
        coordinator: coordinator.map(Message::side),
    }
}
