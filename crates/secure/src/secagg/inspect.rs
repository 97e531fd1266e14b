//! Test-only observation of the server: [`Inspect`] is called with every
//! vector the server holds or computes, so tests can show that none of them
//! is a single member's input, and [`ServerKnowledge`] hands tests what the
//! server holds after a round. Compiled only for this crate's tests and with
//! the `inspect` feature; a product build has neither.

use std::collections::BTreeMap;

use super::crypto::{self, Share};
use super::error::SecAggError;
use super::messages::{AdvertiseKeys, MaskedInput, UnmaskResponse};
use super::params::SecAggParams;
use super::server::{Rebuilt, pairwise_seed_with};

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
/// share, the secrets it rebuilt).
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

    /// The shares of `owner`'s self-mask seed the server received.
    pub fn self_mask_shares(&self, owner: u32) -> Vec<[u8; crypto::SHARE_LEN]> {
        self.responses
            .iter()
            .flat_map(|r| &r.self_mask_shares)
            .filter(|s| s.owner == owner)
            .map(|s| s.share)
            .collect()
    }

    /// Tries to rebuild `owner`'s self-mask seed from the shares received.
    ///
    /// # Errors
    /// [`SecAggError::ReconstructionFailed`] with fewer than t shares.
    pub fn rebuild_self_mask_seed(&self, owner: u32) -> Result<[u8; 32], SecAggError> {
        let shares = self.self_mask_shares(owner);
        let refs: Vec<&Share> = shares.iter().collect();
        crypto::combine(&refs, self.params.threshold())
            .map(|secret| *secret)
            .map_err(|reason| SecAggError::ReconstructionFailed {
                owner,
                secret: "self-mask seed",
                reason,
            })
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
