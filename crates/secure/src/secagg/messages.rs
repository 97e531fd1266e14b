//! The messages of the five rounds, as plain data with `to_bytes` and
//! `from_bytes`. Decoding checks only the shape; what a message may say is
//! checked by the [`client`](super::client) or [`server`](super::server)
//! step that receives it.

use super::codec::{Reader, Writer};
use super::crypto::SHARE_LEN;
use super::error::SecAggError;

/// Round 0, member → server: the member's two X25519 public keys, signed
/// with its Ed25519 roster key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertiseKeys {
    /// The member.
    pub sender: u32,
    /// c_pk: the key other members encrypt its shares to.
    pub cipher_key: [u8; 32],
    /// s_pk: the key its pairwise masks are agreed with.
    pub mask_key: [u8; 32],
    /// Ed25519 over the protocol label, parameter digest, sender and both keys.
    pub signature: [u8; 64],
}

/// Round 0, server → every member that advertised: all advertised keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyList {
    /// One entry per member, as each advertised it.
    pub keys: Vec<AdvertiseKeys>,
}

/// SHA-256 commitments to one holder's two shares of one owner's secrets,
/// binding label, parameter digest, owner, holder, secret and share bytes.
/// The server checks every share revealed at unmasking against them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareCommitments {
    /// To the share of the mask secret key s_sk.
    pub mask_key: [u8; 32],
    /// To the share of the self-mask seed b.
    pub self_mask: [u8; 32],
}

/// One encrypted share pair, sender → recipient, with the commitments to
/// both shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedShare {
    /// The member it is for.
    pub recipient: u32,
    /// AES-256-GCM ciphertext and tag.
    pub ciphertext: Vec<u8>,
    /// The commitments to the two shares inside.
    pub commitments: ShareCommitments,
}

/// Round 1, member → server: its shares for every other member, encrypted,
/// and the commitments to all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareKeys {
    /// The member.
    pub sender: u32,
    /// The commitments to the shares the member keeps for itself.
    pub own: ShareCommitments,
    /// One per other member of the key list.
    pub shares: Vec<SealedShare>,
}

/// An encrypted share pair as routed to its recipient, with its
/// commitments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedShare {
    /// The member that encrypted it.
    pub sender: u32,
    /// AES-256-GCM ciphertext and tag.
    pub ciphertext: Vec<u8>,
    /// The commitments its sender made to the two shares inside.
    pub commitments: ShareCommitments,
}

/// Round 1, server → one member: the shares the others encrypted for it.
/// Its senders whose shares check out, with the recipient, are that
/// member's view of U2: the members it masks with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutedShares {
    /// The member they are for.
    pub recipient: u32,
    /// One per other member that sent shares.
    pub shares: Vec<RoutedShare>,
}

/// Round 2, member → server: its input plus all its masks, in Z_{2^64},
/// and the senders whose routed shares it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedInput {
    /// The member.
    pub sender: u32,
    /// y_u, one ring element per input value.
    pub values: Vec<u64>,
    /// Members whose routed share did not decrypt, named another pair, sat
    /// at the wrong point or did not match its commitments. The member
    /// did not mask with them and keeps no share of theirs.
    pub complaints: Vec<u32>,
}

/// Round 3, server → every survivor: U3, the members whose masked input is
/// in the sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyRequest {
    /// U3, sorted.
    pub survivors: Vec<u32>,
}

/// Round 3, survivor → server: its signature on U3 and on its own view of
/// U2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencySignature {
    /// The member.
    pub sender: u32,
    /// Its view of U2, sorted: itself and the members whose shares reached
    /// it and checked out.
    pub seen: Vec<u32>,
    /// Ed25519 over the protocol label, parameter digest, a consistency
    /// tag, U3, the sender and `seen`.
    pub signature: [u8; 64],
}

