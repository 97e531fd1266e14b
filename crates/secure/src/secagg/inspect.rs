//! Test-only observation of the server: [`Inspect`] is called with every
//! vector the server holds or computes, so tests can show that none of them
//! is a single member's input, and [`ServerKnowledge`] hands tests what the
//! server holds after a round. Compiled only for this crate's tests and with
//! the `inspect` feature; a product build has neither.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use super::crypto::{self, Share};
use super::error::SecAggError;
use super::messages::{AdvertiseKeys, MaskedInput, RevealedShare, UnmaskResponse};
use super::params::SecAggParams;
use super::unmasking::{Rebuilt, pairwise_seed_with};

/// What an observed vector is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Observed {
    /// A masked input as it arrived.
    MaskedInput {
        /// Its sender.
        sender: u32,
    },
    /// The running sum of the masked inputs received so far.
    RunningSum {
        /// How many inputs it holds.
        inputs: usize,
    },
    /// The sum after removing the pairwise masks shared with one dropped
    /// member.
    PairwiseMasksRemoved {
        /// The dropped member.
        dropped: u32,
    },
    /// The sum after removing one survivor's self mask.
    SelfMaskRemoved {
        /// The survivor.
        survivor: u32,
    },
    /// The final sum.
    Output,
}

/// Receives every vector the server holds or computes.
pub trait Inspect: Send {
    /// Called once per vector, in the order the server makes them.
    fn observe(&mut self, what: Observed, values: &[u64]);
}

/// Test-only: what the server holds after a round (keys, every revealed
/// share, the secrets it rebuilt), whether an honest server finished the
/// round or a hostile one pooled whatever members sent it.
pub struct ServerKnowledge {
    params: SecAggParams,
    keys: BTreeMap<u32, AdvertiseKeys>,
    responses: Vec<UnmaskResponse>,
    rebuilt: Rebuilt,
}

impl ServerKnowledge {
    pub(super) fn new(
        params: SecAggParams,
        keys: BTreeMap<u32, AdvertiseKeys>,
        responses: Vec<UnmaskResponse>,
        rebuilt: Rebuilt,
    ) -> Self {
        Self {
            params,
            keys,
            responses,
            rebuilt,
        }
    }

    /// Everything a server could have gathered from `responses` (from any
    /// members, to any requests it made up): each secret it can rebuild
    /// from t shares at distinct points is rebuilt, and a mask key only if
    /// it matches the advertised public key.
    pub fn from_received(
        params: SecAggParams,
        keys: &[AdvertiseKeys],
        responses: Vec<UnmaskResponse>,
    ) -> Self {
        let keys: BTreeMap<u32, AdvertiseKeys> =
            keys.iter().map(|k| (k.sender, k.clone())).collect();
        let mut knowledge = Self {
            params,
            keys,
            responses,
            rebuilt: Rebuilt {
                mask_keys: BTreeMap::new(),
                self_seeds: BTreeMap::new(),
            },
        };
        for owner in 0..knowledge.params.members() {
            if let Ok(seed) = knowledge.rebuild_self_mask_seed(owner) {
                knowledge
                    .rebuilt
                    .self_seeds
                    .insert(owner, Zeroizing::new(seed));
            }
            if let Ok(secret) = knowledge.rebuild_mask_key(owner) {
                knowledge
                    .rebuilt
                    .mask_keys
                    .insert(owner, Zeroizing::new(secret));
            }
        }
        knowledge
    }

    /// The shares of `owner`'s self-mask seed the server received, one per
    /// evaluation point.
    pub fn self_mask_shares(&self, owner: u32) -> Vec<[u8; crypto::SHARE_LEN]> {
        self.shares(owner, |r| &r.self_mask_shares)
    }

    /// The shares of `owner`'s mask secret key the server received, one per
    /// evaluation point.
    pub fn mask_key_shares(&self, owner: u32) -> Vec<[u8; crypto::SHARE_LEN]> {
        self.shares(owner, |r| &r.mask_key_shares)
    }

    fn shares(
        &self,
        owner: u32,
        pick: fn(&UnmaskResponse) -> &[RevealedShare],
    ) -> Vec<[u8; crypto::SHARE_LEN]> {
        let mut by_point = BTreeMap::new();
        for share in self.responses.iter().flat_map(pick) {
            if share.owner == owner {
                by_point.entry(share.share[0]).or_insert(share.share);
            }
        }
        by_point.into_values().collect()
    }

