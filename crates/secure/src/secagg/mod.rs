//! Dropout-tolerant secure aggregation: the coordinator learns the sum of
//! the members' vectors and nothing about any one of them, even when some
//! members vanish mid-round.
//!
//! This is the protocol of Bonawitz et al., "Practical Secure Aggregation
//! for Privacy-Preserving Machine Learning" (CCS 2017), in the variant of
//! its full version for a server that deviates from the protocol: the
//! advertised keys are signed by each member's Ed25519 roster key, so that
//! a server cannot substitute its own, and a consistency check before
//! unmasking. One round:
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
//!    members v whose shares reached it (its view of U2, at least t with
//!    itself), in Z_{2^64}, where s_uv is a 256-bit HKDF-SHA256 key from
//!    X25519(s_sk_u, s_pk_v) and PRG is ChaCha20. The server adds what
//!    arrives into a running sum; pairwise masks of members that both
//!    arrived cancel there.
//! 3. **Consistency check.** The server names the survivors U3 (masked
//!    input arrived). Each survivor signs U3, with its own view of U2, only
//!    if every survivor is in that view and it is one itself.
//! 4. **Unmasking.** The server sends U3 back with the signatures. Each
//!    survivor answers only for the U3 it signed and only with t valid
//!    signatures of distinct survivors on it; it returns its shares of b_v
//!    for v in U3 and of s_sk_v for the members of its own view of U2 not in
//!    U3 (it works out the dropped itself; the server never names them).
//!    From t responses the server rebuilds those secrets, checks each
//!    rebuilt s_sk against its advertised public key, removes the remaining
//!    masks and gets Σ x_u over U3.
//!
//! Why this holds against a deviating server (with every member honest):
//! each member signs one survivor set per round and t is more than half the
//! roster, so no two different sets can both gather t signatures; for one
//! agreed U3 no member is both a survivor (b revealed) and dropped (s_sk
//! revealed). A survivor v masked with its whole view, of which at least
//! t − 1 others are in U3 (U3 ⊆ view, |U3| ≥ t); the masks with those need
//! s_sk of a survivor, which no honest member reveals. A server that routes
//! a victim fewer members' shares cannot get a set the victim signs without
//! those members in it, and it cannot get t signatures on a set without
//! the victim's partners from members outside the victim's view, as the
//! victim's view already holds t members and t + t > n. A member whose
//! masked input arrives after the check stays hidden: its s_sk is rebuilt,
//! its b never. Not covered here: members that collude with the server
//! (the paper's analysis of that case needs a threshold above 2n/3, which
//! is why the nodes hold rounds to ⌈2n/3⌉ by default; no test plays
//! colluding members), range proofs on the inputs (one member can add any
//! vector to the sum undetected), naming a member whose share is bad
//! (reconstruction then fails for the round), and what a series of rounds
//! with different survivor sets reveals (see `docs/PRIVACY.md`).
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
//! - `client`: the member's state machine, [`Client`] to [`ClientChecked`].
//! - `server`: the coordinator's state machine, [`Server`] to
//!   [`ServerChecking`] and [`ServerUnmasking`], and the [`Aggregate`].
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
