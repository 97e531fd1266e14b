//! Timings read back from exchange logs: when each round reached its first
//! node, and where the time of a securely aggregated round went, stage by
//! stage, at the coordinator and at the nodes.
//!
//! Every entry carries the time it was written (UTC, nanoseconds). The
//! coordinator writes an `out` entry just before an instruction leaves for a
//! node and an `in` entry for every answer it receives; a node writes an
//! `in` entry for every instruction and an `out` entry just before its
//! answer leaves. Every secure-aggregation answer has the kind `secagg`
//! whatever its stage, so an answer belongs to the stage whose instruction
//! precedes it in the log (the coordinator publishes a stage only once the
//! previous one has closed). So, for one round:
//! - a stage at the coordinator runs from its first instruction out to its
//!   last answer in: the nodes' work for the stage, the wire, and the
//!   coordinator receiving, checking and logging every answer;
//! - between two stages, from the last answer of one to the first
//!   instruction of the next, only the coordinator works (it closes the
//!   stage: e.g. builds the key list, routes the shares, adds up the masked
//!   inputs);
//! - at a node, a stage runs from the instruction in to the answer out: that
//!   node's own work, in wall time (on a shared core, waiting for the CPU
//!   counts too).

use std::path::Path;

use anyhow::Context;
use medfed_audit::{Direction, read_log};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One stage of a securely aggregated round.
pub struct Stage {
    /// Short name for tables.
    pub name: &'static str,
    /// Kind of the coordinator's instruction.
    pub instruction: &'static str,
}

/// How many stages a secure round has.
pub const STAGES: usize = 5;

/// The five stages of a secure round, in order (`medfed_wire` message
/// kinds).
pub const SECURE_STAGES: [Stage; STAGES] = [
    Stage {
        name: "keys (local training, key advertisement)",
        instruction: "secagg-keys-request",
    },
    Stage {
        name: "shares (key agreement, Shamir shares)",
        instruction: "secagg-key-list",
    },
    Stage {
        name: "masked input (pairwise and self masks)",
        instruction: "secagg-routed-shares",
    },
    Stage {
        name: "consistency check (signed survivor set)",
        instruction: "secagg-consistency-request",
    },
    Stage {
        name: "unmasking (survivors' shares)",
        instruction: "secagg-unmask-request",
    },
];

/// Kind of every node's answer in a secure stage.
const ANSWER: &str = "secagg";

/// Kinds of the instruction that opens a round: `train` in clear, the key
/// request under secure aggregation.
const ROUND_OPENERS: [&str; 2] = ["train", "secagg-keys-request"];

/// One message of an exchange log: which way, what kind, which round, when.
pub struct Event {
    direction: Direction,
    kind: String,
    round: u32,
    at: OffsetDateTime,
}

/// The messages of the exchange log at `log`, in order.
///
/// # Errors
/// The log cannot be read, or an entry's time is not RFC 3339.
pub fn events(log: &Path) -> anyhow::Result<Vec<Event>> {
    let entries =
        read_log(log).with_context(|| format!("cannot read the exchange log {}", log.display()))?;
    entries
        .into_iter()
        .filter(|e| e.direction != Direction::Local)
        .map(|e| {
            let at = OffsetDateTime::parse(&e.time, &Rfc3339).with_context(|| {
                format!(
                    "{}: entry {} has the time {:?}",
                    log.display(),
                    e.seq,
                    e.time
                )
            })?;
            Ok(Event {
                direction: e.direction,
                kind: e.kind,
                round: e.round,
                at,
            })
        })
        .collect()
}

/// When each round `1..=rounds` first reached a node: the first `out`
/// entry of the instruction that opens it, in the coordinator's log.
///
/// # Errors
/// A round has no such entry.
pub fn round_starts(events: &[Event], rounds: u32) -> anyhow::Result<Vec<OffsetDateTime>> {
    (1..=rounds)
        .map(|round| {
            events
                .iter()
                .find(|e| {
                    e.direction == Direction::Out
                        && e.round == round
                        && ROUND_OPENERS.contains(&e.kind.as_str())
                })
                .map(|e| e.at)
                .with_context(|| format!("no instruction opened round {round}"))
        })
        .collect()
}

fn ms(from: OffsetDateTime, to: OffsetDateTime) -> f64 {
    (to - from).as_seconds_f64() * 1e3
}

/// One secure round as the coordinator's log shows it, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct SecureRound {
    /// Per stage: its first instruction out to its last answer in.
    pub stages: [f64; STAGES],
    /// Per stage after the first: the previous stage's last answer in to
    /// this stage's first instruction out (the coordinator alone).
    pub between: [f64; STAGES - 1],
    /// The first key request out to the last unmasking share in.
    pub logged: f64,
}

/// Index of the first entry of `round` that went `direction` with `kind`,
/// at or after `from`.
fn first(
    events: &[Event],
    from: usize,
    round: u32,
    direction: Direction,
    kind: &str,
) -> Option<usize> {
    events
        .iter()
        .skip(from)
        .position(|e| e.round == round && e.direction == direction && e.kind == kind)
        .map(|i| i + from)
}

