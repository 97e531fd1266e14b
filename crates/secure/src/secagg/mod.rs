//! Dropout-tolerant secure aggregation: the coordinator learns the sum of
//! the members' vectors and nothing about any one of them, even when some
//! members vanish mid-round.
//!
//! This is the protocol of Bonawitz et al., "Practical Secure Aggregation
//! for Privacy-Preserving Machine Learning" (CCS 2017), in its semi-honest
//! form, with the advertised keys signed by each member's Ed25519 roster key
//! so that a server cannot substitute its own keys. One round:
//!
//! 0. **Advertise keys.** Each member makes two X25519 key pairs, c (to
//!    encrypt shares to it) and s (to agree pairwise masks), and sends both
//!    public keys signed. The server needs t of them and sends the list to
//!    all; every member checks every signature.
//! 1. **Share keys.** Each member u draws a self-mask seed b_u (32 bytes from
//!    the OS) and splits b_u and s_sk_u into t-of-n Shamir shares. Member v's
//!    pair of shares, with both ids, is encrypted to v under AES-256-GCM keyed
//!    by HKDF-SHA256 of X25519(c_sk_u, c_pk_v); the server only routes them.
//! 2. **Masked input.** Each member sends
//!    y_u = x_u + PRG(b_u) + Σ_{v>u} PRG(s_uv) − Σ_{v<u} PRG(s_uv) over the
//!    members v that sent shares, in Z_{2^64}, where s_uv is a 256-bit
//!    HKDF-SHA256 key from X25519(s_sk_u, s_pk_v) and PRG is ChaCha20. The
//!    server adds what arrives into a running sum; pairwise masks of members
//!    that both arrived cancel there.
//! 3. **Unmasking.** The server names the survivors (masked input arrived)
//!    and the dropped. Each survivor returns its shares of b_v for survivors
//!    and of s_sk_v for the dropped, and refuses a request that lists one
//!    member as both. From t responses the server rebuilds those secrets,
//!    removes the remaining masks and gets Σ x_u over the survivors.
//!
//! A member whose masked input arrives after it was declared dropped stays
//! hidden: its s_sk is rebuilt, but its b_u never is, since honest members
//! reveal only one of the two for any member, and each answers only one
//! request (the states are consumed). The threshold must be more than half
//! the roster, so a server that tells different members different dropped
//! sets cannot gather t shares of both secrets of anyone. Not covered: the
//! consistency-check round and signed unmasking responses of the paper's
//! actively secure variant, and members that collude with the server.
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
//! - `client`: the member's state machine, [`Client`] to [`ClientMasked`].
//! - `server`: the coordinator's state machine, [`Server`] to
//!   [`ServerUnmasking`], and the [`Aggregate`].
//! - `inspect`: the test-only `Inspect` hook and `ServerKnowledge`,
//!   compiled only with the `inspect` feature (off by default) and in this
//!   crate's own tests.
//! - `error`: [`SecAggError`] and [`Stage`].

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

pub use client::{Client, ClientAdvertised, ClientChecked, ClientMasked, ClientShared};
pub use crypto::SEALED_SHARE_LEN;
pub use error::{SecAggError, Stage};
pub use fixed_point::{EncodedInput, FixedPoint};
#[cfg(any(test, feature = "inspect"))]
pub use inspect::{Inspect, Observed, ServerKnowledge};
pub use messages::{
    AdvertiseKeys, ConsistencyRequest, ConsistencySignature, KeyList, MaskedInput, RevealedShare,
    RoutedShare, RoutedShares, SealedShare, ShareKeys, UnmaskRequest, UnmaskResponse,
};
pub use params::{
    MAX_MEMBERS, MAX_NAME_LEN, MAX_TASK_LEN, MAX_VECTOR_LEN, Member, SecAggConfig, SecAggParams,
};
pub use server::{
    Aggregate, Server, ServerChecking, ServerMasking, ServerSharing, ServerUnmasking,
};
