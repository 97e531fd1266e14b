//! The coordinator's side: [`Server`] → [`ServerSharing`] →
//! [`ServerMasking`] → [`ServerChecking`] → [`ServerUnmasking`] →
//! [`Aggregate`]. In each state,
//! `receive` takes one member's message (an error refuses that message
//! only), and `finish` closes the step, consuming the state.
//!
//! The server keeps only a running sum of the masked inputs, never a
//! plaintext input: the masks come off the sum alone.

use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

use super::client::{check_consistency_signature, check_quorum, check_signature};
use super::crypto::{self, SEALED_SHARE_LEN, Share};
use super::error::{SecAggError, Stage};
use super::fixed_point::FixedPoint;
use super::messages::{
    AdvertiseKeys, ConsistencyRequest, ConsistencySignature, KeyList, MaskedInput, RevealedShare,
    RoutedShare, RoutedShares, ShareKeys, UnmaskRequest, UnmaskResponse,
};
use super::params::SecAggParams;

#[cfg(any(test, feature = "inspect"))]
use super::inspect::{Inspect, Observed, ServerKnowledge};

/// Passes vectors to the test-only inspector, if there is one.
#[derive(Default)]
struct Probe {
    #[cfg(any(test, feature = "inspect"))]
    inspector: Option<Box<dyn Inspect>>,
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

/// Round 2: collecting masked inputs into a running sum.
pub struct ServerMasking {
    params: SecAggParams,
    keys: BTreeMap<u32, AdvertiseKeys>,
    /// U2: the members whose shares were routed.
    sharers: BTreeSet<u32>,
    /// U3 so far.
    arrived: BTreeSet<u32>,
    sum: Vec<u64>,
    probe: Probe,
}

/// Round 3: collecting the survivors' signatures on the survivor set.
pub struct ServerChecking {
    params: SecAggParams,
    keys: BTreeMap<u32, AdvertiseKeys>,
    sharers: BTreeSet<u32>,
    survivors: BTreeSet<u32>,
    sum: Vec<u64>,
    signatures: BTreeMap<u32, ConsistencySignature>,
    probe: Probe,
}

/// Round 4: collecting the shares that remove the masks.
pub struct ServerUnmasking {
    params: SecAggParams,
    keys: BTreeMap<u32, AdvertiseKeys>,
    survivors: BTreeSet<u32>,
    dropped: BTreeSet<u32>,
    sum: Vec<u64>,
    responses: BTreeMap<u32, UnmaskResponse>,
    probe: Probe,
}

/// The outcome of a round: the sum of the inputs of the members in
/// `contributors`, and nothing about any one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// Σ x_u over the contributors, in Z_{2^64}.
    pub sum: Vec<u64>,
    /// U3: the members whose inputs are in the sum.
    pub contributors: Vec<u32>,
    fixed_point: FixedPoint,
}

impl Aggregate {
    /// The sum as `f64`, within
    /// [`FixedPoint::sum_error_bound`]`(contributors)` of the true sum.
    pub fn decode(&self) -> Vec<f64> {
        self.fixed_point.decode(&self.sum)
    }
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
        for (&sender, message) in &self.shares {
            for share in &message.shares {
                if let Some(out) = routed.get_mut(&share.recipient) {
                    out.shares.push(RoutedShare {
                        sender,
                        ciphertext: share.ciphertext.clone(),
                    });
                }
            }
        }
        let next = ServerMasking {
            sum: vec![0; self.params.vector_len()],
            params: self.params,
            keys: self.keys,
            sharers,
            arrived: BTreeSet::new(),
            probe: self.probe,
        };
        Ok((next, routed.into_values().collect()))
    }
}

impl ServerMasking {
    /// Adds one member's masked input to the running sum.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`], [`SecAggError::UnexpectedMember`]
    /// (not in U2), [`SecAggError::Duplicate`], [`SecAggError::WrongLength`].
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
        if self.arrived.contains(&sender) {
            return Err(duplicate(stage, sender));
        }
        if message.values.len() != self.sum.len() {
            return Err(SecAggError::WrongLength {
                stage,
                member: sender,
                field: "masked vector",
                expected: format!("{} values", self.sum.len()),
                got: format!("{} values", message.values.len()),
            });
        }
        observe!(
            self.probe,
            Observed::MaskedInput { sender },
            &message.values
        );
        for (acc, value) in self.sum.iter_mut().zip(&message.values) {
            *acc = acc.wrapping_add(*value);
        }
        self.arrived.insert(sender);
        observe!(
            self.probe,
            Observed::RunningSum {
                inputs: self.arrived.len()
            },
            &self.sum
        );
        Ok(())
    }

    /// Closes round 2: the survivors (U3) are asked to sign the survivor
    /// set.
    ///
    /// # Errors
    /// [`SecAggError::TooFewMembers`] below the threshold.
    pub fn finish(self) -> Result<(ServerChecking, ConsistencyRequest), SecAggError> {
        check_quorum(
            Stage::MaskedInput,
            self.arrived.len(),
            self.params.threshold(),
        )?;
        let request = ConsistencyRequest {
            survivors: self.arrived.iter().copied().collect(),
        };
        let next = ServerChecking {
            params: self.params,
            keys: self.keys,
            sharers: self.sharers,
            survivors: self.arrived,
            sum: self.sum,
            signatures: BTreeMap::new(),
            probe: self.probe,
        };
        Ok((next, request))
    }
}