/// The secure rounds `1..=rounds` in the coordinator's log.
///
/// # Errors
/// A round lacks a stage's instruction or answers.
pub fn secure_rounds(events: &[Event], rounds: u32) -> anyhow::Result<Vec<SecureRound>> {
    (1..=rounds)
        .map(|round| {
            // Where each stage's first instruction is in the log.
            let mut starts = [0; STAGES];
            let mut from = 0;
            for (k, stage) in SECURE_STAGES.iter().enumerate() {
                starts[k] = first(events, from, round, Direction::Out, stage.instruction)
                    .with_context(|| format!("round {round} has no {} out", stage.instruction))?;
                from = starts[k];
            }
            let mut opened = [OffsetDateTime::UNIX_EPOCH; STAGES];
            let mut closed = [OffsetDateTime::UNIX_EPOCH; STAGES];
            for k in 0..SECURE_STAGES.len() {
                let end = starts.get(k + 1).copied().unwrap_or(events.len());
                opened[k] = events[starts[k]].at;
                closed[k] = events[starts[k]..end]
                    .iter()
                    .filter(|e| {
                        e.round == round && e.direction == Direction::In && e.kind == ANSWER
                    })
                    .map(|e| e.at)
                    .max()
                    .with_context(|| {
                        format!(
                            "round {round} has no answer to {}",
                            SECURE_STAGES[k].instruction
                        )
                    })?;
            }
            Ok(SecureRound {
                stages: std::array::from_fn(|k| ms(opened[k], closed[k])),
                between: std::array::from_fn(|k| ms(closed[k], opened[k + 1])),
                logged: ms(opened[0], closed[STAGES - 1]),
            })
        })
        .collect()
}

/// A node's time per stage of each round it took part in, in milliseconds:
/// the instruction in to its answer out, from the node's own log. `None`
/// where the node did not answer (it was killed, or left out of a stage).
pub fn node_stages(events: &[Event], rounds: u32) -> Vec<[Option<f64>; STAGES]> {
    (1..=rounds)
        .map(|round| {
            std::array::from_fn(|k| {
                let stage = &SECURE_STAGES[k];
                let received = first(events, 0, round, Direction::In, stage.instruction)?;
                let answered = first(events, received, round, Direction::Out, ANSWER)?;
                Some(ms(events[received].at, events[answered].at))
            })
        })
        .collect()
}

/// Where a node stopped, from its own log: the last instruction it
/// received, its round, and whether it answered it.
pub fn last_instruction(events: &[Event]) -> Option<(String, u32, bool)> {
    let i = events.iter().rposition(|e| e.direction == Direction::In)?;
    let answered = events[i..].iter().any(|e| e.direction == Direction::Out);
    Some((events[i].kind.clone(), events[i].round, answered))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(direction: Direction, kind: &str, round: u32, ms: i64) -> Event {
        Event {
            direction,
            kind: kind.into(),
            round,
            at: OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(ms),
        }
    }

    /// Two nodes, one secure round: each stage's instruction leaves for
    /// both, then both answer.
    fn one_round() -> Vec<Event> {
        let mut log = Vec::new();
        let mut t = 100;
        for stage in &SECURE_STAGES {
            log.push(event(Direction::Out, stage.instruction, 1, t));
            log.push(event(Direction::In, ANSWER, 1, t + 5));
            log.push(event(Direction::Out, stage.instruction, 1, t + 6));
            log.push(event(Direction::In, ANSWER, 1, t + 10));
            t += 20;
        }
        log
    }

    #[test]
    fn secure_round_stages_and_gaps() -> anyhow::Result<()> {
        let rounds = secure_rounds(&one_round(), 1)?;
        assert_eq!(rounds.len(), 1);
        for stage in rounds[0].stages {
            assert!((stage - 10.0).abs() < 1e-9, "{stage}");
        }
        for gap in rounds[0].between {
            assert!((gap - 10.0).abs() < 1e-9, "{gap}");
        }
        assert!((rounds[0].logged - 90.0).abs() < 1e-9);
        let starts = round_starts(&one_round(), 1)?;
        assert_eq!(
            starts[0],
            OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(100)
        );
        Ok(())
    }

    #[test]
    fn a_round_without_unmasking_is_an_error() {
        let mut log = one_round();
        // Keep the unmasking request to the first node, drop the answers.
        log.truncate(log.len() - 3);
        let error = secure_rounds(&log, 1).map(|_| ()).unwrap_err().to_string();
        assert!(
            error.contains("no answer to secagg-unmask-request"),
            "{error}"
        );
        assert!(round_starts(&log, 2).is_err());
    }

    #[test]
    fn a_node_that_stopped_answering() {
        let log = vec![
            event(Direction::In, "secagg-keys-request", 1, 0),
            event(Direction::Out, ANSWER, 1, 3),
            event(Direction::In, "secagg-key-list", 1, 10),
            event(Direction::Out, ANSWER, 1, 17),
            event(Direction::In, "secagg-routed-shares", 1, 20),
        ];
        let stages = node_stages(&log, 1);
        assert_eq!(stages[0][0].map(f64::round), Some(3.0));
        assert_eq!(stages[0][1].map(f64::round), Some(7.0));
        assert_eq!(stages[0][2], None);
        assert_eq!(stages[0][3], None);
        assert_eq!(stages[0][4], None);
        assert_eq!(
            last_instruction(&log),
            Some(("secagg-routed-shares".into(), 1, false))
        );
        assert_eq!(
            last_instruction(&log[..4]),
            Some(("secagg-key-list".into(), 1, true))
        );
    }
}
