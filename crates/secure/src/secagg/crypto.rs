//! The primitives, each from a kept crate: randomness, Ed25519 and HKDF and
//! AES-256-GCM from `ring`; X25519 with reusable secrets from
//! `x25519-dalek` (ring's X25519 keys are single-use, and each of ours agrees
//! with every peer); the mask stream from ChaCha20 (`chacha20`); Shamir
//! sharing over GF(2^8) from `blahaj`.
//!
//! Every derived key names the protocol, the purpose, the parameter digest
//! (which covers task and round) and the member ids, so no key can stand in
//! for another.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::{Rng, SeedableRng};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, Ed25519KeyPair, UnparsedPublicKey};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::error::SecAggError;
use super::params::{PROTOCOL, SecAggParams};

/// A Shamir share as bytes: the evaluation point x (member id + 1), then the
/// 32 bytes of the polynomial values at x.
pub(crate) const SHARE_LEN: usize = 33;
/// The plaintext of an encrypted share pair: sender id, recipient id, the
/// share of the mask key, the share of the self-mask seed.
const PLAIN_LEN: usize = 4 + 4 + SHARE_LEN + SHARE_LEN;
/// An encrypted share pair: plaintext plus the AES-GCM tag.
pub const SEALED_SHARE_LEN: usize = PLAIN_LEN + 16;

/// One Shamir share of a 32-byte secret.
pub(crate) type Share = [u8; SHARE_LEN];

/// 32 bytes from the operating system's CSPRNG.
pub(crate) fn random_key(what: &'static str) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
    let mut out = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(out.as_mut())
        .map_err(|_| SecAggError::Crypto { what })?;
    Ok(out)
}

/// A fresh X25519 key pair: the secret as raw bytes (so it can be
/// Shamir-shared) and its public key.
pub(crate) fn x25519_key_pair() -> Result<(Zeroizing<[u8; 32]>, [u8; 32]), SecAggError> {
    let secret = random_key("drawing an X25519 secret key")?;
    let public = PublicKey::from(&StaticSecret::from(*secret)).to_bytes();
    Ok((secret, public))
}

/// The public key of a raw X25519 secret.
pub(crate) fn x25519_public(secret: &[u8; 32]) -> [u8; 32] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

/// X25519 of our secret and a peer's public key; `None` when the peer's key
/// is a low-order point (the result would not depend on our secret).
pub(crate) fn agree(secret: &[u8; 32], peer: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
    let shared = StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*peer));
    shared
        .was_contributory()
        .then(|| Zeroizing::new(shared.to_bytes()))
}

/// The bytes a member signs to advertise its two public keys.
pub(crate) fn advertised_transcript(
    params: &SecAggParams,
    member: u32,
    cipher_public: &[u8; 32],
    mask_public: &[u8; 32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROTOCOL.len() + 16 + 32 + 4 + 64);
    out.extend_from_slice(PROTOCOL);
    out.extend_from_slice(b"/advertise-keys/");
    out.extend_from_slice(params.digest());
    out.extend_from_slice(&member.to_be_bytes());
    out.extend_from_slice(cipher_public);
    out.extend_from_slice(mask_public);
    out
}

/// Appends a length-prefixed list of member ids.
fn push_ids(out: &mut Vec<u8>, ids: &[u32]) {
    out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_be_bytes());
    }
}

/// The bytes a member signs in the consistency check: the survivor set U3
/// it was shown and its own view of U2 (itself and the members whose shares
/// reached it), both sorted, so a signature pins the routing of shares as
/// well as the survivor set.
pub(crate) fn consistency_transcript(
    params: &SecAggParams,
    survivors: &[u32],
    member: u32,
    seen: &[u32],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROTOCOL.len() + 64 + 4 * (survivors.len() + seen.len()));
    out.extend_from_slice(PROTOCOL);
    out.extend_from_slice(b"/consistency/");
    out.extend_from_slice(params.digest());
    push_ids(&mut out, survivors);
    out.extend_from_slice(&member.to_be_bytes());
    push_ids(&mut out, seen);
    out
}

