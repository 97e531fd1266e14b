//! The member's side of the last two rounds: [`ClientMasked::check`] signs
//! the survivor set U3 the server names, and [`ClientChecked::unmask`]
//! reveals shares only for that set, only once at least t survivors have
//! signed it.
//!
//! This is what stops a server from showing members different survivor
//! sets (the consistency check of Bonawitz et al., full version, §6): an
//! honest member signs one set per session, t > n/2, so at most one set can
//! gather t signatures from its own members, and every honest member that
//! reveals anything reveals it for that set. For any member v, honest
//! members then reveal shares of b_v (v ∈ U3) or of s_sk_v (v ∉ U3), never
//! both. The dropped set is never taken from the server: each member
//! computes it from its own view of U2.

use std::collections::{BTreeMap, BTreeSet};

use ring::signature::Ed25519KeyPair;

use super::client::{ClientMasked, HeldShares, check_quorum};
use super::crypto::{self, Share};
use super::error::{SecAggError, Stage};
use super::messages::{
    ConsistencyRequest, ConsistencySignature, RevealedShare, UnmaskRequest, UnmaskResponse,
};
use super::params::SecAggParams;

/// A member that has signed one survivor set and waits for the unmasking
/// request of that set.
pub struct ClientChecked {
    params: SecAggParams,
    id: u32,
    /// Its view of U2 → the shares it holds.
    held: BTreeMap<u32, HeldShares>,
    /// U3 as it signed it.
    survivors: BTreeSet<u32>,
    #[cfg(any(test, feature = "inspect"))]
    self_mask: Vec<u64>,
}

/// The ids of a request's list, checked: on the roster, no repeats.
fn id_set(
    params: &SecAggParams,
    stage: Stage,
    what: &'static str,
    ids: &[u32],
) -> Result<BTreeSet<u32>, SecAggError> {
    let mut out = BTreeSet::new();
    for &member in ids {
        params.check_id(stage, what, member)?;
        if !out.insert(member) {
            return Err(SecAggError::Duplicate {
                stage,
                member,
                what,
            });
        }
    }
    Ok(out)
}

impl ClientMasked {
    /// Round 3: checks the survivor set U3 and signs it, with this member's
    /// own view of U2, using its roster key.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`] or [`SecAggError::Duplicate`] in the
    /// list; [`SecAggError::InconsistentRequest`] if it names a member whose
    /// shares never reached this member (or were refused), or leaves this
    /// member out; [`SecAggError::TooFewMembers`] below the threshold.
    pub fn check(
        self,
        request: &ConsistencyRequest,
        signing_key: &Ed25519KeyPair,
    ) -> Result<(ClientChecked, ConsistencySignature), SecAggError> {
        let stage = Stage::ConsistencyCheck;
        let survivors = id_set(&self.params, stage, "the survivor set", &request.survivors)?;
        if let Some(&member) = survivors.iter().find(|m| !self.held.contains_key(m)) {
            return Err(SecAggError::InconsistentRequest {
                stage,
                member,
                problem: "lists as a survivor, but this member holds no shares of,",
            });
        }
        if !survivors.contains(&self.id) {
            return Err(SecAggError::InconsistentRequest {
                stage,
                member: self.id,
                problem: "is sent to, but leaves out of the survivors,",
            });
        }
        check_quorum(stage, survivors.len(), self.params.threshold())?;
        let listed: Vec<u32> = survivors.iter().copied().collect();
        let seen: Vec<u32> = self.held.keys().copied().collect();
        let transcript = crypto::consistency_transcript(&self.params, &listed, self.id, &seen);
        let message = ConsistencySignature {
            sender: self.id,
            seen,
            signature: crypto::sign(signing_key, &transcript),
        };
        let state = ClientChecked {
            params: self.params,
            id: self.id,
            held: self.held,
            survivors,
            #[cfg(any(test, feature = "inspect"))]
            self_mask: self.self_mask,
        };
        Ok((state, message))
    }
}

/// Whether `signature` is a valid signature by a member of `survivors` on
/// exactly that set, from a view that holds the whole set.
pub(crate) fn signs_survivors(
    params: &SecAggParams,
    survivors: &BTreeSet<u32>,
    listed: &[u32],
    signature: &ConsistencySignature,
) -> bool {
    let sender = signature.sender;
    let Some(member) = params.member(sender) else {
        return false;
    };
    // An honest signer only signs a set inside its own view.
    let seen: BTreeSet<u32> = signature.seen.iter().copied().collect();
    if !survivors.contains(&sender)
        || seen.len() != signature.seen.len()
        || !signature.seen.is_sorted()
        || !survivors.is_subset(&seen)
    {
        return false;
    }
    let transcript = crypto::consistency_transcript(params, listed, sender, &signature.seen);
    crypto::verify(&member.verify_key, &transcript, &signature.signature)
}

impl ClientChecked {
    /// Round 4: if the request names the survivor set this member signed
    /// and carries at least t valid signatures on it by distinct survivors,
    /// reveals this member's shares of b_v for every survivor v and of
    /// s_sk_v for every other member v of its own view of U2.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`] or [`SecAggError::Duplicate`] in the
    /// survivor list; [`SecAggError::InconsistentRequest`] for another set
    /// than the one signed; [`SecAggError::TooFewSignatures`] with fewer
    /// than t valid signatures on it.
    pub fn unmask(self, request: &UnmaskRequest) -> Result<UnmaskResponse, SecAggError> {
        let stage = Stage::Unmasking;
        let survivors = id_set(&self.params, stage, "the survivor set", &request.survivors)?;
        if let Some(&member) = survivors.symmetric_difference(&self.survivors).next() {
            return Err(SecAggError::InconsistentRequest {
                stage,
                member,
                problem: "names another survivor set than the one this member signed, at",
            });
        }
        let listed: Vec<u32> = survivors.iter().copied().collect();
        let mut signers = BTreeSet::new();
        for signature in &request.signatures {
            // At most one check per survivor, however long the list.
            if !signers.contains(&signature.sender)
                && signs_survivors(&self.params, &survivors, &listed, signature)
            {
                signers.insert(signature.sender);
            }
        }
        let threshold = self.params.threshold();
        if signers.len() < threshold as usize {
            return Err(SecAggError::TooFewSignatures {
                got: signers.len(),
                threshold,
            });
        }
        let reveal = |owners: &mut dyn Iterator<Item = &u32>, pick: fn(&HeldShares) -> &Share| {
            owners
                .filter_map(|owner| {
                    self.held.get(owner).map(|held| RevealedShare {
                        owner: *owner,
                        share: *pick(held),
                    })
                })
                .collect::<Vec<_>>()
        };
        Ok(UnmaskResponse {
            sender: self.id,
            self_mask_shares: reveal(&mut survivors.iter(), |h| &h.self_mask),
            mask_key_shares: reveal(
                &mut self.held.keys().filter(|m| !survivors.contains(m)),
                |h| &h.mask_key,
            ),
        })
    }

    /// The member's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The survivor set this member signed.
    pub fn survivors(&self) -> impl Iterator<Item = u32> + '_ {
        self.survivors.iter().copied()
    }

    /// Test-only: the self mask PRG(b_u) this member added to its input.
    #[cfg(any(test, feature = "inspect"))]
    pub fn self_mask(&self) -> &[u64] {
        &self.self_mask
    }
}
