//! The member's side: [`Client`] → [`ClientAdvertised`] → [`ClientShared`]
//! → [`ClientMasked`] → [`ClientChecked`] → an [`UnmaskResponse`]. Each step consumes its state,
//! so no step can run twice with the same secrets.

use std::collections::{BTreeMap, BTreeSet};

use ring::signature::Ed25519KeyPair;
use zeroize::Zeroizing;

use super::crypto::{self, Share};
use super::error::{SecAggError, Stage};
use super::fixed_point::EncodedInput;
use super::messages::{
    AdvertiseKeys, ConsistencyRequest, ConsistencySignature, KeyList, MaskedInput, RevealedShare,
    RoutedShares, SealedShare, ShareKeys, UnmaskRequest, UnmaskResponse,
};
use super::params::SecAggParams;

/// A member at the start of a round, holding its two fresh X25519 key pairs.
pub struct Client {
    params: SecAggParams,
    id: u32,
    cipher_secret: Zeroizing<[u8; 32]>,
    cipher_public: [u8; 32],
    mask_secret: Zeroizing<[u8; 32]>,
    mask_public: [u8; 32],
}

/// A member that has advertised its keys and waits for the key list.
pub struct ClientAdvertised {
    client: Client,
}

/// The public keys of another member, from the key list.
#[derive(Clone, Copy)]
struct PeerKeys {
    cipher: [u8; 32],
    mask: [u8; 32],
}

/// A member that has sent its encrypted shares and waits for the shares
/// routed to it.
pub struct ClientShared {
    params: SecAggParams,
    id: u32,
    /// The key agreed with each peer of U1 for sealing shares, kept from
    /// sealing this member's shares to open theirs (the agreement is the
    /// same both ways).
    cipher_keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
    mask_secret: Zeroizing<[u8; 32]>,
    self_seed: Zeroizing<[u8; 32]>,
    /// U1 without this member.
    peers: BTreeMap<u32, PeerKeys>,
    /// This member's own shares of its mask key and self-mask seed.
    own_shares: (Zeroizing<Share>, Zeroizing<Share>),
}

/// The shares of one member's two secrets that this member holds.
struct HeldShares {
    mask_key: Zeroizing<Share>,
    self_mask: Zeroizing<Share>,
}

/// A member that has sent its masked input and waits for the survivor set
/// to sign.
pub struct ClientMasked {
    params: SecAggParams,
    id: u32,
    /// U2 as this member saw it (itself included) → the shares it holds of
    /// them.
    held: BTreeMap<u32, HeldShares>,
    #[cfg(any(test, feature = "inspect"))]
    self_mask: Vec<u64>,
}