/// Which of a member's two secrets a share belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Secret {
    /// s_sk, the mask secret key.
    MaskKey,
    /// b, the self-mask seed.
    SelfMask,
}

impl Secret {
    /// The secret's name in messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Secret::MaskKey => "mask key",
            Secret::SelfMask => "self-mask seed",
        }
    }
}

/// SHA-256 commitment to the share of `owner`'s `secret` held by `holder`.
///
/// It binds the share to its owner, its holder and its secret, so a holder
/// cannot later reveal another share. A single Shamir share of a fresh
/// random secret is 32 uniformly random bytes to anyone holding fewer than
/// t shares, so the hash hides it (SHA-256 modelled as a random oracle).
pub(crate) fn share_commitment(
    params: &SecAggParams,
    owner: u32,
    holder: u32,
    secret: Secret,
    share: &Share,
) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(PROTOCOL);
    ctx.update(b"/share-commitment/");
    ctx.update(params.digest());
    ctx.update(&owner.to_be_bytes());
    ctx.update(&holder.to_be_bytes());
    ctx.update(match secret {
        Secret::MaskKey => b"mask-key",
        Secret::SelfMask => b"self-mask",
    });
    ctx.update(share);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Signs with the member's Ed25519 key.
pub(crate) fn sign(key: &Ed25519KeyPair, message: &[u8]) -> [u8; 64] {
    let mut out = [0u8; 64];
    out.copy_from_slice(key.sign(message).as_ref());
    out
}

/// Checks an Ed25519 signature against a raw 32-byte public key.
pub(crate) fn verify(public: &[u8; 32], message: &[u8], sig: &[u8; 64]) -> bool {
    UnparsedPublicKey::new(&signature::ED25519, public)
        .verify(message, sig)
        .is_ok()
}

/// HKDF-SHA256 output length `L` as a ring key type.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 (extract with the protocol label as salt, then expand with
/// `info`) to a 32-byte key.
fn derive(ikm: &[u8], info: &[&[u8]]) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, PROTOCOL).extract(ikm);
    let mut out = Zeroizing::new([0u8; 32]);
    prk.expand(info, Len(32))
        .and_then(|okm| okm.fill(out.as_mut()))
        .map_err(|_| SecAggError::Crypto {
            what: "deriving a key with HKDF",
        })?;
    Ok(out)
}

/// The mask-stream key s_uv that members `a` and `b` share, from their
/// agreed X25519 secret. Symmetric in `a` and `b`.
pub(crate) fn pairwise_seed(
    params: &SecAggParams,
    agreed: &[u8; 32],
    a: u32,
    b: u32,
) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
    let (low, high) = (a.min(b).to_be_bytes(), a.max(b).to_be_bytes());
    derive(agreed, &[b"pairwise-mask", params.digest(), &low, &high])
}

/// The mask-stream key of member `member`'s self mask, from its seed b_u.
pub(crate) fn self_mask_key(
    params: &SecAggParams,
    seed: &[u8; 32],
    member: u32,
) -> Result<Zeroizing<[u8; 32]>, SecAggError> {
    derive(
        seed,
        &[b"self-mask", params.digest(), &member.to_be_bytes()],
    )
}

/// The AES-256-GCM key for the one message `sender` encrypts to
/// `recipient`. Direction-specific, so each key seals exactly one message
/// and the all-zero nonce is never reused.
fn share_cipher(
    params: &SecAggParams,
    agreed: &[u8; 32],
    sender: u32,
    recipient: u32,
) -> Result<LessSafeKey, SecAggError> {
    let key = derive(
        agreed,
        &[
            b"share-encryption",
            params.digest(),
            &sender.to_be_bytes(),
            &recipient.to_be_bytes(),
        ],
    )?;
    let unbound =
        UnboundKey::new(&aead::AES_256_GCM, key.as_ref()).map_err(|_| SecAggError::Crypto {
            what: "making an AES-256-GCM key",
        })?;
    Ok(LessSafeKey::new(unbound))
}