/// Round 4, server → every survivor that signed: U3 again, with the
/// signatures that show at least t survivors were shown the same set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmaskRequest {
    /// U3, as in the consistency request.
    pub survivors: Vec<u32>,
    /// The survivors' signatures on it.
    pub signatures: Vec<ConsistencySignature>,
}

/// One Shamir share revealed to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevealedShare {
    /// Whose secret it is a share of.
    pub owner: u32,
    /// Evaluation point (sender id + 1), then 32 bytes of share.
    pub share: [u8; SHARE_LEN],
}

/// Round 4, survivor → server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmaskResponse {
    /// The member.
    pub sender: u32,
    /// Its shares of each survivor's self-mask seed b_v.
    pub self_mask_shares: Vec<RevealedShare>,
    /// Its shares of the mask secret key s_sk_v of each member of its view
    /// of U2 that is not a survivor.
    pub mask_key_shares: Vec<RevealedShare>,
}

const KIND_ADVERTISE: u8 = 1;
const KIND_KEY_LIST: u8 = 2;
const KIND_SHARE_KEYS: u8 = 3;
const KIND_ROUTED: u8 = 4;
const KIND_MASKED: u8 = 5;
const KIND_REQUEST: u8 = 6;
const KIND_RESPONSE: u8 = 7;
const KIND_CONSISTENCY_REQUEST: u8 = 8;
const KIND_CONSISTENCY_SIGNATURE: u8 = 9;

const ADVERTISE_LEN: usize = 4 + 32 + 32 + 64;

impl AdvertiseKeys {
    fn write(&self, w: &mut Writer) {
        w.u32(self.sender);
        w.bytes(&self.cipher_key);
        w.bytes(&self.mask_key);
        w.bytes(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, SecAggError> {
        Ok(Self {
            sender: r.u32()?,
            cipher_key: r.array()?,
            mask_key: r.array()?,
            signature: r.array()?,
        })
    }

    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(KIND_ADVERTISE, ADVERTISE_LEN);
        self.write(&mut w);
        w.finish()
    }

    /// Parses [`AdvertiseKeys::to_bytes`] output.
    ///
    /// # Errors
    /// [`SecAggError::Malformed`] naming the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecAggError> {
        let mut r = Reader::new(bytes, KIND_ADVERTISE, "advertise-keys")?;
        let out = Self::read(&mut r)?;
        r.finish()?;
        Ok(out)
    }
}

impl KeyList {
    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(KIND_KEY_LIST, 4 + self.keys.len() * ADVERTISE_LEN);
        w.count(self.keys.len());
        for entry in &self.keys {
            entry.write(&mut w);
        }
        w.finish()
    }

    /// Parses [`KeyList::to_bytes`] output.
    ///
    /// # Errors
    /// [`SecAggError::Malformed`] naming the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecAggError> {
        let mut r = Reader::new(bytes, KIND_KEY_LIST, "key-list")?;
        let count = r.count(ADVERTISE_LEN)?;
        let keys = (0..count)
            .map(|_| AdvertiseKeys::read(&mut r))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self { keys })
    }
}

const COMMITMENTS_LEN: usize = 64;

impl ShareCommitments {
    fn write(&self, w: &mut Writer) {
        w.bytes(&self.mask_key);
        w.bytes(&self.self_mask);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, SecAggError> {
        Ok(Self {
            mask_key: r.array()?,
            self_mask: r.array()?,
        })
    }
}

/// Writes (id, length-prefixed ciphertext, commitments) entries.
fn write_sealed<'a>(
    w: &mut Writer,
    entries: impl ExactSizeIterator<Item = (u32, &'a [u8], &'a ShareCommitments)>,
) {
    w.count(entries.len());
    for (id, bytes, commitments) in entries {
        w.u32(id);
        w.count(bytes.len());
        w.bytes(bytes);
        commitments.write(w);
    }
}

type SealedEntry = (u32, Vec<u8>, ShareCommitments);