    fn combine(
        &self,
        owner: u32,
        secret: &'static str,
        shares: &[[u8; crypto::SHARE_LEN]],
    ) -> Result<[u8; 32], SecAggError> {
        let refs: Vec<&Share> = shares.iter().collect();
        crypto::combine(&refs, self.params.threshold())
            .map(|secret| *secret)
            .map_err(|reason| SecAggError::ReconstructionFailed {
                owner,
                secret,
                reason,
            })
    }

    /// Tries to rebuild `owner`'s self-mask seed from the shares received.
    ///
    /// # Errors
    /// [`SecAggError::ReconstructionFailed`] with fewer than t shares.
    pub fn rebuild_self_mask_seed(&self, owner: u32) -> Result<[u8; 32], SecAggError> {
        self.combine(owner, "self-mask seed", &self.self_mask_shares(owner))
    }

    /// Tries to rebuild `owner`'s mask secret key from the shares received,
    /// checked against the public key it advertised.
    ///
    /// # Errors
    /// [`SecAggError::ReconstructionFailed`] with fewer than t shares or a
    /// key that does not match.
    pub fn rebuild_mask_key(&self, owner: u32) -> Result<[u8; 32], SecAggError> {
        let secret = self.combine(owner, "mask key", &self.mask_key_shares(owner))?;
        if self.keys.get(&owner).map(|k| k.mask_key) != Some(crypto::x25519_public(&secret)) {
            return Err(SecAggError::ReconstructionFailed {
                owner,
                secret: "mask key",
                reason: "it does not match the advertised public key".into(),
            });
        }
        Ok(secret)
    }

    /// Removes from `masked` every mask the server can: the self mask if
    /// the sender's seed was rebuilt, and the pairwise mask with each member
    /// of `view` (the members the sender masked with) whose mask key, or
    /// the sender's, was rebuilt. Returns what is left and the masks that
    /// could not be removed; only when none is left is the result the
    /// sender's input.
    ///
    /// # Errors
    /// [`SecAggError::Crypto`] for a member of `view` without keys.
    pub fn strip_all_masks(
        &self,
        masked: &MaskedInput,
        view: &[u32],
    ) -> Result<(Vec<u64>, Vec<String>), SecAggError> {
        let owner = masked.sender;
        let mut values = masked.values.clone();
        let mut left = Vec::new();
        match self.rebuilt.self_seeds.get(&owner) {
            Some(seed) => {
                let key = crypto::self_mask_key(&self.params, seed, owner)?;
                crypto::apply_mask(&mut values, &key, true);
            }
            None => left.push(format!("the self mask of member {owner}")),
        }
        for &other in view.iter().filter(|&&m| m != owner) {
            let known = self
                .rebuilt
                .mask_keys
                .get(&owner)
                .map(|secret| (secret, owner, other))
                .or_else(|| {
                    self.rebuilt
                        .mask_keys
                        .get(&other)
                        .map(|secret| (secret, other, owner))
                });
            match known {
                Some((secret, a, b)) => {
                    let seed = pairwise_seed_with(&self.params, &self.keys, secret, a, b)?;
                    crypto::apply_mask(&mut values, &seed, other > owner);
                }
                None => left.push(format!("the pairwise mask of members {owner} and {other}")),
            }
        }
        Ok((values, left))
    }

    /// Removes from `late` every pairwise mask of its sender, using the
    /// sender's rebuilt mask secret key and every other member's advertised
    /// key: what remains is x + PRG(b) for the sender.
    ///
    /// # Errors
    /// [`SecAggError::ReconstructionFailed`] if the sender's mask key was
    /// not rebuilt (it was not dropped).
    pub fn strip_pairwise_masks(&self, late: &MaskedInput) -> Result<Vec<u64>, SecAggError> {
        let owner = late.sender;
        let secret = self.rebuilt.mask_keys.get(&owner).ok_or_else(|| {
            SecAggError::ReconstructionFailed {
                owner,
                secret: "mask key",
                reason: "the member was not dropped, so its key was never rebuilt".into(),
            }
        })?;
        let mut values = late.values.clone();
        // The sender masked with every other member of U2, which is the
        // survivors and the dropped members together.
        let partners = self
            .rebuilt
            .self_seeds
            .keys()
            .chain(self.rebuilt.mask_keys.keys())
            .filter(|&&m| m != owner);
        for &other in partners {
            let seed = pairwise_seed_with(&self.params, &self.keys, secret, owner, other)?;
            // The sender added PRG(s) when other > owner: subtract it then.
            crypto::apply_mask(&mut values, &seed, other > owner);
        }
        Ok(values)
    }
}
