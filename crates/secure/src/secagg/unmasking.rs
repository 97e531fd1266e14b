//! The coordinator's last round: [`ServerUnmasking`] checks every revealed
//! share against the commitment its owner made for that holder, rebuilds
//! the secrets it needs, removes the masks and returns the [`Aggregate`].

use std::collections::{BTreeMap, BTreeSet};

use zeroize::Zeroizing;

use super::client::check_quorum;
use super::crypto::{self, Secret, Share};
use super::error::{SecAggError, Stage};
use super::fixed_point::FixedPoint;
use super::messages::{AdvertiseKeys, RevealedShare, UnmaskResponse};
use super::params::SecAggParams;
use super::server::{Commitments, Probe, observe};

#[cfg(any(test, feature = "inspect"))]
use super::inspect::{Observed, ServerKnowledge};

/// Round 4: collecting the shares that remove the masks.
pub struct ServerUnmasking {
    pub(super) params: SecAggParams,
    pub(super) keys: BTreeMap<u32, AdvertiseKeys>,
    pub(super) commitments: Commitments,
    /// U3.
    pub(super) survivors: BTreeSet<u32>,
    /// Each survivor's view of U2.
    pub(super) views: BTreeMap<u32, BTreeSet<u32>>,
    /// The survivors whose signature on U3 was accepted: only they answer.
    pub(super) signers: BTreeSet<u32>,
    pub(super) sum: Vec<u64>,
    pub(super) responses: BTreeMap<u32, UnmaskResponse>,
    pub(super) excluded: Vec<Excluded>,
    pub(super) probe: Probe,
}

/// A member left out of one step of a round, and why: a member others
/// refused shares from (its input is not in the sum), a refused signature
/// (not counted), or an unmasking response set aside for a share that does
/// not match its commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The member.
    pub member: u32,
    /// The step it was left out of.
    pub stage: Stage,
    /// Why, for people.
    pub reason: String,
}

/// The outcome of a round: the sum of the inputs of the members in
/// `contributors`, and nothing about any one of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// Σ x_u over the contributors, in Z_{2^64}.
    pub sum: Vec<u64>,
    /// U3: the members whose inputs are in the sum.
    pub contributors: Vec<u32>,
    excluded: Vec<Excluded>,
    fixed_point: FixedPoint,
}

impl Aggregate {
    /// The sum as `f64`, within
    /// [`FixedPoint::sum_error_bound`]`(contributors)` of the true sum.
    pub fn decode(&self) -> Vec<f64> {
        self.fixed_point.decode(&self.sum)
    }

    /// The members left out of a step for something they sent, each with
    /// the reason, in the order the server found them.
    pub fn excluded(&self) -> &[Excluded] {
        &self.excluded
    }
}

/// What the server holds after unmasking: the secrets it rebuilt.
pub(super) struct Rebuilt {
    /// Member of some survivor's view outside U3 → its mask secret key.
    pub(super) mask_keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
    /// Survivor → its self-mask seed.
    pub(super) self_seeds: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

impl ServerUnmasking {
    /// Takes one signer's shares: of the self-mask seed of every survivor
    /// and of the mask key of every other member of its view of U2, each
    /// matching the commitment its owner made for this holder. A response
    /// with a share that does not match is set aside, and its sender named
    /// in the round's [`excluded`](Aggregate::excluded) list.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`], [`SecAggError::UnexpectedMember`]
    /// (not a survivor that signed U3), [`SecAggError::Duplicate`],
    /// [`SecAggError::BadShare`] for a share not asked for, missing, or at
    /// the wrong point, and [`SecAggError::CommitmentMismatch`].
    pub fn receive(&mut self, message: UnmaskResponse) -> Result<(), SecAggError> {
        let stage = Stage::Unmasking;
        let sender = message.sender;
        self.params.check_id(stage, "sender", sender)?;
        if !self.signers.contains(&sender) {
            return Err(SecAggError::UnexpectedMember {
                stage,
                member: sender,
                reason: if self.survivors.contains(&sender) {
                    "its signature on the survivor set was not accepted".into()
                } else {
                    "its masked input is not in the sum".into()
                },
            });
        }
        if self.responses.contains_key(&sender) {
            return Err(SecAggError::Duplicate {
                stage,
                member: sender,
                what: "the messages received",
            });
        }
        let dropped: BTreeSet<u32> = self
            .views
            .get(&sender)
            .map(|view| view.difference(&self.survivors).copied().collect())
            .unwrap_or_default();
        let checked = self
            .check_revealed(
                sender,
                &message.self_mask_shares,
                &self.survivors,
                Secret::SelfMask,
            )
            .and_then(|()| {
                self.check_revealed(sender, &message.mask_key_shares, &dropped, Secret::MaskKey)
            });
        if let Err(error @ SecAggError::CommitmentMismatch { .. }) = &checked {
            self.excluded.push(Excluded {
                member: sender,
                stage,
                reason: format!("its unmasking response is set aside: {error}"),
            });
        }
        checked?;
        self.responses.insert(sender, message);
        Ok(())
    }