fn read_sealed(r: &mut Reader<'_>) -> Result<Vec<SealedEntry>, SecAggError> {
    let count = r.count(8 + COMMITMENTS_LEN)?;
    (0..count)
        .map(|_| {
            let id = r.u32()?;
            let len = r.count(1)?;
            let bytes = r.bytes(len)?.to_vec();
            Ok((id, bytes, ShareCommitments::read(r)?))
        })
        .collect()
}

impl ShareKeys {
    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(KIND_SHARE_KEYS, 72 + self.shares.len() * 192);
        w.u32(self.sender);
        self.own.write(&mut w);
        write_sealed(
            &mut w,
            self.shares
                .iter()
                .map(|s| (s.recipient, s.ciphertext.as_slice(), &s.commitments)),
        );
        w.finish()
    }

    /// Parses [`ShareKeys::to_bytes`] output.
    ///
    /// # Errors
    /// [`SecAggError::Malformed`] naming the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecAggError> {
        let mut r = Reader::new(bytes, KIND_SHARE_KEYS, "share-keys")?;
        let sender = r.u32()?;
        let own = ShareCommitments::read(&mut r)?;
        let shares = read_sealed(&mut r)?
            .into_iter()
            .map(|(recipient, ciphertext, commitments)| SealedShare {
                recipient,
                ciphertext,
                commitments,
            })
            .collect();
        r.finish()?;
        Ok(Self {
            sender,
            own,
            shares,
        })
    }
}

impl RoutedShares {
    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(KIND_ROUTED, 8 + self.shares.len() * 192);
        w.u32(self.recipient);
        write_sealed(
            &mut w,
            self.shares
                .iter()
                .map(|s| (s.sender, s.ciphertext.as_slice(), &s.commitments)),
        );
        w.finish()
    }

    /// Parses [`RoutedShares::to_bytes`] output.
    ///
    /// # Errors
    /// [`SecAggError::Malformed`] naming the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecAggError> {
        let mut r = Reader::new(bytes, KIND_ROUTED, "routed-shares")?;
        let recipient = r.u32()?;
        let shares = read_sealed(&mut r)?
            .into_iter()
            .map(|(sender, ciphertext, commitments)| RoutedShare {
                sender,
                ciphertext,
                commitments,
            })
            .collect();
        r.finish()?;
        Ok(Self { recipient, shares })
    }
}

impl MaskedInput {
    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(
            KIND_MASKED,
            12 + self.values.len() * 8 + self.complaints.len() * 4,
        );
        w.u32(self.sender);
        w.count(self.values.len());
        for &value in &self.values {
            w.u64(value);
        }
        write_ids(&mut w, &self.complaints);
        w.finish()
    }

    /// Parses [`MaskedInput::to_bytes`] output.
    ///
    /// # Errors
    /// [`SecAggError::Malformed`] naming the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecAggError> {
        let mut r = Reader::new(bytes, KIND_MASKED, "masked-input")?;
        let sender = r.u32()?;
        let count = r.count(8)?;
        let values = (0..count).map(|_| r.u64()).collect::<Result<_, _>>()?;
        let complaints = read_ids(&mut r)?;
        r.finish()?;
        Ok(Self {
            sender,
            values,
            complaints,
        })
    }
}

fn write_ids(w: &mut Writer, ids: &[u32]) {
    w.count(ids.len());
    for &id in ids {
        w.u32(id);
    }
}

fn read_ids(r: &mut Reader<'_>) -> Result<Vec<u32>, SecAggError> {
    let count = r.count(4)?;
    (0..count).map(|_| r.u32()).collect()
}

impl ConsistencyRequest {
    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(KIND_CONSISTENCY_REQUEST, 4 + 4 * self.survivors.len());
        write_ids(&mut w, &self.survivors);
        w.finish()
    }

    /// Parses [`ConsistencyRequest::to_bytes`] output.
    ///
    /// # Errors
    /// [`SecAggError::Malformed`] naming the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecAggError> {
        let mut r = Reader::new(bytes, KIND_CONSISTENCY_REQUEST, "consistency-request")?;
        let survivors = read_ids(&mut r)?;
        r.finish()?;
        Ok(Self { survivors })
    }
}

