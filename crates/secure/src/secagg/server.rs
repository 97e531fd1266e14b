//! The coordinator's side up to the consistency check: [`Server`] →
//! [`ServerSharing`] → [`ServerMasking`] → [`ServerChecking`]; unmasking
//! ([`ServerUnmasking`](super::ServerUnmasking) → [`Aggregate`](super::Aggregate))
//! is in `unmasking`. In each state, `receive` takes one member's message
//! (an error refuses that message only), and `finish` closes the step,
//! consuming the state.
//!
//! The server never holds a plaintext input: it sums masked inputs once it
//! knows which of them go in (a member complained about is left out), and
//! the masks come off the sum alone.

use std::collections::{BTreeMap, BTreeSet};

use super::checked::signs_survivors;
use super::client::{check_quorum, check_signature};
use super::crypto::SEALED_SHARE_LEN;
use super::error::{SecAggError, Stage};
use super::messages::{
    AdvertiseKeys, ConsistencyRequest, ConsistencySignature, KeyList, MaskedInput, RoutedShare,
    RoutedShares, ShareCommitments, ShareKeys, UnmaskRequest,
};
use super::params::SecAggParams;
use super::unmasking::{Excluded, ServerUnmasking};

#[cfg(any(test, feature = "inspect"))]
use super::inspect::{Inspect, Observed};

/// Passes vectors to the test-only inspector, if there is one.
#[derive(Default)]
pub(super) struct Probe {
    #[cfg(any(test, feature = "inspect"))]
    pub(super) inspector: Option<Box<dyn Inspect>>,
}

#[cfg(any(test, feature = "inspect"))]
macro_rules! observe {
    ($probe:expr, $what:expr, $values:expr) => {
        if let Some(inspector) = $probe.inspector.as_mut() {
            inspector.observe($what, $values);
        }
    };
}

#[cfg(not(any(test, feature = "inspect")))]
macro_rules! observe {
    ($probe:expr, $what:expr, $values:expr) => {
        let _ = &$probe;
    };
}

pub(super) use observe;

/// Each share's commitments, by (owner, holder).
pub(super) type Commitments = BTreeMap<(u32, u32), ShareCommitments>;

/// Round 0: collecting the members' advertised keys.
pub struct Server {
    params: SecAggParams,
    keys: BTreeMap<u32, AdvertiseKeys>,
    probe: Probe,
}

/// Round 1: collecting the members' encrypted shares.
pub struct ServerSharing {
    params: SecAggParams,
    /// U1: the members whose keys went out in the key list.
    keys: BTreeMap<u32, AdvertiseKeys>,
    shares: BTreeMap<u32, ShareKeys>,
    probe: Probe,
}

/// Round 2: collecting masked inputs.
pub struct ServerMasking {
    params: SecAggParams,
    keys: BTreeMap<u32, AdvertiseKeys>,
    commitments: Commitments,
    /// U2: the members whose shares were routed, each to all the others.
    sharers: BTreeSet<u32>,
    /// The masked inputs so far, kept apart until `finish` knows which of
    /// them go into the sum.
    arrived: BTreeMap<u32, MaskedInput>,
    probe: Probe,
}

