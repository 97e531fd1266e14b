//! A coordinator that runs secure rounds for real against one node, up to
//! its masked input: it serves each run's stage 0 with a roster of real
//! certificates, plays the other members honestly with medfed-secure's
//! [`Client`] state machines (it holds their signing keys), checks what the
//! node sends with a [`Server`], and then starts the next run. What it
//! would do with the sums (subtract them) does not need to happen: the
//! tests show the node refuses before the second sum can be formed.
//!
//! A run may also carry a [`SplitView`]: the coordinator then routes to the
//! node only some members' shares, goes on past the masked input to the
//! consistency check and unmasking, shows each member the survivor set the
//! attack picks, pools every signature it gathered into each unmasking
//! request, and records every share it is given, so a test can show what
//! it could and could not rebuild.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use medfed_secure::secagg::{
    AdvertiseKeys, Client, ClientAdvertised, ClientMasked, ClientShared, ConsistencyRequest,
    ConsistencySignature, FixedPoint, MaskedInput, Member, SecAggConfig, SecAggParams, Server,
    ServerMasking, ServerSharing, ShareKeys, UnmaskRequest, UnmaskResponse,
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
    /// The split-view attack to play, if any (see the module docs).
    pub split: Option<SplitView>,
}

/// A coordinator that shows members different views of one round.
#[derive(Clone, Debug)]
pub struct SplitView {
    /// The members (roster ids) whose shares are routed to the node; every
    /// other member gets every share.
    pub node_sees: Vec<u32>,
    /// The survivor set shown to each member at the consistency check, by
    /// roster id.
    pub shown: Vec<Vec<u32>>,
}

/// What the coordinator of a split-view run gathered.
#[derive(Clone, Debug, Default)]
pub struct Gathered {
    /// Every masked input received, the node's included.
    pub masked: Vec<MaskedInput>,
    /// Whether the node signed the survivor set it was shown.
    pub node_signed: bool,
    /// Whether the node answered the unmasking request.
    pub node_unmasked: bool,
    /// Shares received of each member's self-mask seed, by owner.
    pub self_mask_shares: BTreeMap<u32, usize>,
    /// Shares received of each member's mask key, by owner.
    pub mask_key_shares: BTreeMap<u32, usize>,
    /// What the other members refused, as the protocol named it.
    pub peer_refusals: Vec<String>,
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
    /// What a split-view run gathered.
    pub gathered: Gathered,
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
    split: Option<SplitView>,
    signing: Vec<Identity>,
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
        peers: Vec<(u32, ClientMasked)>,
    },
    Check {
        signatures: Vec<ConsistencySignature>,
    },
    Unmask,
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
        let signing = run.roster.clone();
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
            split: run.split,
            signing,
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
                let (server, mut routed) = server.finish().map_err(|e| e.to_string())?;
                if let Some(split) = &live.split {
                    for r in routed.iter_mut().filter(|r| r.recipient == live.node_id) {
                        r.shares.retain(|s| split.node_sees.contains(&s.sender));
                    }
                }
                let zeros = live
                    .params
                    .encode_input(&vec![0.0; live.params.vector_len()])
                    .map_err(|e| e.to_string())?;
                let mut masked = Vec::new();
                let mut peers_masked = Vec::new();
                for (id, peer) in peers {
                    let mine = routed
                        .iter()
                        .find(|r| r.recipient == id)
                        .ok_or("no shares routed to a member")?;
                    let (client, message) =
                        peer.mask_input(mine, &zeros).map_err(|e| e.to_string())?;
                    masked.push(message);
                    peers_masked.push((id, client));
                }
                let routed: BTreeMap<String, _> = routed
                    .into_iter()
                    .filter_map(|r| Some((live.names.get(r.recipient as usize)?.clone(), r)))
                    .collect();
                live.stage = Stage::Mask {
                    server,
                    masked,
                    peers: peers_masked,
                };
                Instruction::SecAggMask {
                    round: live.round,
                    routed,
                }
            }
            (
                Stage::Mask {
                    mut server,
                    masked,
                    peers,
                },
                SecAggMessage::Masked(mine),
            ) => {
                for message in &masked {
                    server.receive(message.clone()).map_err(|e| e.to_string())?;
                }
                server
                    .receive(mine.clone())
                    .map_err(|e| refused("masked input", e))?;
                let stage0 = self.record().started.get(live.run).copied().unwrap_or(0);
                self.record().masked.push((live.run, stage0));
                let Some(split) = live.split.clone() else {
                    // Unmasking is not needed to show the refusal: the next
                    // run starts now.
                    return self.start(step);
                };
                {
                    let gathered = &mut self.record().gathered;
                    gathered.masked = masked;
                    gathered.masked.push(mine);
                }
                let signatures = self.peers_unmask(&live.signing, &split, peers);
                live.stage = Stage::Check { signatures };
                Instruction::SecAggCheck {
                    round: live.round,
                    request: ConsistencyRequest {
                        survivors: split.shown[live.node_id as usize].clone(),
                    },
                }
            }
            (Stage::Check { mut signatures }, SecAggMessage::Consistency(mine)) => {
                self.record().gathered.node_signed = true;
                let split = live.split.clone().ok_or("a check without a split view")?;
                signatures.push(mine);
                live.stage = Stage::Unmask;
                Instruction::SecAggUnmask {
                    round: live.round,
                    request: UnmaskRequest {
                        survivors: split.shown[live.node_id as usize].clone(),
                        signatures,
                    },
                }
            }
            (Stage::Unmask, SecAggMessage::Unmask(mine)) => {
                {
                    let gathered = &mut self.record().gathered;
                    gathered.node_unmasked = true;
                    count_shares(gathered, &mine);
                }
                self.runs.clear();
                return Ok(None);
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

impl SecureRuns {
    /// The other members of a split-view run, as the node's consistency
    /// check goes out: each signs the set it is shown, if it will; then
    /// each is asked to unmask its set with every signature gathered, and
    /// every share it reveals is counted. Returns the pooled signatures,
    /// which go into the node's unmasking request with its own.
    fn peers_unmask(
        &self,
        signing: &[Identity],
        split: &SplitView,
        peers: Vec<(u32, ClientMasked)>,
    ) -> Vec<ConsistencySignature> {
        let mut signatures = Vec::new();
        let mut checked = Vec::new();
        let mut record = self.record();
        for (id, peer) in peers {
            let shown = ConsistencyRequest {
                survivors: split.shown[id as usize].clone(),
            };
            match peer.check(&shown, signing[id as usize].signing_key.key_pair()) {
                Ok((client, signature)) => {
                    signatures.push(signature);
                    checked.push((id, client));
                }
                Err(e) => record
                    .gathered
                    .peer_refusals
                    .push(format!("member {id}: {e}")),
            }
        }
        for (id, client) in checked {
            let request = UnmaskRequest {
                survivors: split.shown[id as usize].clone(),
                signatures: signatures.clone(),
            };
            match client.unmask(&request) {
                Ok(response) => count_shares(&mut record.gathered, &response),
                Err(e) => record
                    .gathered
                    .peer_refusals
                    .push(format!("member {id}: {e}")),
            }
        }
        signatures
    }
}

/// Adds the shares in `response` to what was gathered.
fn count_shares(gathered: &mut Gathered, response: &UnmaskResponse) {
    for share in &response.self_mask_shares {
        *gathered.self_mask_shares.entry(share.owner).or_default() += 1;
    }
    for share in &response.mask_key_shares {
        *gathered.mask_key_shares.entry(share.owner).or_default() += 1;
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