/// A member that has signed one survivor set and waits for the unmasking
/// request, which must carry that set and t signatures on it.
pub struct ClientChecked {
    params: SecAggParams,
    id: u32,
    held: BTreeMap<u32, HeldShares>,
    /// The U3 this member signed.
    survivors: BTreeSet<u32>,
    #[cfg(any(test, feature = "inspect"))]
    self_mask: Vec<u64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Member `id` of the round set by `params`, with fresh key pairs c (share encryption)
    /// and s (mask agreement).
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`] if `id` is not on the roster;
    /// [`SecAggError::Crypto`] if the system's random source fails.
    pub fn new(params: SecAggParams, id: u32) -> Result<Self, SecAggError> {
        params.check_id(Stage::AdvertiseKeys, "own id", id)?;
        let (cipher_secret, cipher_public) = crypto::x25519_key_pair()?;
        let (mask_secret, mask_public) = crypto::x25519_key_pair()?;
        Ok(Self {
            params,
            id,
            cipher_secret,
            cipher_public,
            mask_secret,
            mask_public,
        })
    }

    /// This member's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Round 0: the two public keys, signed with the member's roster key
    /// (whose public half must be this member's `verify_key` in the
    /// round's parameters, or every other member will refuse the keys).
    pub fn advertise_keys(self, signing_key: &Ed25519KeyPair) -> (ClientAdvertised, AdvertiseKeys) {
        let transcript = crypto::advertised_transcript(
            &self.params,
            self.id,
            &self.cipher_public,
            &self.mask_public,
        );
        let message = AdvertiseKeys {
            sender: self.id,
            cipher_key: self.cipher_public,
            mask_key: self.mask_public,
            signature: crypto::sign(signing_key, &transcript),
        };
        (ClientAdvertised { client: self }, message)
    }
}

impl ClientAdvertised {
    /// Round 1: checks every key in `keys` against its member's roster key,
    /// splits the self-mask seed b_u and the mask secret key s_sk_u into
    /// t-of-n Shamir shares, and encrypts each other member's pair of shares
    /// to it.
    ///
    /// # Errors
    /// [`SecAggError::UnknownMember`], [`SecAggError::Duplicate`],
    /// [`SecAggError::BadSignature`] for keys not signed by their member,
    /// [`SecAggError::OwnKeysReplaced`] if this member's own entry differs
    /// from what it advertised, [`SecAggError::UnexpectedMember`] if it is
    /// missing or two members advertise the same key,
    /// [`SecAggError::WeakKey`] for a low-order key, and
    /// [`SecAggError::TooFewMembers`] below the threshold.
    pub fn share_keys(self, keys: &KeyList) -> Result<(ClientShared, ShareKeys), SecAggError> {
        let Client {
            params,
            id,
            cipher_secret,
            cipher_public,
            mask_secret,
            mask_public,
        } = self.client;
        let stage = Stage::ShareKeys;
        let mut peers = BTreeMap::new();
        let mut seen_keys = BTreeMap::new();
        let mut saw_self = false;
        for entry in &keys.keys {
            let member = entry.sender;
            params.check_id(stage, "key list entry", member)?;
            if member == id {
                if saw_self {
                    return Err(SecAggError::Duplicate {
                        stage,
                        member,
                        what: "the key list",
                    });
                }
                if entry.cipher_key != cipher_public || entry.mask_key != mask_public {
                    return Err(SecAggError::OwnKeysReplaced { member });
                }
                saw_self = true;
            } else if peers.contains_key(&member) {
                return Err(SecAggError::Duplicate {
                    stage,
                    member,
                    what: "the key list",
                });
            }
            check_signature(&params, entry)?;
            for key in [entry.cipher_key, entry.mask_key] {
                if let Some(other) = seen_keys.insert(key, member) {
                    return Err(SecAggError::UnexpectedMember {
                        stage,
                        member,
                        reason: format!("it advertises the same public key as member {other}"),
                    });
                }
            }
            if member != id {
                peers.insert(
                    member,
                    PeerKeys {
                        cipher: entry.cipher_key,
                        mask: entry.mask_key,
                    },
                );
            }
        }
        if !saw_self {
            return Err(SecAggError::UnexpectedMember {
                stage,
                member: id,
                reason: "the key list leaves out this member's own keys".into(),
            });
        }
        check_quorum(stage, peers.len() + 1, params.threshold())?;

        let self_seed = crypto::random_key("drawing the self-mask seed")?;
        let n = params.members();
        let mask_key_shares = crypto::split(&mask_secret, params.threshold(), n)?;
        let self_mask_shares = crypto::split(&self_seed, params.threshold(), n)?;
        let mut sealed = Vec::with_capacity(peers.len());
        let mut cipher_keys = BTreeMap::new();
        for (&peer, keys) in &peers {
            let agreed =
                crypto::agree(&cipher_secret, &keys.cipher).ok_or(SecAggError::WeakKey {
                    stage,
                    member: peer,
                })?;
            let ciphertext = crypto::seal_shares(
                &params,
                &agreed,
                id,
                peer,
                share_at(&mask_key_shares, peer)?,
                share_at(&self_mask_shares, peer)?,
            )?;
            sealed.push(SealedShare {
                recipient: peer,
                ciphertext,
            });
            cipher_keys.insert(peer, agreed);
        }
        let own_shares = (
            Zeroizing::new(*share_at(&mask_key_shares, id)?),
            Zeroizing::new(*share_at(&self_mask_shares, id)?),
        );
        let message = ShareKeys {
            sender: id,
            shares: sealed,
        };
        let state = ClientShared {
            params,
            id,
            cipher_keys,
            mask_secret,
            self_seed,
            peers,
            own_shares,
        };
        Ok((state, message))
    }
}

/// Member `member`'s share (evaluated at x = member + 1).
fn share_at(shares: &[Zeroizing<Share>], member: u32) -> Result<&Share, SecAggError> {
    shares
        .get(member as usize)
        .map(|share| &**share)
        .ok_or(SecAggError::Crypto {
            what: "fewer Shamir shares than members",
        })
}

/// Checks a member's advertised keys against its roster key.
pub(crate) fn check_signature(
    params: &SecAggParams,
    entry: &AdvertiseKeys,
) -> Result<(), SecAggError> {
    let member = entry.sender;
    let verify_key =
        params
            .member(member)
            .map(|m| m.verify_key)
            .ok_or(SecAggError::UnknownMember {
                stage: Stage::AdvertiseKeys,
                what: "sender",
                member,
                members: params.members(),
            })?;
    let transcript =
        crypto::advertised_transcript(params, member, &entry.cipher_key, &entry.mask_key);
    if crypto::verify(&verify_key, &transcript, &entry.signature) {
        Ok(())
    } else {
        Err(SecAggError::BadSignature { member })
    }
}

pub(crate) fn check_quorum(stage: Stage, got: usize, threshold: u32) -> Result<(), SecAggError> {
    if got < threshold as usize {
        Err(SecAggError::TooFewMembers {
            stage,
            got,
            threshold,
        })
    } else {
        Ok(())
    }
}

impl ClientShared {
    /// Round 2: decrypts the shares routed to this member (their senders are
    /// U2), then masks `input`:
    /// y_u = x_u + PRG(b_u) + Σ_{v∈U2, v>u} PRG(s_uv) − Σ_{v∈U2, v<u} PRG(s_uv).
    ///
    /// # Errors
    /// [`SecAggError::Misdelivered`], [`SecAggError::InputLength`],
    /// [`SecAggError::UnknownMember`] or [`SecAggError::UnexpectedMember`]
    /// for a sender outside U1, [`SecAggError::Duplicate`],
    /// [`SecAggError::WrongLength`], [`SecAggError::DecryptionFailed`] and
    /// [`SecAggError::WrongPair`] for a share not made by that sender for
    /// this member, [`SecAggError::BadShare`] for a share at the wrong
    /// point, [`SecAggError::WeakKey`] for a low-order mask key,
    /// [`SecAggError::TooFewMembers`] below the threshold.
    pub fn mask_input(
        self,
        routed: &RoutedShares,
        input: &EncodedInput,
    ) -> Result<(ClientMasked, MaskedInput), SecAggError> {
        let stage = Stage::ShareKeys;
        let id = self.id;
        let params = &self.params;
        if routed.recipient != id {
            return Err(SecAggError::Misdelivered {
                stage,
                member: id,
                intended: routed.recipient,
            });
        }
        if input.as_slice().len() != params.vector_len() {
            return Err(SecAggError::InputLength {
                expected: params.vector_len(),
                got: input.as_slice().len(),
            });
        }
        let mut held = BTreeMap::new();
        for entry in &routed.shares {
            let sender = entry.sender;
            params.check_id(stage, "routed share sender", sender)?;
            if !self.peers.contains_key(&sender) {
                return Err(SecAggError::UnexpectedMember {
                    stage,
                    member: sender,
                    reason: if sender == id {
                        "a share from this member to itself".into()
                    } else {
                        "not in the key list".into()
                    },
                });
            }
            if held.contains_key(&sender) {
                return Err(SecAggError::Duplicate {
                    stage,
                    member: sender,
                    what: "the routed shares",
                });
            }
            if entry.ciphertext.len() != crypto::SEALED_SHARE_LEN {
                return Err(SecAggError::WrongLength {
                    stage,
                    member: sender,
                    field: "ciphertext",
                    expected: format!("{} bytes", crypto::SEALED_SHARE_LEN),
                    got: format!("{} bytes", entry.ciphertext.len()),
                });
            }
            // Every member of U1 was agreed with when this member sealed
            // its own shares.
            let Some(agreed) = self.cipher_keys.get(&sender) else {
                return Err(SecAggError::UnexpectedMember {
                    stage,
                    member: sender,
                    reason: "no key was agreed with it".into(),
                });
            };
            let opened = crypto::open_shares(params, agreed, sender, id, &entry.ciphertext)?
                .ok_or(SecAggError::DecryptionFailed {
                    sender,
                    recipient: id,
                })?;
            if (opened.sender, opened.recipient) != (sender, id) {
                return Err(SecAggError::WrongPair {
                    sender,
                    recipient: id,
                    claimed_sender: opened.sender,
                    claimed_recipient: opened.recipient,
                });
            }
            for (share, secret) in [
                (&opened.mask_key_share, "mask key"),
                (&opened.self_mask_share, "self-mask seed"),
            ] {
                if u32::from(share[0]) != id + 1 {
                    return Err(SecAggError::BadShare {
                        stage,
                        member: sender,
                        owner: sender,
                        secret,
                        reason: format!("evaluated at x = {}, expected {}", share[0], id + 1),
                    });
                }
            }
            held.insert(
                sender,
                HeldShares {
                    mask_key: opened.mask_key_share,
                    self_mask: opened.self_mask_share,
                },
            );
        }
        check_quorum(Stage::ShareKeys, held.len() + 1, params.threshold())?;

        let mut values = input.as_slice().to_vec();
        let self_key = crypto::self_mask_key(params, &self.self_seed, id)?;
        crypto::apply_mask(&mut values, &self_key, false);
        for &peer in held.keys() {
            let peer_mask = self
                .peers
                .get(&peer)
                .map(|k| k.mask)
                .ok_or(SecAggError::Crypto {
                    what: "a routed sender without keys",
                })?;
            let agreed =
                crypto::agree(&self.mask_secret, &peer_mask).ok_or(SecAggError::WeakKey {
                    stage: Stage::MaskedInput,
                    member: peer,
                })?;
            let seed = crypto::pairwise_seed(params, &agreed, id, peer)?;
            crypto::apply_mask(&mut values, &seed, peer < id);
        }

        #[cfg(any(test, feature = "inspect"))]
        let self_mask = {
            let mut mask = vec![0u64; values.len()];
            crypto::apply_mask(&mut mask, &self_key, false);
            mask
        };
        let (own_mask_key, own_self_mask) = self.own_shares;
        held.insert(
            id,
            HeldShares {
                mask_key: own_mask_key,
                self_mask: own_self_mask,
            },
        );
        let state = ClientMasked {
            params: self.params.clone(),
            id,
            held,
            #[cfg(any(test, feature = "inspect"))]
            self_mask,
        };
        Ok((state, MaskedInput { sender: id, values }))
    }
}

/// Reads a list of member ids into a set: every id on the roster, none
/// twice.
fn id_set(
    params: &SecAggParams,
    stage: Stage,
    what: &'static str,
    ids: &[u32],
) -> Result<BTreeSet<u32>, SecAggError> {
    let mut set = BTreeSet::new();
    for &member in ids {
        params.check_id(stage, what, member)?;
        if !set.insert(member) {
            return Err(SecAggError::Duplicate {
                stage,
                member,
                what,
            });
        }
    }
    Ok(set)
}

impl ClientMasked {
    /// Round 3: signs the survivor set U3 the server names, if it is
    /// consistent with what this member saw: every survivor sent it shares
    /// (U3 ⊆ its view of U2), it is a survivor itself, and there are at
    /// least t. The signature also covers its own view of U2. A member signs
    /// one survivor set per round: the state is consumed.
    ///
    /// # Errors
    /// [`SecAggError::InconsistentRequest`] for a survivor whose shares did
    /// not reach this member, or a set without it;
    /// [`SecAggError::UnknownMember`], [`SecAggError::Duplicate`],
    /// [`SecAggError::TooFewMembers`] below the threshold.
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
                problem: "names as a survivor, though no shares reached this member from,",
            });
        }
        if !survivors.contains(&self.id) {
            return Err(SecAggError::InconsistentRequest {
                stage,
                member: self.id,
                problem: "is sent to, but leaves out,",
            });
        }
        check_quorum(stage, survivors.len(), self.params.threshold())?;
        let listed: Vec<u32> = survivors.iter().copied().collect();
        let seen: Vec<u32> = self.held.keys().copied().collect();
        let transcript = crypto::consistency_transcript(&self.params, self.id, &listed, &seen);
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

    /// The member's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Test-only: the self mask PRG(b_u) this member added to its input, so
    /// tests can check what a server could and could not remove.
    #[cfg(any(test, feature = "inspect"))]
    pub fn self_mask(&self) -> &[u64] {
        &self.self_mask
    }
}

/// Checks one survivor's signature on `survivors`.
pub(crate) fn check_consistency_signature(
    params: &SecAggParams,
    survivors: &BTreeSet<u32>,
    signature: &ConsistencySignature,
) -> Result<(), SecAggError> {
    let stage = Stage::ConsistencyCheck;
    let member = signature.sender;
    let verify_key =
        params
            .member(member)
            .map(|m| m.verify_key)
            .ok_or(SecAggError::UnknownMember {
                stage,
                what: "signer",
                member,
                members: params.members(),
            })?;
    let seen = id_set(params, stage, "a signer's view", &signature.seen)?;
    // An honest signer's view holds every survivor.
    if !survivors.is_subset(&seen) {
        return Err(SecAggError::BadConsistencySignature { member });
    }
    let listed: Vec<u32> = survivors.iter().copied().collect();
    let transcript = crypto::consistency_transcript(params, member, &listed, &signature.seen);
    if crypto::verify(&verify_key, &transcript, &signature.signature) {
        Ok(())
    } else {
        Err(SecAggError::BadConsistencySignature { member })
    }
}

impl ClientChecked {
    /// Round 4: for every survivor, this member's share of its self-mask
    /// seed; for every member whose shares reached it but who is not a
    /// survivor, its share of the mask secret key. Answered only for the
    /// survivor set this member signed, and only with at least t valid
    /// signatures of distinct survivors on that same set: a server that
    /// showed members different sets cannot gather t signatures on two of
    /// them (t is more than half the roster, and each member signs once),
    /// so no member is ever both a survivor to some and dropped to others.
    ///
    /// # Errors
    /// [`SecAggError::InconsistentRequest`] for another survivor set than
    /// the one signed; [`SecAggError::TooFewSignatures`] with fewer than t
    /// valid signatures on it; [`SecAggError::UnknownMember`],
    /// [`SecAggError::Duplicate`].
    pub fn unmask(self, request: &UnmaskRequest) -> Result<UnmaskResponse, SecAggError> {
        let stage = Stage::Unmasking;
        let survivors = id_set(&self.params, stage, "the survivor set", &request.survivors)?;
        if survivors != self.survivors {
            let member = survivors
                .symmetric_difference(&self.survivors)
                .next()
                .copied()
                .unwrap_or(self.id);
            return Err(SecAggError::InconsistentRequest {
                stage,
                member,
                problem: "differs from the survivor set this member signed at",
            });
        }
        let mut signers = BTreeSet::new();
        for signature in &request.signatures {
            if !survivors.contains(&signature.sender) || signers.contains(&signature.sender) {
                continue;
            }
            if check_consistency_signature(&self.params, &survivors, signature).is_ok() {
                signers.insert(signature.sender);
            }
        }
        if signers.len() < self.params.threshold() as usize {
            return Err(SecAggError::TooFewSignatures {
                got: signers.len(),
                threshold: self.params.threshold(),
            });
        }
        let dropped: BTreeSet<u32> = self
            .held
            .keys()
            .filter(|m| !survivors.contains(m))
            .copied()
            .collect();
        let reveal = |members: &BTreeSet<u32>, pick: fn(&HeldShares) -> &Share| {
            members
                .iter()
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
            self_mask_shares: reveal(&survivors, |h| &h.self_mask),
            mask_key_shares: reveal(&dropped, |h| &h.mask_key),
        })
    }

    /// The member's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Test-only: the self mask PRG(b_u) this member added to its input.
    #[cfg(any(test, feature = "inspect"))]
    pub fn self_mask(&self) -> &[u64] {
        &self.self_mask
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::KeyPair;

    use super::*;
    use crate::secagg::{FixedPoint, Member, SecAggConfig};

    fn params(n: u32) -> (SecAggParams, Vec<Ed25519KeyPair>) {
        let signing: Vec<_> = (0..n)
            .map(|_| {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
                Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap()
            })
            .collect();
        let params = SecAggParams::new(SecAggConfig {
            task: "t".into(),
            round: 0,
            threshold: n / 2 + 1,
            members: signing
                .iter()
                .enumerate()
                .map(|(i, k)| Member {
                    name: format!("m{i}"),
                    verify_key: k.public_key().as_ref().try_into().unwrap(),
                })
                .collect(),
            vector_len: 3,
            fixed_point: FixedPoint::default(),
        })
        .unwrap();
        (params, signing)
    }

    /// A member's own, validly signed, advertisement of chosen keys.
    fn signed(
        params: &SecAggParams,
        key: &Ed25519KeyPair,
        id: u32,
        cipher: [u8; 32],
        mask: [u8; 32],
    ) -> AdvertiseKeys {
        let transcript = crypto::advertised_transcript(params, id, &cipher, &mask);
        AdvertiseKeys {
            sender: id,
            cipher_key: cipher,
            mask_key: mask,
            signature: crypto::sign(key, &transcript),
        }
    }

    #[test]
    fn low_order_keys_from_a_member_are_refused() {
        let (params, signing) = params(3);
        let (client, own) = Client::new(params.clone(), 0)
            .unwrap()
            .advertise_keys(&signing[0]);
        let (_, good) = Client::new(params.clone(), 1)
            .unwrap()
            .advertise_keys(&signing[1]);
        let weak = signed(
            &params,
            &signing[2],
            2,
            [0; 32],
            good.mask_key.map(|b| b ^ 1),
        );
        let list = KeyList {
            keys: vec![own, good, weak],
        };
        let err = client.share_keys(&list).map(|_| ()).unwrap_err();
        assert!(
            matches!(
                err,
                SecAggError::WeakKey {
                    stage: Stage::ShareKeys,
                    member: 2
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn two_members_with_one_key_are_refused() {
        let (params, signing) = params(3);
        let (client, own) = Client::new(params.clone(), 0)
            .unwrap()
            .advertise_keys(&signing[0]);
        let (_, good) = Client::new(params.clone(), 1)
            .unwrap()
            .advertise_keys(&signing[1]);
        // Member 2 replays member 1's cipher key under its own signature.
        let copy = signed(&params, &signing[2], 2, good.cipher_key, [9; 32]);
        let list = KeyList {
            keys: vec![own, good, copy],
        };
        let err = client.share_keys(&list).map(|_| ()).unwrap_err();
        assert!(
            err.to_string().contains("same public key as member 1"),
            "{err}"
        );
    }
}
