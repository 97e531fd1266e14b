//! Dropout-tolerant secure aggregation: the coordinator learns the sum of
//! the members' vectors and nothing about any one of them, even when some
//! members vanish mid-round and even when the coordinator deviates from the
//! protocol.
//!
//! This is the protocol of Bonawitz et al., "Practical Secure Aggregation
//! for Privacy-Preserving Machine Learning" (CCS 2017), in the variant of
//! its full version (§6) that stays private against a malicious server:
//! advertised keys are signed with each member's Ed25519 roster key, and a
//! consistency check makes t survivors sign the same survivor set before
//! anyone reveals a share. One round:
//!
//! 0. **Advertise keys.** Each member makes two X25519 key pairs, c (to
//!    encrypt shares to it) and s (to agree pairwise masks), and sends both
//!    public keys signed. The server needs t of them and sends the list to
//!    all; every member checks every signature.
//! 1. **Share keys.** Each member u draws a self-mask seed b_u (32 bytes from
//!    the OS) and splits b_u and s_sk_u into t-of-n Shamir shares. Member v's
//!    pair of shares, with both ids, is encrypted to v under AES-256-GCM keyed
//!    by HKDF-SHA256 of X25519(c_sk_u, c_pk_v); beside it go SHA-256
//!    commitments to both shares, naming owner, holder and secret. The server
//!    only routes them.
//! 2. **Masked input.** Each member opens the shares routed to it. One that
//!    does not decrypt, names another pair, sits at the wrong point or does
//!    not match its commitments is a *complaint*: its sender is left out of
//!    the member's view of U2 (no mask with it, no share of it kept). With
//!    at least t members in its view, the member sends
//!    y_u = x_u + PRG(b_u) + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv) over its
//!    view, in Z_{2^64}, with its complaints; s_uv is a 256-bit HKDF-SHA256
//!    key from X25519(s_sk_u, s_pk_v) and PRG is ChaCha20. The server leaves
//!    out of U3 every member complained about (named in
//!    [`Aggregate::excluded`]) and sums the masked inputs of the rest.
//! 3. **Consistency check.** The server sends U3 to its members. Each signs
//!    it only if U3 lies inside its own view and holds itself and at least t
//!    members; it signs U3 together with its view (so the routing of shares
//!    is signed too). The server checks each signature under the roster key.
//! 4. **Unmasking.** The server sends U3 again with the signatures. A member
//!    answers only for the set it signed and only with t valid signatures on
//!    it by distinct members of U3; it reveals its shares of b_v for v ∈ U3
//!    and of s_sk_v for the rest of its own view. The server checks each
//!    revealed share against its commitment (a mismatch sets the response
//!    aside and names the holder), rebuilds each secret from t shares
//!    (a rebuilt s_sk must match the advertised s_pk), removes the masks
//!    along each survivor's view and gets Σ x_u over U3.
//!
//! Why this holds against a deviating server: an honest member signs one
//! U3 per session and answers one unmasking request (the states are
//! consumed), and t > n/2, so at most one set can gather t signatures from
//! its own members. Every honest member that reveals anything reveals it for
//! that set, so for any member v honest members reveal shares of b_v or of
//! s_sk_v, never both; a member whose masked input arrives late, or whose
//! shares the server routed to only some members, stays hidden. The dropped
//! set is never taken from the server: each member derives it from its own
//! view.
//!
//! Not covered: members colluding with the server (the bound is then the
//! paper's: fewer than 2t − n colluders, which the node's own threshold
//! floor of ⌈2n/3⌉ is there for); what the sums of several rounds or of
//! overlapping member sets reveal together (one sum per round is the
//! product's unit, differential privacy is the answer to that); a member
//! sending well-formed shares of a wrong secret or an out-of-range input
//! (there is no proof of a correct input); and a member that complains
//! about an honest one, which the server cannot tell from a real fault, so
//! it removes the accused from that round's sum. Complaints and refused
//! signatures only ever remove members; they never reveal anything.
//!
//! Values are `f64` in fixed point (see [`FixedPoint`]); a per-member weight
//! such as a row count is just another element of the vector.
//!
//! ```
//! use medfed_secure::secagg::{Client, Member, Server, SecAggParams, SecAggConfig, FixedPoint};
//! use ring::rand::SystemRandom;
//! use ring::signature::{Ed25519KeyPair, KeyPair};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rng = SystemRandom::new();
//! let signing: Vec<Ed25519KeyPair> = (0..3)
//!     .map(|_| {
//!         let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("rng");
//!         Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("fresh key")
//!     })
//!     .collect();
//! let params = SecAggParams::new(SecAggConfig {
//!     task: "sepsis-2025".into(),
//!     round: 7,
//!     threshold: 2,
//!     members: signing
//!         .iter()
//!         .enumerate()
//!         .map(|(i, key)| Member {
//!             name: format!("hospital-{i}"),
//!             verify_key: key.public_key().as_ref().try_into().expect("32 bytes"),
//!         })
//!         .collect(),
//!     vector_len: 2,
//!     fixed_point: FixedPoint::default(),
//! })?;
//!
//! let mut server = Server::new(params.clone());
//! let mut clients = Vec::new();
//! for (id, key) in (0..).zip(&signing) {
//!     let (client, message) = Client::new(params.clone(), id)?.advertise_keys(key);
//!     server.receive(message)?;
//!     clients.push(client);
//! }
//! let (mut server, key_list) = server.finish()?;
//! let mut shared = Vec::new();
//! for client in clients {
//!     let (client, message) = client.share_keys(&key_list)?;
//!     server.receive(message)?;
//!     shared.push(client);
//! }
//! let (mut server, routed) = server.finish()?;
//! let mut masked = Vec::new();
//! for (client, shares) in shared.into_iter().zip(&routed) {
//!     let input = params.encode_input(&[1.5, 100.0])?;
//!     let (client, message) = client.mask_input(shares, &input)?;
//!     server.receive(message)?;
//!     masked.push(client);
//! }
//! let (mut server, check) = server.finish()?;
//! let mut checked = Vec::new();
//! for (client, key) in masked.into_iter().zip(&signing) {
//!     let (client, signature) = client.check(&check, key)?;
//!     server.receive(signature)?;
//!     checked.push(client);
//! }
//! let (mut server, request) = server.finish()?;
//! for client in checked {
//!     server.receive(client.unmask(&request)?)?;
//! }
//! let aggregate = server.finish()?;
//! assert!(aggregate.excluded().is_empty());
//! assert_eq!(aggregate.decode(), vec![4.5, 300.0]);
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//! - `params`: [`SecAggConfig`], [`Member`] and the checked [`SecAggParams`]
//!   with its digest; the size limits.
//! - `fixed_point`: [`FixedPoint`] encoding into Z_{2^64}, its precision and
//!   range, and [`EncodedInput`].
//! - `messages`: the message of each round, with `to_bytes`/`from_bytes`.
//! - `codec`: the strict, bounded byte encoding behind those.
//! - `crypto`: signatures, X25519, HKDF, AES-GCM, the ChaCha20 mask stream
//!   and Shamir sharing, each from a kept crate.
//! - `client`: the member's state machine, [`Client`] to [`ClientMasked`],
//!   with the checks of routed shares that become complaints.
//! - `checked`: the member's consistency check and unmasking,
//!   [`ClientMasked::check`] and [`ClientChecked`].
//! - `server`: the coordinator's state machine, [`Server`] to
//!   [`ServerChecking`].
//! - `unmasking`: [`ServerUnmasking`], with its checks of revealed shares
//!   against their commitments, the [`Aggregate`] and [`Excluded`].
//! - `inspect`: the test-only `Inspect` hook and `ServerKnowledge`,
//!   compiled only with the `inspect` feature (off by default) and in this
//!   crate's own tests.
//! - `error`: [`SecAggError`] and [`Stage`].

mod checked;
mod client;
mod codec;
mod crypto;
mod error;
mod fixed_point;
#[cfg(any(test, feature = "inspect"))]
mod inspect;
mod messages;
mod params;
mod server;
mod unmasking;

pub use checked::ClientChecked;
pub use client::{Client, ClientAdvertised, ClientMasked, ClientShared};
pub use crypto::SEALED_SHARE_LEN;
pub use error::{SecAggError, Stage};
pub use fixed_point::{EncodedInput, FixedPoint};
#[cfg(any(test, feature = "inspect"))]
pub use inspect::{Inspect, Observed, ServerKnowledge};
pub use messages::{
    AdvertiseKeys, ConsistencyRequest, ConsistencySignature, KeyList, MaskedInput, RevealedShare,
    RoutedShare, RoutedShares, SealedShare, ShareCommitments, ShareKeys, UnmaskRequest,
    UnmaskResponse,
};
pub use params::{
    MAX_MEMBERS, MAX_NAME_LEN, MAX_TASK_LEN, MAX_VECTOR_LEN, Member, SecAggConfig, SecAggParams,
};
pub use server::{Server, ServerChecking, ServerMasking, ServerSharing};
pub use unmasking::{Aggregate, Excluded, ServerUnmasking};