/// A signature's smallest encoding: sender, an empty `seen`, signature.
const SIGNATURE_MIN_LEN: usize = 4 + 4 + 64;

impl ConsistencySignature {
    fn write(&self, w: &mut Writer) {
        w.u32(self.sender);
        write_ids(w, &self.seen);
        w.bytes(&self.signature);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, SecAggError> {
        Ok(Self {
            sender: r.u32()?,
            seen: read_ids(r)?,
            signature: r.array()?,
        })
    }

    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(
            KIND_CONSISTENCY_SIGNATURE,
            SIGNATURE_MIN_LEN + 4 * self.seen.len(),
        );
        self.write(&mut w);
        w.finish()
    }

    /// Parses [`ConsistencySignature::to_bytes`] output.
    ///
    /// # Errors
    /// [`SecAggError::Malformed`] naming the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecAggError> {
        let mut r = Reader::new(bytes, KIND_CONSISTENCY_SIGNATURE, "consistency-signature")?;
        let out = Self::read(&mut r)?;
        r.finish()?;
        Ok(out)
    }
}

impl UnmaskRequest {
    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let signed: usize = self
            .signatures
            .iter()
            .map(|s| SIGNATURE_MIN_LEN + 4 * s.seen.len())
            .sum();
        let mut w = Writer::new(KIND_REQUEST, 8 + 4 * self.survivors.len() + signed);
        write_ids(&mut w, &self.survivors);
        w.count(self.signatures.len());
        for signature in &self.signatures {
            signature.write(&mut w);
        }
        w.finish()
    }

    /// Parses [`UnmaskRequest::to_bytes`] output.
    ///
    /// # Errors
    /// [`SecAggError::Malformed`] naming the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecAggError> {
        let mut r = Reader::new(bytes, KIND_REQUEST, "unmask-request")?;
        let survivors = read_ids(&mut r)?;
        let count = r.count(SIGNATURE_MIN_LEN)?;
        let signatures = (0..count)
            .map(|_| ConsistencySignature::read(&mut r))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(Self {
            survivors,
            signatures,
        })
    }
}

fn write_revealed(w: &mut Writer, shares: &[RevealedShare]) {
    w.count(shares.len());
    for s in shares {
        w.u32(s.owner);
        w.bytes(&s.share);
    }
}

fn read_revealed(r: &mut Reader<'_>) -> Result<Vec<RevealedShare>, SecAggError> {
    let count = r.count(4 + SHARE_LEN)?;
    (0..count)
        .map(|_| {
            Ok(RevealedShare {
                owner: r.u32()?,
                share: r.array()?,
            })
        })
        .collect()
}