impl ServerChecking {
    /// Takes one survivor's signature on the survivor set.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`], [`SecAggError::UnexpectedMember`]
    /// (not a survivor), [`SecAggError::Duplicate`], and
    /// [`SecAggError::BadConsistencySignature`] naming a member whose
    /// signature does not verify under its roster key (it is not counted).
    pub fn receive(&mut self, message: ConsistencySignature) -> Result<(), SecAggError> {
        let stage = Stage::ConsistencyCheck;
        let sender = message.sender;
        self.params.check_id(stage, "sender", sender)?;
        if !self.survivors.contains(&sender) {
            return Err(SecAggError::UnexpectedMember {
                stage,
                member: sender,
                reason: "its masked input did not arrive".into(),
            });
        }
        if self.signatures.contains_key(&sender) {
            return Err(duplicate(stage, sender));
        }
        check_consistency_signature(&self.params, &self.survivors, &message)?;
        self.signatures.insert(sender, message);
        Ok(())
    }

    /// Closes round 3: the survivor set goes back to the survivors with
    /// every valid signature on it.
    ///
    /// # Errors
    /// [`SecAggError::TooFewMembers`] with fewer than t signatures.
    pub fn finish(self) -> Result<(ServerUnmasking, UnmaskRequest), SecAggError> {
        check_quorum(
            Stage::ConsistencyCheck,
            self.signatures.len(),
            self.params.threshold(),
        )?;
        let dropped: BTreeSet<u32> = self.sharers.difference(&self.survivors).copied().collect();
        let request = UnmaskRequest {
            survivors: self.survivors.iter().copied().collect(),
            signatures: self.signatures.into_values().collect(),
        };
        let next = ServerUnmasking {
            params: self.params,
            keys: self.keys,
            survivors: self.survivors,
            dropped,
            sum: self.sum,
            responses: BTreeMap::new(),
            probe: self.probe,
        };
        Ok((next, request))
    }
}

/// Checks one list of revealed shares: exactly one per expected owner, each
/// at the sender's evaluation point.
fn check_revealed(
    sender: u32,
    shares: &[RevealedShare],
    expected: &BTreeSet<u32>,
    secret: &'static str,
) -> Result<(), SecAggError> {
    let stage = Stage::Unmasking;
    let mut seen = BTreeSet::new();
    for share in shares {
        if !expected.contains(&share.owner) {
            return Err(SecAggError::BadShare {
                stage,
                member: sender,
                owner: share.owner,
                secret,
                reason: "the request did not ask for this share".into(),
            });
        }
        if !seen.insert(share.owner) {
            return Err(SecAggError::Duplicate {
                stage,
                member: share.owner,
                what: "one response's shares",
            });
        }
        if u32::from(share.share[0]) != sender + 1 {
            return Err(SecAggError::BadShare {
                stage,
                member: sender,
                owner: share.owner,
                secret,
                reason: format!(
                    "evaluated at x = {}, expected {} (the sender's point)",
                    share.share[0],
                    sender + 1
                ),
            });
        }
    }
    if let Some(&missing) = expected.difference(&seen).next() {
        return Err(SecAggError::BadShare {
            stage,
            member: sender,
            owner: missing,
            secret,
            reason: "the share is missing".into(),
        });
    }
    Ok(())
}

/// What the server holds after unmasking: the secrets it rebuilt.
pub(super) struct Rebuilt {
    /// Dropped member → its mask secret key.
    pub(super) mask_keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
    /// Survivor → its self-mask seed.
    pub(super) self_seeds: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

impl ServerUnmasking {
    /// Takes one survivor's shares: of the self-mask seed of every survivor
    /// and of the mask key of every dropped member, nothing else.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`], [`SecAggError::UnexpectedMember`]
    /// (not a survivor), [`SecAggError::Duplicate`], [`SecAggError::BadShare`]
    /// for a share not asked for, missing, or at the wrong point.
    pub fn receive(&mut self, message: UnmaskResponse) -> Result<(), SecAggError> {
        let stage = Stage::Unmasking;
        let sender = message.sender;
        self.params.check_id(stage, "sender", sender)?;
        if !self.survivors.contains(&sender) {
            return Err(SecAggError::UnexpectedMember {
                stage,
                member: sender,
                reason: "its masked input did not arrive".into(),
            });
        }
        if self.responses.contains_key(&sender) {
            return Err(duplicate(stage, sender));
        }
        check_revealed(
            sender,
            &message.self_mask_shares,
            &self.survivors,
            "self-mask seed",
        )?;
        check_revealed(sender, &message.mask_key_shares, &self.dropped, "mask key")?;
        self.responses.insert(sender, message);
        Ok(())
    }