/// Round 3: collecting the survivors' signatures on the survivor set.
pub struct ServerChecking {
    params: SecAggParams,
    keys: BTreeMap<u32, AdvertiseKeys>,
    commitments: Commitments,
    /// U3: the members whose masked input is in the sum.
    survivors: BTreeSet<u32>,
    /// Each survivor's view of U2: itself and the senders routed to it,
    /// less those it complained about.
    views: BTreeMap<u32, BTreeSet<u32>>,
    sum: Vec<u64>,
    signatures: BTreeMap<u32, ConsistencySignature>,
    excluded: Vec<Excluded>,
    probe: Probe,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("advertised", &self.keys.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn duplicate(stage: Stage, member: u32) -> SecAggError {
    SecAggError::Duplicate {
        stage,
        member,
        what: "the messages received",
    }
}

impl Server {
    /// A server for the round set by `params`, waiting for advertised keys.
    pub fn new(params: SecAggParams) -> Self {
        Self {
            params,
            keys: BTreeMap::new(),
            probe: Probe::default(),
        }
    }

    /// Test-only: a server that shows every vector it holds or computes to
    /// `inspector`.
    #[cfg(any(test, feature = "inspect"))]
    pub fn with_inspector(params: SecAggParams, inspector: Box<dyn Inspect>) -> Self {
        Self {
            params,
            keys: BTreeMap::new(),
            probe: Probe {
                inspector: Some(inspector),
            },
        }
    }

    /// Takes one member's advertised keys.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`], [`SecAggError::Duplicate`], and
    /// [`SecAggError::BadSignature`] if the keys are not signed by the
    /// sender's roster key.
    pub fn receive(&mut self, message: AdvertiseKeys) -> Result<(), SecAggError> {
        let stage = Stage::AdvertiseKeys;
        let member = message.sender;
        self.params.check_id(stage, "sender", member)?;
        if self.keys.contains_key(&member) {
            return Err(duplicate(stage, member));
        }
        check_signature(&self.params, &message)?;
        self.keys.insert(member, message);
        Ok(())
    }

    /// Closes round 0: the key list goes to every member in it.
    ///
    /// # Errors
    /// [`SecAggError::TooFewMembers`] below the threshold.
    pub fn finish(self) -> Result<(ServerSharing, KeyList), SecAggError> {
        check_quorum(
            Stage::AdvertiseKeys,
            self.keys.len(),
            self.params.threshold(),
        )?;
        let list = KeyList {
            keys: self.keys.values().cloned().collect(),
        };
        let next = ServerSharing {
            params: self.params,
            keys: self.keys,
            shares: BTreeMap::new(),
            probe: self.probe,
        };
        Ok((next, list))
    }
}

impl ServerSharing {
    /// Takes one member's encrypted shares: one per other member of the key
    /// list, each of the sealed size.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`], [`SecAggError::UnexpectedMember`]
    /// (sender or recipient not in the key list, or a recipient missing),
    /// [`SecAggError::Duplicate`], [`SecAggError::WrongLength`].
    pub fn receive(&mut self, message: ShareKeys) -> Result<(), SecAggError> {
        let stage = Stage::ShareKeys;
        let sender = message.sender;
        self.params.check_id(stage, "sender", sender)?;
        if !self.keys.contains_key(&sender) {
            return Err(SecAggError::UnexpectedMember {
                stage,
                member: sender,
                reason: "it is not in the key list".into(),
            });
        }
        if self.shares.contains_key(&sender) {
            return Err(duplicate(stage, sender));
        }
        let mut recipients = BTreeSet::new();
        for share in &message.shares {
            let recipient = share.recipient;
            self.params.check_id(stage, "recipient", recipient)?;
            if recipient == sender || !self.keys.contains_key(&recipient) {
                return Err(SecAggError::UnexpectedMember {
                    stage,
                    member: sender,
                    reason: format!(
                        "it sent a share for member {recipient}, not another member of the key list"
                    ),
                });
            }
            if !recipients.insert(recipient) {
                return Err(SecAggError::Duplicate {
                    stage,
                    member: recipient,
                    what: "the recipients of one member's shares",
                });
            }
            if share.ciphertext.len() != SEALED_SHARE_LEN {
                return Err(SecAggError::WrongLength {
                    stage,
                    member: sender,
                    field: "ciphertext",
                    expected: format!("{SEALED_SHARE_LEN} bytes"),
                    got: format!("{} bytes", share.ciphertext.len()),
                });
            }
        }
        if let Some(&missing) = self
            .keys
            .keys()
            .find(|&&m| m != sender && !recipients.contains(&m))
        {
            return Err(SecAggError::UnexpectedMember {
                stage,
                member: sender,
                reason: format!("it sent no share for member {missing}"),
            });
        }
        self.shares.insert(sender, message);
        Ok(())
    }

    /// Closes round 1: the members that sent shares (U2) each get the
    /// shares the others of U2 encrypted for them.
    ///
    /// # Errors
    /// [`SecAggError::TooFewMembers`] below the threshold.
    pub fn finish(self) -> Result<(ServerMasking, Vec<RoutedShares>), SecAggError> {
        check_quorum(Stage::ShareKeys, self.shares.len(), self.params.threshold())?;
        let sharers: BTreeSet<u32> = self.shares.keys().copied().collect();
        let mut routed: BTreeMap<u32, RoutedShares> = sharers
            .iter()
            .map(|&recipient| {
                (
                    recipient,
                    RoutedShares {
                        recipient,
                        shares: Vec::with_capacity(sharers.len()),
                    },
                )
            })
            .collect();
        let mut commitments = Commitments::new();
        for (&sender, message) in &self.shares {
            commitments.insert((sender, sender), message.own);
            for share in &message.shares {
                if let Some(out) = routed.get_mut(&share.recipient) {
                    out.shares.push(RoutedShare {
                        sender,
                        ciphertext: share.ciphertext.clone(),
                        commitments: share.commitments,
                    });
                    commitments.insert((sender, share.recipient), share.commitments);
                }
            }
        }
        let next = ServerMasking {
            params: self.params,
            keys: self.keys,
            commitments,
            sharers,
            arrived: BTreeMap::new(),
            probe: self.probe,
        };
        Ok((next, routed.into_values().collect()))
    }
}

impl ServerMasking {
    /// Takes one member's masked input and its complaints.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`], [`SecAggError::UnexpectedMember`]
    /// (not in U2, or a complaint about a member whose shares were not
    /// routed to it), [`SecAggError::Duplicate`], [`SecAggError::WrongLength`],
    /// and [`SecAggError::TooFewMembers`] when its complaints leave it fewer
    /// members than the threshold (an honest member would not have masked).
    pub fn receive(&mut self, message: MaskedInput) -> Result<(), SecAggError> {
        let stage = Stage::MaskedInput;
        let sender = message.sender;
        self.params.check_id(stage, "sender", sender)?;
        if !self.sharers.contains(&sender) {
            return Err(SecAggError::UnexpectedMember {
                stage,
                member: sender,
                reason: "its shares were not routed in share-keys".into(),
            });
        }
        if self.arrived.contains_key(&sender) {
            return Err(duplicate(stage, sender));
        }
        if message.values.len() != self.params.vector_len() {
            return Err(SecAggError::WrongLength {
                stage,
                member: sender,
                field: "masked vector",
                expected: format!("{} values", self.params.vector_len()),
                got: format!("{} values", message.values.len()),
            });
        }
        let mut complaints = BTreeSet::new();
        for &member in &message.complaints {
            self.params.check_id(stage, "complaint", member)?;
            if member == sender || !self.sharers.contains(&member) {
                return Err(SecAggError::UnexpectedMember {
                    stage,
                    member: sender,
                    reason: format!(
                        "it complains about member {member}, whose shares were not routed to it"
                    ),
                });
            }
            if !complaints.insert(member) {
                return Err(SecAggError::Duplicate {
                    stage,
                    member,
                    what: "one member's complaints",
                });
            }
        }
        check_quorum(
            stage,
            self.sharers.len() - complaints.len(),
            self.params.threshold(),
        )?;
        observe!(
            self.probe,
            Observed::MaskedInput { sender },
            &message.values
        );
        self.arrived.insert(sender, message);
        Ok(())
    }

    /// Closes round 2. A member some survivor complained about is left out
    /// of U3 and named (its masked input is not added; the survivors that
    /// masked with it reveal its mask key instead). The masked inputs of U3
    /// are summed and U3 goes to its members to sign.
    ///
    /// # Errors
    /// [`SecAggError::TooFewMembers`] when U3 is below the threshold.
    pub fn finish(mut self) -> Result<(ServerChecking, ConsistencyRequest), SecAggError> {
        let mut complainers: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (&from, input) in &self.arrived {
            for &about in &input.complaints {
                complainers.entry(about).or_default().push(from);
            }
        }
        let excluded: Vec<Excluded> = complainers
            .iter()
            .map(|(&member, from)| Excluded {
                member,
                stage: Stage::ShareKeys,
                reason: format!(
                    "member(s) {} refused the shares it sent them (they do not decrypt, name \
                     another pair, sit at the wrong point or do not match their commitments); \
                     its input is not in the sum",
                    from.iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect();
        self.arrived
            .retain(|member, _| !complainers.contains_key(member));
        check_quorum(
            Stage::MaskedInput,
            self.arrived.len(),
            self.params.threshold(),
        )?;
        let mut sum = vec![0u64; self.params.vector_len()];
        let mut views = BTreeMap::new();
        for (&member, input) in &self.arrived {
            for (acc, value) in sum.iter_mut().zip(&input.values) {
                *acc = acc.wrapping_add(*value);
            }
            observe!(
                self.probe,
                Observed::RunningSum {
                    inputs: views.len() + 1
                },
                &sum
            );
            let mut view = self.sharers.clone();
            for about in &input.complaints {
                view.remove(about);
            }
            views.insert(member, view);
        }
        let survivors: BTreeSet<u32> = self.arrived.keys().copied().collect();
        let request = ConsistencyRequest {
            survivors: survivors.iter().copied().collect(),
        };
        let next = ServerChecking {
            params: self.params,
            keys: self.keys,
            commitments: self.commitments,
            survivors,
            views,
            sum,
            signatures: BTreeMap::new(),
            excluded,
            probe: self.probe,
        };
        Ok((next, request))
    }
}

impl ServerChecking {
    /// Takes one survivor's signature on U3 and its view of U2. A refused
    /// signature is also named in the round's [`excluded`] list, and its
    /// sender is neither counted nor asked to unmask.
    ///
    /// [`excluded`]: super::Aggregate::excluded
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`], [`SecAggError::UnexpectedMember`]
    /// (not a survivor), [`SecAggError::Duplicate`], and
    /// [`SecAggError::BadConsistencySignature`] for a view other than the
    /// one its routed shares and complaints give, or a signature that does
    /// not verify under its roster key.
    pub fn receive(&mut self, message: ConsistencySignature) -> Result<(), SecAggError> {
        let stage = Stage::ConsistencyCheck;
        let sender = message.sender;
        self.params.check_id(stage, "sender", sender)?;
        let Some(view) = self.views.get(&sender) else {
            return Err(SecAggError::UnexpectedMember {
                stage,
                member: sender,
                reason: "its masked input is not in the sum".into(),
            });
        };
        if self.signatures.contains_key(&sender) {
            return Err(duplicate(stage, sender));
        }
        let reason = if !message.seen.iter().eq(view.iter()) {
            Some(format!(
                "it signs the view of U2 {:?}, but the shares routed to it and its complaints \
                 give {:?}",
                message.seen, view
            ))
        } else {
            let listed: Vec<u32> = self.survivors.iter().copied().collect();
            (!signs_survivors(&self.params, &self.survivors, &listed, &message))
                .then(|| "it does not verify under the member's roster key".to_string())
        };
        if let Some(reason) = reason {
            self.excluded.push(Excluded {
                member: sender,
                stage,
                reason: format!("its signature on the survivor set is refused: {reason}"),
            });
            return Err(SecAggError::BadConsistencySignature {
                member: sender,
                reason,
            });
        }
        self.signatures.insert(sender, message);
        Ok(())
    }

    /// Closes round 3: the signers are asked for their shares, with every
    /// signature as proof that t survivors were shown this U3.
    ///
    /// # Errors
    /// [`SecAggError::TooFewMembers`] with fewer than t valid signatures.
    pub fn finish(self) -> Result<(ServerUnmasking, UnmaskRequest), SecAggError> {
        check_quorum(
            Stage::ConsistencyCheck,
            self.signatures.len(),
            self.params.threshold(),
        )?;
        let request = UnmaskRequest {
            survivors: self.survivors.iter().copied().collect(),
            signatures: self.signatures.values().cloned().collect(),
        };
        let signers = self.signatures.into_keys().collect();
        let next = ServerUnmasking {
            params: self.params,
            keys: self.keys,
            commitments: self.commitments,
            survivors: self.survivors,
            views: self.views,
            signers,
            sum: self.sum,
            responses: BTreeMap::new(),
            excluded: self.excluded,
            probe: self.probe,
        };
        Ok((next, request))
    }
}