fn share_aad(params: &SecAggParams, sender: u32, recipient: u32) -> Vec<u8> {
    let mut aad = params.digest().to_vec();
    aad.extend_from_slice(&sender.to_be_bytes());
    aad.extend_from_slice(&recipient.to_be_bytes());
    aad
}

/// Encrypts (sender, recipient, mask-key share, self-mask share).
pub(crate) fn seal_shares(
    params: &SecAggParams,
    agreed: &[u8; 32],
    sender: u32,
    recipient: u32,
    mask_key_share: &Share,
    self_mask_share: &Share,
) -> Result<Vec<u8>, SecAggError> {
    let key = share_cipher(params, agreed, sender, recipient)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(SEALED_SHARE_LEN));
    buf.extend_from_slice(&sender.to_be_bytes());
    buf.extend_from_slice(&recipient.to_be_bytes());
    buf.extend_from_slice(mask_key_share);
    buf.extend_from_slice(self_mask_share);
    let nonce = Nonce::assume_unique_for_key([0u8; 12]);
    let aad = share_aad(params, sender, recipient);
    let mut sealed = buf.to_vec();
    key.seal_in_place_append_tag(nonce, Aad::from(&aad), &mut sealed)
        .map_err(|_| SecAggError::Crypto {
            what: "encrypting a share",
        })?;
    Ok(sealed)
}

/// The decrypted content of a sealed share pair.
pub(crate) struct OpenedShares {
    pub(crate) sender: u32,
    pub(crate) recipient: u32,
    pub(crate) mask_key_share: Zeroizing<Share>,
    pub(crate) self_mask_share: Zeroizing<Share>,
}

/// Decrypts what `sender` sealed for `recipient`; `None` if it does not
/// authenticate under that pair's key.
pub(crate) fn open_shares(
    params: &SecAggParams,
    agreed: &[u8; 32],
    sender: u32,
    recipient: u32,
    sealed: &[u8],
) -> Result<Option<OpenedShares>, SecAggError> {
    let key = share_cipher(params, agreed, sender, recipient)?;
    let nonce = Nonce::assume_unique_for_key([0u8; 12]);
    let aad = share_aad(params, sender, recipient);
    let mut buf = Zeroizing::new(sealed.to_vec());
    let Ok(plain) = key.open_in_place(nonce, Aad::from(&aad), &mut buf) else {
        return Ok(None);
    };
    if plain.len() != PLAIN_LEN {
        return Ok(None);
    }
    let id =
        |at: usize| u32::from_be_bytes([plain[at], plain[at + 1], plain[at + 2], plain[at + 3]]);
    let mut mask_key_share = Zeroizing::new([0u8; SHARE_LEN]);
    mask_key_share.copy_from_slice(&plain[8..8 + SHARE_LEN]);
    let mut self_mask_share = Zeroizing::new([0u8; SHARE_LEN]);
    self_mask_share.copy_from_slice(&plain[8 + SHARE_LEN..]);
    Ok(Some(OpenedShares {
        sender: id(0),
        recipient: id(4),
        mask_key_share,
        self_mask_share,
    }))
}

/// Adds (`negate` false) or subtracts the ChaCha20 stream keyed by `key` to
/// `acc`, one little-endian `u64` per element, in Z_{2^64}.
pub(crate) fn apply_mask(acc: &mut [u64], key: &[u8; 32], negate: bool) {
    let mut stream = ChaCha20Rng::from_seed(*key);
    if negate {
        for value in acc.iter_mut() {
            *value = value.wrapping_sub(stream.next_u64());
        }
    } else {
        for value in acc.iter_mut() {
            *value = value.wrapping_add(stream.next_u64());
        }
    }
}

