//! [`Summary`]: who exchanged which kinds of message in each round, built
//! one entry at a time (for `medfed-audit list`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::entry::{Direction, Entry};

/// Messages of one (task, round), per peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RoundSummary {
    /// Task id.
    pub task: String,
    /// Round (0: outside rounds, e.g. joins and statistics).
    pub round: u32,
    /// Every peer with messages in this round, by name.
    pub peers: Vec<PeerActivity>,
}

/// What one peer exchanged with the log's writer in a round.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PeerActivity {
    /// The peer.
    pub peer: String,
    /// Kinds received from the peer (`in`): for a coordinator's log, what
    /// the member contributed.
    pub from_peer: Vec<KindCount>,
    /// Kinds sent to the peer (`out`).
    pub to_peer: Vec<KindCount>,
}

/// How many messages of one kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindCount {
    /// Message kind.
    pub kind: String,
    /// How many.
    pub count: u64,
}

/// Message counts by kind.
type Counts = BTreeMap<String, u64>;

/// Accumulates [`RoundSummary`]s; `local` entries are left out.
#[derive(Debug, Default)]
pub struct Summary {
    /// (task, round) -> peer -> [received from it, sent to it].
    rounds: BTreeMap<(String, u32), BTreeMap<String, [Counts; 2]>>,
}

impl Summary {
    /// An empty summary.
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Counts `entry`.
    pub fn add(&mut self, entry: &Entry) {
        let side = match entry.direction {
            Direction::In => 0,
            Direction::Out => 1,
            Direction::Local => return,
        };
        let peers = self
            .rounds
            .entry((entry.task.clone(), entry.round))
            .or_default();
        let kinds = peers.entry(entry.peer.clone()).or_default();
        *kinds[side].entry(entry.kind.clone()).or_default() += 1;
    }

    /// The rounds, by task then round number.
    pub fn finish(self) -> Vec<RoundSummary> {
        let counts = |kinds: Counts| {
            kinds
                .into_iter()
                .map(|(kind, count)| KindCount { kind, count })
                .collect()
        };
        self.rounds
            .into_iter()
            .map(|((task, round), peers)| RoundSummary {
                task,
                round,
                peers: peers
                    .into_iter()
                    .map(|(peer, [from_peer, to_peer])| PeerActivity {
                        peer,
                        from_peer: counts(from_peer),
                        to_peer: counts(to_peer),
                    })
                    .collect(),
            })
            .collect()
    }
}
