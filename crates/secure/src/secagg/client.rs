//! The member's side up to its masked input: [`Client`] →
//! [`ClientAdvertised`] → [`ClientShared`] → [`ClientMasked`]; the
//! consistency check and unmasking ([`ClientChecked`](super::ClientChecked))
//! are in `consistency`. Each step consumes its state, so no step can run
//! twice with the same secrets.

use std::collections::BTreeMap;

use ring::signature::Ed25519KeyPair;
use zeroize::Zeroizing;

use super::crypto::{self, Secret, Share};
use super::error::{SecAggError, Stage};
use super::fixed_point::EncodedInput;
use super::messages::{
    AdvertiseKeys, KeyList, MaskedInput, RoutedShare, RoutedShares, SealedShare, ShareCommitments,
    ShareKeys,
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
pub(crate) struct HeldShares {
    pub(crate) mask_key: Zeroizing<Share>,
    pub(crate) self_mask: Zeroizing<Share>,
}

/// A member that has sent its masked input and waits for the consistency
/// check.
pub struct ClientMasked {
    pub(crate) params: SecAggParams,
    pub(crate) id: u32,
    /// This member's view of U2 (itself included) → the shares it holds of
    /// them: the members it masked with.
    pub(crate) held: BTreeMap<u32, HeldShares>,
    /// The senders whose routed shares were refused, and why.
    pub(crate) complaints: BTreeMap<u32, SecAggError>,
    #[cfg(any(test, feature = "inspect"))]
    pub(crate) self_mask: Vec<u64>,
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
            let (mask_key_share, self_mask_share) = (
                share_at(&mask_key_shares, peer)?,
                share_at(&self_mask_shares, peer)?,
            );
            let ciphertext =
                crypto::seal_shares(&params, &agreed, id, peer, mask_key_share, self_mask_share)?;
            sealed.push(SealedShare {
                recipient: peer,
                ciphertext,
                commitments: commit(&params, id, peer, mask_key_share, self_mask_share),
            });
            cipher_keys.insert(peer, agreed);
        }
        let own_shares = (
            Zeroizing::new(*share_at(&mask_key_shares, id)?),
            Zeroizing::new(*share_at(&self_mask_shares, id)?),
        );
        let message = ShareKeys {
            sender: id,
            own: commit(&params, id, id, &own_shares.0, &own_shares.1),
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

/// The commitments to the pair of shares of `owner`'s secrets that
/// `holder` holds.
pub(crate) fn commit(
    params: &SecAggParams,
    owner: u32,
    holder: u32,
    mask_key: &Share,
    self_mask: &Share,
) -> ShareCommitments {
    ShareCommitments {
        mask_key: crypto::share_commitment(params, owner, holder, Secret::MaskKey, mask_key),
        self_mask: crypto::share_commitment(params, owner, holder, Secret::SelfMask, self_mask),
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
    /// Round 2: opens the shares routed to this member and masks `input`
    /// with the members whose shares check out, its view of U2:
    /// y_u = x_u + PRG(b_u) + Σ_{v∈U2, v>u} PRG(s_uv) − Σ_{v∈U2, v<u} PRG(s_uv).
    ///
    /// A share that does not decrypt, names another pair, sits at the wrong
    /// point or does not match the commitments routed with it is not an
    /// error: its sender is left out of the view (no mask with it, no share
    /// of it kept) and named in the message's `complaints`, so the server
    /// can leave that sender out of the sum.
    ///
    /// # Errors
    /// [`SecAggError::Misdelivered`], [`SecAggError::InputLength`],
    /// [`SecAggError::UnknownMember`] or [`SecAggError::UnexpectedMember`]
    /// for a sender outside U1, [`SecAggError::Duplicate`],
    /// [`SecAggError::WeakKey`] for a low-order mask key, and
    /// [`SecAggError::TooFewMembers`] when the view (complaints left out)
    /// is below the threshold.
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
        let mut complaints = BTreeMap::new();
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
            if held.contains_key(&sender) || complaints.contains_key(&sender) {
                return Err(SecAggError::Duplicate {
                    stage,
                    member: sender,
                    what: "the routed shares",
                });
            }
            match self.open(entry) {
                Ok(shares) => {
                    held.insert(sender, shares);
                }
                Err(refused) => {
                    complaints.insert(sender, refused);
                }
            }
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
        let message = MaskedInput {
            sender: id,
            values,
            complaints: complaints.keys().copied().collect(),
        };
        let state = ClientMasked {
            params: self.params,
            id,
            held,
            complaints,
            #[cfg(any(test, feature = "inspect"))]
            self_mask,
        };
        Ok((state, message))
    }

    /// Opens one routed share pair and checks it: size, authentication,
    /// the pair named inside, the evaluation point and the commitments.
    fn open(&self, entry: &RoutedShare) -> Result<HeldShares, SecAggError> {
        let stage = Stage::ShareKeys;
        let (id, sender, params) = (self.id, entry.sender, &self.params);
        if entry.ciphertext.len() != crypto::SEALED_SHARE_LEN {
            return Err(SecAggError::WrongLength {
                stage,
                member: sender,
                field: "ciphertext",
                expected: format!("{} bytes", crypto::SEALED_SHARE_LEN),
                got: format!("{} bytes", entry.ciphertext.len()),
            });
        }
        // Every member of U1 was agreed with when this member sealed its
        // own shares.
        let agreed =
            self.cipher_keys
                .get(&sender)
                .ok_or_else(|| SecAggError::UnexpectedMember {
                    stage,
                    member: sender,
                    reason: "no key was agreed with it".into(),
                })?;
        let opened = crypto::open_shares(params, agreed, sender, id, &entry.ciphertext)?.ok_or(
            SecAggError::DecryptionFailed {
                sender,
                recipient: id,
            },
        )?;
        if (opened.sender, opened.recipient) != (sender, id) {
            return Err(SecAggError::WrongPair {
                sender,
                recipient: id,
                claimed_sender: opened.sender,
                claimed_recipient: opened.recipient,
            });
        }
        for (share, secret) in [
            (&opened.mask_key_share, Secret::MaskKey),
            (&opened.self_mask_share, Secret::SelfMask),
        ] {
            if u32::from(share[0]) != id + 1 {
                return Err(SecAggError::BadShare {
                    stage,
                    member: sender,
                    owner: sender,
                    secret: secret.name(),
                    reason: format!("evaluated at x = {}, expected {}", share[0], id + 1),
                });
            }
        }
        let committed = commit(
            params,
            sender,
            id,
            &opened.mask_key_share,
            &opened.self_mask_share,
        );
        for (secret, found, routed) in [
            (
                Secret::MaskKey,
                committed.mask_key,
                entry.commitments.mask_key,
            ),
            (
                Secret::SelfMask,
                committed.self_mask,
                entry.commitments.self_mask,
            ),
        ] {
            if found != routed {
                return Err(SecAggError::CommitmentMismatch {
                    stage,
                    owner: sender,
                    holder: id,
                    secret: secret.name(),
                });
            }
        }
        Ok(HeldShares {
            mask_key: opened.mask_key_share,
            self_mask: opened.self_mask_share,
        })
    }
}

impl ClientMasked {
    /// The member's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The senders whose routed shares this member refused, each with the
    /// reason; they are the `complaints` of its masked input.
    pub fn complaints(&self) -> &BTreeMap<u32, SecAggError> {
        &self.complaints
    }

    /// Test-only: the self mask PRG(b_u) this member added to its input, so
    /// tests can check what a server could and could not remove.
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