    /// Checks one list of revealed shares: exactly one per expected owner,
    /// each at the sender's evaluation point and matching its commitment.
    fn check_revealed(
        &self,
        sender: u32,
        shares: &[RevealedShare],
        expected: &BTreeSet<u32>,
        secret: Secret,
    ) -> Result<(), SecAggError> {
        let stage = Stage::Unmasking;
        let mut seen = BTreeSet::new();
        for share in shares {
            let bad = |reason: String| SecAggError::BadShare {
                stage,
                member: sender,
                owner: share.owner,
                secret: secret.name(),
                reason,
            };
            if !expected.contains(&share.owner) {
                return Err(bad("the request did not ask for this share".into()));
            }
            if !seen.insert(share.owner) {
                return Err(SecAggError::Duplicate {
                    stage,
                    member: share.owner,
                    what: "one response's shares",
                });
            }
            if u32::from(share.share[0]) != sender + 1 {
                return Err(bad(format!(
                    "evaluated at x = {}, expected {} (the sender's point)",
                    share.share[0],
                    sender + 1
                )));
            }
            let committed = self
                .commitments
                .get(&(share.owner, sender))
                .map(|c| match secret {
                    Secret::MaskKey => c.mask_key,
                    Secret::SelfMask => c.self_mask,
                });
            let found =
                crypto::share_commitment(&self.params, share.owner, sender, secret, &share.share);
            if committed != Some(found) {
                return Err(SecAggError::CommitmentMismatch {
                    stage,
                    owner: share.owner,
                    holder: sender,
                    secret: secret.name(),
                });
            }
        }
        if let Some(&missing) = expected.difference(&seen).next() {
            return Err(SecAggError::BadShare {
                stage,
                member: sender,
                owner: missing,
                secret: secret.name(),
                reason: "the share is missing".into(),
            });
        }
        Ok(())
    }

    /// Closes round 4: rebuilds the mask secret key of every member of a
    /// survivor's view outside U3 and each survivor's self-mask seed, each
    /// from t checked shares, removes every mask from the sum, and returns
    /// the sum of the survivors' inputs.
    ///
    /// # Errors
    /// [`SecAggError::TooFewMembers`] with fewer than t responses (the sum is
    /// then never computed); [`SecAggError::ReconstructionFailed`] with fewer
    /// than t checked shares of a secret, or if a rebuilt mask key does not
    /// match the public key its member advertised.
    pub fn finish(self) -> Result<Aggregate, SecAggError> {
        self.finish_rebuilt().map(|(aggregate, _)| aggregate)
    }

    fn rebuild(&self, owner: u32, secret: Secret) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
        let shares: Vec<&Share> = self
            .responses
            .values()
            .filter_map(|response| {
                let list = match secret {
                    Secret::MaskKey => &response.mask_key_shares,
                    Secret::SelfMask => &response.self_mask_shares,
                };
                list.iter().find(|s| s.owner == owner).map(|s| &s.share)
            })
            .take(self.params.threshold() as usize)
            .collect();
        crypto::combine(&shares, self.params.threshold()).map_err(|reason| {
            SecAggError::ReconstructionFailed {
                owner,
                secret: secret.name(),
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
        // Every member some survivor masked with that is not in the sum.
        let outside: BTreeSet<u32> = self
            .views
            .values()
            .flatten()
            .filter(|m| !self.survivors.contains(m))
            .copied()
            .collect();
        for &owner in &outside {
            let secret = self.rebuild(owner, Secret::MaskKey)?;
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
            let seed = self.rebuild(owner, Secret::SelfMask)?;
            rebuilt.self_seeds.insert(owner, seed);
        }

        let mut sum = std::mem::take(&mut self.sum);
        for (&dropped, secret) in &rebuilt.mask_keys {
            for (&survivor, view) in &self.views {
                if !view.contains(&dropped) {
                    continue;
                }
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
            excluded: std::mem::take(&mut self.excluded),
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