/// Splits a 32-byte secret into shares for members 0..`members` (member v's
/// share is evaluated at x = v + 1), any `threshold` of which rebuild it.
pub(crate) fn split(
    secret: &[u8; 32],
    threshold: u32,
    members: u32,
) -> Result<Vec<Zeroizing<Share>>, SecAggError> {
    let t = u8::try_from(threshold).map_err(|_| SecAggError::Crypto {
        what: "Shamir threshold above 255",
    })?;
    // The polynomial coefficients come from ChaCha20 keyed from the OS.
    let mut rng = ChaCha20Rng::from_seed(*random_key("seeding Shamir coefficients")?);
    blahaj::Sharks(t)
        .dealer_rng(secret, &mut rng)
        .take(members as usize)
        .map(|share| {
            let bytes = Zeroizing::new(Vec::from(&share));
            let mut out = Zeroizing::new([0u8; SHARE_LEN]);
            if bytes.len() != SHARE_LEN {
                return Err(SecAggError::Crypto {
                    what: "Shamir share of unexpected length",
                });
            }
            out.copy_from_slice(&bytes);
            Ok(out)
        })
        .collect()
}

/// Rebuilds a 32-byte secret from at least `threshold` shares with distinct
/// evaluation points (the caller guarantees distinctness).
pub(crate) fn combine(shares: &[&Share], threshold: u32) -> Result<Zeroizing<[u8; 32]>, String> {
    let t = u8::try_from(threshold).map_err(|_| "threshold above 255".to_string())?;
    if shares.len() < threshold as usize {
        return Err(format!(
            "{} shares, the threshold is {threshold}",
            shares.len()
        ));
    }
    let parsed = shares
        .iter()
        .map(|s| blahaj::Share::try_from(&s[..]).map_err(str::to_string))
        .collect::<Result<Vec<_>, _>>()?;
    let secret = Zeroizing::new(blahaj::Sharks(t).recover(&parsed).map_err(str::to_string)?);
    let mut out = Zeroizing::new([0u8; 32]);
    if secret.len() != out.len() {
        return Err(format!("rebuilt {} bytes, expected 32", secret.len()));
    }
    out.copy_from_slice(&secret);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_threshold_subset_rebuilds_fewer_do_not() {
        let secret = *random_key("test").unwrap();
        let shares = split(&secret, 3, 5).unwrap();
        for (i, share) in shares.iter().enumerate() {
            assert_eq!(usize::from(share[0]), i + 1, "member i's point is i + 1");
        }
        let pick = |ids: &[usize]| ids.iter().map(|&i| &*shares[i]).collect::<Vec<_>>();
        assert_eq!(*combine(&pick(&[0, 2, 4]), 3).unwrap(), secret);
        assert_eq!(*combine(&pick(&[4, 1, 3]), 3).unwrap(), secret);
        assert_eq!(*combine(&pick(&[0, 1, 2, 3, 4]), 3).unwrap(), secret);
        assert!(combine(&pick(&[0, 4]), 3).is_err());
        // Two shares interpolated as if the threshold were 2 give garbage.
        assert_ne!(*combine(&pick(&[0, 4]), 2).unwrap(), secret);
    }

    #[test]
    fn agreement_is_symmetric_and_refuses_low_order_points() {
        let (a, a_pub) = x25519_key_pair().unwrap();
        let (b, b_pub) = x25519_key_pair().unwrap();
        assert_eq!(*agree(&a, &b_pub).unwrap(), *agree(&b, &a_pub).unwrap());
        assert!(agree(&a, &[0u8; 32]).is_none());
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(agree(&a, &one).is_none());
    }

    #[test]
    fn masks_cancel_and_differ_by_key() {
        let key = *random_key("test").unwrap();
        let mut acc = vec![7u64; 100];
        apply_mask(&mut acc, &key, false);
        assert!(acc.iter().filter(|&&v| v == 7).count() < 2);
        apply_mask(&mut acc, &key, true);
        assert!(acc.iter().all(|&v| v == 7));
    }
}
