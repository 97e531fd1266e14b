//! A coordinator that runs secure rounds for real against one node, up to
//! its masked input: it serves each run's stage 0 with a roster of real
//! certificates, plays the other members honestly with medfed-secure's
//! [`Client`] state machines (it holds their signing keys), checks what the
//! node sends with a [`Server`], and then starts the next run. What it
//! would do with the sums (subtract them) does not need to happen: the
//! tests show the node refuses before the second sum can be formed.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use medfed_secure::secagg::{
    AdvertiseKeys, Client, ClientAdvertised, ClientShared, FixedPoint, MaskedInput, Member,
    SecAggConfig, SecAggParams, Server, ServerMasking, ServerSharing, ShareKeys,
};
use medfed_wire::pb::submission::Body;
use medfed_wire::secagg::MaskedKind;
use medfed_wire::{Instruction, SecAggMessage, Task};

use super::server::{Director, Received};
use super::site::Identity;

/// One run of a secure round: its stage-0 work and its roster, the node's
/// own identity among the members.
#[derive(Clone)]
pub struct SecureRun {
    /// What stage 0 asks for.
    pub work: Instruction,
    /// The roster, in member-id order.
    pub roster: Vec<Identity>,
}

/// What happened in the runs, for the test to check.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// For each run that reached it, the run's index and the step of its
    /// stage 0, once the node's masked input was accepted by the server.
    pub masked: Vec<(usize, u64)>,
    /// The step of each run's stage 0, as handed out.
    pub started: Vec<u64>,
    /// Anything the node sent that the protocol refused, or a run that
    /// could not be set up.
    pub errors: Vec<String>,
}

/// The runs, served one after the other (see the module docs).
pub struct SecureRuns {
    task: Task,
    node: String,
    runs: VecDeque<SecureRun>,
    started: usize,
    live: Option<Live>,
    outcome: Arc<Mutex<Outcome>>,
}

/// The run in progress: the step the node is answering and the stage.
struct Live {
    run: usize,
    round: u32,
    step: u64,
    params: SecAggParams,
    node_id: u32,
    names: Vec<String>,
    stage: Stage,
}

enum Stage {
    Keys {
        peers: Vec<(u32, ClientAdvertised)>,
        adverts: Vec<AdvertiseKeys>,
    },
    Shares {
        server: ServerSharing,
        peers: Vec<(u32, ClientShared)>,
        shares: Vec<ShareKeys>,
    },
    Mask {
        server: ServerMasking,
        masked: Vec<MaskedInput>,
    },
}

impl SecureRuns {
    /// Runs of `task` against the node `node`, in order.
    pub fn new(task: &Task, node: &str, runs: Vec<SecureRun>) -> SecureRuns {
        SecureRuns {
            task: task.clone(),
            node: node.to_owned(),
            runs: runs.into(),
            started: 0,
            live: None,
            outcome: Arc::default(),
        }
    }

    /// A handle on what happens, readable while the runs are served.
    pub fn outcome(&self) -> Arc<Mutex<Outcome>> {
        Arc::clone(&self.outcome)
    }

    fn record(&self) -> MutexGuard<'_, Outcome> {
        self.outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stage 0 of the next run, as `step`; the other members advertise
    /// their keys.
    fn start(&mut self, step: u64) -> Result<Option<Instruction>, String> {
        let Some(run) = self.runs.pop_front() else {
            return Ok(None);
        };
        let settings = self
            .task
            .secure_aggregation
            .ok_or("the task has no secure aggregation")?;
        let vector_len =
            MaskedKind::vector_len(&run.work, &self.task).ok_or("stage 0 masks nothing")?;
        let params = SecAggParams::new(SecAggConfig {
            task: self.task.task_id.clone(),
            round: MaskedKind::session(&run.work),
            threshold: settings.threshold,
            members: run
                .roster
                .iter()
                .map(|m| Member {
                    name: m.name.clone(),
                    verify_key: *m.signing_key.public_key().as_bytes(),
                })
                .collect(),
            vector_len,
            fixed_point: FixedPoint::new(settings.fixed_point_bits).map_err(|e| e.to_string())?,
        })
        .map_err(|e| format!("run {}: {e}", self.started))?;
        let node_id = run
            .roster
            .iter()
            .position(|m| m.name == self.node)
            .ok_or("the node is not on the roster")? as u32;
        let mut peers = Vec::new();
        let mut adverts = Vec::new();
        for (id, member) in (0u32..).zip(&run.roster) {
            if id == node_id {
                continue;
            }
            let (client, advert) = Client::new(params.clone(), id)
                .map_err(|e| e.to_string())?
                .advertise_keys(member.signing_key.key_pair());
            peers.push((id, client));
            adverts.push(advert);
        }
        let round = run.work.round();
        let instruction = Instruction::SecAggKeys {
            work: Box::new(run.work),
            roster: run.roster.iter().map(Identity::roster_member).collect(),
        };
        self.live = Some(Live {
            run: self.started,
            round,
            step,
            params,
            node_id,
            names: run.roster.iter().map(|m| m.name.clone()).collect(),
            stage: Stage::Keys { peers, adverts },
        });
        self.record().started.push(step);
        self.started += 1;
        Ok(Some(instruction))
    }