    /// Closes round 4: rebuilds each dropped member's mask secret key and
    /// each survivor's self-mask seed from t shares, removes every mask from
    /// the sum, and returns the sum of the survivors' inputs.
    ///
    /// # Errors
    /// [`SecAggError::TooFewMembers`] with fewer than t responses (the sum is
    /// then never computed); [`SecAggError::ReconstructionFailed`] if a
    /// rebuilt mask key does not match the public key its member advertised.
    pub fn finish(self) -> Result<Aggregate, SecAggError> {
        self.finish_rebuilt().map(|(aggregate, _)| aggregate)
    }

    fn rebuild(
        &self,
        owner: u32,
        secret: &'static str,
        pick: fn(&UnmaskResponse) -> &[RevealedShare],
    ) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
        let shares: Vec<&Share> = self
            .responses
            .values()
            .filter_map(|response| {
                pick(response)
                    .iter()
                    .find(|s| s.owner == owner)
                    .map(|s| &s.share)
            })
            .take(self.params.threshold() as usize)
            .collect();
        crypto::combine(&shares, self.params.threshold()).map_err(|reason| {
            SecAggError::ReconstructionFailed {
                owner,
                secret,
                reason,
            }
        })
    }

    fn finish_rebuilt(mut self) -> Result<(Aggregate, Rebuilt), SecAggError> {
        check_quorum(
            Stage::Unmasking,
            self.responses.len(),
            self.params.threshold(),
        )?;
        let mut rebuilt = Rebuilt {
            mask_keys: BTreeMap::new(),
            self_seeds: BTreeMap::new(),
        };
        for &owner in &self.dropped {
            let secret = self.rebuild(owner, "mask key", |r| &r.mask_key_shares)?;
            let advertised = self.keys.get(&owner).map(|k| k.mask_key);
            if advertised != Some(crypto::x25519_public(&secret)) {
                return Err(SecAggError::ReconstructionFailed {
                    owner,
                    secret: "mask key",
                    reason: "it does not match the public key the member advertised".into(),
                });
            }
            rebuilt.mask_keys.insert(owner, secret);
        }
        for &owner in &self.survivors {
            let seed = self.rebuild(owner, "self-mask seed", |r| &r.self_mask_shares)?;
            rebuilt.self_seeds.insert(owner, seed);
        }

        let mut sum = std::mem::take(&mut self.sum);
        for (&dropped, secret) in &rebuilt.mask_keys {
            for &survivor in &self.survivors {
                let seed = pairwise_seed_with(&self.params, &self.keys, secret, dropped, survivor)?;
                // The survivor added PRG(s) if the dropped member's id is
                // above its own and subtracted it otherwise; undo that.
                crypto::apply_mask(&mut sum, &seed, dropped > survivor);
            }
            observe!(self.probe, Observed::PairwiseMasksRemoved { dropped }, &sum);
        }
        for (&survivor, seed) in &rebuilt.self_seeds {
            let key = crypto::self_mask_key(&self.params, seed, survivor)?;
            crypto::apply_mask(&mut sum, &key, true);
            observe!(self.probe, Observed::SelfMaskRemoved { survivor }, &sum);
        }
        observe!(self.probe, Observed::Output, &sum);
        let aggregate = Aggregate {
            sum,
            contributors: self.survivors.iter().copied().collect(),
            fixed_point: self.params.fixed_point(),
        };
        Ok((aggregate, rebuilt))
    }

    /// Test-only: finishes like [`ServerUnmasking::finish`] and also hands
    /// back everything the server legitimately holds afterwards, so tests
    /// can show what it can and cannot do with it.
    ///
    /// # Errors
    /// As [`ServerUnmasking::finish`].
    #[cfg(any(test, feature = "inspect"))]
    pub fn finish_with_knowledge(self) -> Result<(Aggregate, ServerKnowledge), SecAggError> {
        let params = self.params.clone();
        let keys = self.keys.clone();
        let responses: Vec<UnmaskResponse> = self.responses.values().cloned().collect();
        let (aggregate, rebuilt) = self.finish_rebuilt()?;
        Ok((
            aggregate,
            ServerKnowledge::new(params, keys, responses, rebuilt),
        ))
    }
}

/// s_uv for a member whose mask secret key is known and another's public
/// mask key.
pub(super) fn pairwise_seed_with(
    params: &SecAggParams,
    keys: &BTreeMap<u32, AdvertiseKeys>,
    secret: &[u8; 32],
    owner: u32,
    other: u32,
) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
    let other_key = keys
        .get(&other)
        .map(|k| k.mask_key)
        .ok_or(SecAggError::Crypto {
            what: "a member without advertised keys",
        })?;
    let agreed = crypto::agree(secret, &other_key).ok_or(SecAggError::WeakKey {
        stage: Stage::Unmasking,
        member: other,
    })?;
    crypto::pairwise_seed(params, &agreed, owner, other)
}