impl UnmaskResponse {
    /// The message as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let entries = self.self_mask_shares.len() + self.mask_key_shares.len();
        let mut w = Writer::new(KIND_RESPONSE, 12 + entries * (4 + SHARE_LEN));
        w.u32(self.sender);
        write_revealed(&mut w, &self.self_mask_shares);
        write_revealed(&mut w, &self.mask_key_shares);
        w.finish()
    }

    /// Parses [`UnmaskResponse::to_bytes`] output.
    ///
    /// # Errors
    /// [`SecAggError::Malformed`] naming the byte offset.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SecAggError> {
        let mut r = Reader::new(bytes, KIND_RESPONSE, "unmask-response")?;
        let sender = r.u32()?;
        let self_mask_shares = read_revealed(&mut r)?;
        let mask_key_shares = read_revealed(&mut r)?;
        r.finish()?;
        Ok(Self {
            sender,
            self_mask_shares,
            mask_key_shares,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let adv = AdvertiseKeys {
            sender: 3,
            cipher_key: [1; 32],
            mask_key: [2; 32],
            signature: [3; 64],
        };
        assert_eq!(AdvertiseKeys::from_bytes(&adv.to_bytes()).unwrap(), adv);
        let list = KeyList {
            keys: vec![adv.clone(), adv],
        };
        assert_eq!(KeyList::from_bytes(&list.to_bytes()).unwrap(), list);
        let commitments = ShareCommitments {
            mask_key: [6; 32],
            self_mask: [7; 32],
        };
        let sk = ShareKeys {
            sender: 1,
            own: commitments,
            shares: vec![SealedShare {
                recipient: 2,
                ciphertext: vec![9; 90],
                commitments,
            }],
        };
        assert_eq!(ShareKeys::from_bytes(&sk.to_bytes()).unwrap(), sk);
        let routed = RoutedShares {
            recipient: 2,
            shares: vec![RoutedShare {
                sender: 1,
                ciphertext: vec![8; 5],
                commitments,
            }],
        };
        assert_eq!(
            RoutedShares::from_bytes(&routed.to_bytes()).unwrap(),
            routed
        );
        let masked = MaskedInput {
            sender: 4,
            values: vec![0, u64::MAX, 42],
            complaints: vec![1, 3],
        };
        assert_eq!(MaskedInput::from_bytes(&masked.to_bytes()).unwrap(), masked);
        let check = ConsistencyRequest {
            survivors: vec![0, 2, 4],
        };
        assert_eq!(
            ConsistencyRequest::from_bytes(&check.to_bytes()).unwrap(),
            check
        );
        let signature = ConsistencySignature {
            sender: 2,
            seen: vec![0, 1, 2, 4],
            signature: [4; 64],
        };
        assert_eq!(
            ConsistencySignature::from_bytes(&signature.to_bytes()).unwrap(),
            signature
        );
        let req = UnmaskRequest {
            survivors: vec![0, 2],
            signatures: vec![signature.clone(), signature],
        };
        assert_eq!(UnmaskRequest::from_bytes(&req.to_bytes()).unwrap(), req);
        let resp = UnmaskResponse {
            sender: 0,
            self_mask_shares: vec![RevealedShare {
                owner: 2,
                share: [5; SHARE_LEN],
            }],
            mask_key_shares: vec![],
        };
        assert_eq!(UnmaskResponse::from_bytes(&resp.to_bytes()).unwrap(), resp);
    }

    #[test]
    fn refuses_truncation_trailing_bytes_and_huge_counts() {
        let masked = MaskedInput {
            sender: 4,
            values: vec![1, 2, 3],
            complaints: vec![],
        }
        .to_bytes();
        for cut in 0..masked.len() {
            assert!(
                MaskedInput::from_bytes(&masked[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut long = masked.clone();
        long.push(0);
        assert!(
            MaskedInput::from_bytes(&long)
                .unwrap_err()
                .to_string()
                .contains("trailing")
        );
        // A count of 2^32 - 1 values with 8 bytes behind it is refused
        // before anything is allocated.
        let mut huge = masked[..6].to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&[0; 8]);
        let err = MaskedInput::from_bytes(&huge).unwrap_err();
        assert!(err.to_string().contains("only 8 bytes follow"), "{err}");
        // The wrong kind of message.
        assert!(UnmaskRequest::from_bytes(&masked).is_err());
        // A request claiming 2^32 - 1 signatures with one signature's worth
        // of bytes behind it.
        let mut huge = UnmaskRequest {
            survivors: vec![],
            signatures: vec![],
        }
        .to_bytes();
        huge.truncate(huge.len() - 4);
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        huge.extend_from_slice(&[0; SIGNATURE_MIN_LEN]);
        let err = UnmaskRequest::from_bytes(&huge).unwrap_err();
        assert!(err.to_string().contains("only 72 bytes follow"), "{err}");
    }
}