    /// The node's answer to `step`, decoded.
    fn answer(&self, received: &Received, step: u64) -> Result<Option<SecAggMessage>, String> {
        let Some(pb) = received
            .submissions
            .iter()
            .rev()
            .find_map(|s| match &s.body {
                Some(Body::Secagg(pb)) if pb.step == step => Some(pb.clone()),
                _ => None,
            })
        else {
            return Ok(None);
        };
        medfed_wire::secagg::submission_from_pb(pb, &self.task)
            .map(|s| Some(s.message))
            .map_err(|e| format!("step {step}: {e}"))
    }

    /// The next instruction of the run in progress, from the node's answer
    /// to its last one.
    fn advance(
        &mut self,
        mut live: Live,
        received: &Received,
        step: u64,
    ) -> Result<Option<Instruction>, String> {
        let Some(answer) = self.answer(received, live.step)? else {
            // The node did not answer (it refused, or stopped): the runs
            // end here.
            self.runs.clear();
            return Ok(None);
        };
        let refused = |what: &str, e: medfed_secure::secagg::SecAggError| {
            format!("step {}: the node's {what} is refused: {e}", live.step)
        };
        let next = match (live.stage, answer) {
            (Stage::Keys { peers, adverts }, SecAggMessage::Keys(mine)) => {
                let mut server = Server::new(live.params.clone());
                for advert in adverts {
                    server.receive(advert).map_err(|e| e.to_string())?;
                }
                server.receive(mine).map_err(|e| refused("keys", e))?;
                let (server, key_list) = server.finish().map_err(|e| e.to_string())?;
                let mut shared = Vec::new();
                let mut shares = Vec::new();
                for (id, peer) in peers {
                    let (client, message) =
                        peer.share_keys(&key_list).map_err(|e| e.to_string())?;
                    shared.push((id, client));
                    shares.push(message);
                }
                live.stage = Stage::Shares {
                    server,
                    peers: shared,
                    shares,
                };
                Instruction::SecAggShares {
                    round: live.round,
                    key_list,
                }
            }
            (
                Stage::Shares {
                    mut server,
                    peers,
                    shares,
                },
                SecAggMessage::Shares(mine),
            ) => {
                for message in shares {
                    server.receive(message).map_err(|e| e.to_string())?;
                }
                server.receive(mine).map_err(|e| refused("shares", e))?;
                let (server, routed) = server.finish().map_err(|e| e.to_string())?;
                let zeros = live
                    .params
                    .encode_input(&vec![0.0; live.params.vector_len()])
                    .map_err(|e| e.to_string())?;
                let mut masked = Vec::new();
                for (id, peer) in peers {
                    let mine = routed
                        .iter()
                        .find(|r| r.recipient == id)
                        .ok_or("no shares routed to a member")?;
                    let (_, message) = peer.mask_input(mine, &zeros).map_err(|e| e.to_string())?;
                    masked.push(message);
                }
                let routed: BTreeMap<String, _> = routed
                    .into_iter()
                    .filter_map(|r| Some((live.names.get(r.recipient as usize)?.clone(), r)))
                    .collect();
                live.stage = Stage::Mask { server, masked };
                Instruction::SecAggMask {
                    round: live.round,
                    routed,
                }
            }
            (Stage::Mask { mut server, masked }, SecAggMessage::Masked(mine)) => {
                for message in masked {
                    server.receive(message).map_err(|e| e.to_string())?;
                }
                server
                    .receive(mine)
                    .map_err(|e| refused("masked input", e))?;
                let stage0 = self.record().started.get(live.run).copied().unwrap_or(0);
                self.record().masked.push((live.run, stage0));
                // Unmasking is not needed to show the refusal: the next run
                // starts now.
                return self.start(step);
            }
            (_, other) => {
                return Err(format!(
                    "step {}: the node (id {}) sent {other:?} out of turn",
                    live.step, live.node_id
                ));
            }
        };
        live.step = step;
        self.live = Some(live);
        Ok(Some(next))
    }
}

impl Director for SecureRuns {
    fn next(&mut self, received: &Received, step: u64) -> Option<Instruction> {
        let next = match self.live.take() {
            None => self.start(step),
            Some(live) => self.advance(live, received, step),
        };
        next.unwrap_or_else(|error| {
            self.record().errors.push(error);
            None
        })
    }
}
