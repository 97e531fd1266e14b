//! Mutual TLS for medfed: the coordinator's server configuration, the
//! hospital node's client configuration, the accept loop that performs
//! handshakes, and the identity (certificate Common Name) of a peer.
//!
//! Every configuration here uses the `ring` crypto provider explicitly and
//! speaks TLS 1.3 only. The coordinator requires a client certificate issued
//! by the consortium CA; a node trusts only that CA (never the system roots).
//!
//! # Layout
//!
//! - [`pem`]: [`load_certs`] and [`load_private_key`] read PEM files.
//! - [`config`]: [`server_config`] (coordinator) and [`client_config`] (node).
//! - [`identity`]: [`identity_from_der`] and [`request_identity`]: who a peer is;
//!   [`signing_key_from_der`]: the Ed25519 key its certificate certifies.
//! - [`roster`]: [`MemberVerifier`] checks another member's certificate
//!   (sent in a secure-aggregation roster) against the consortium CA.
//! - [`client`]: [`connect`], a tonic [`Channel`](tonic::transport::Channel)
//!   over mutual TLS with a custom connector.
//! - [`incoming`](mod@incoming): [`incoming()`], concurrent TLS handshakes for
//!   `tonic::transport::Server::serve_with_incoming_shutdown`, and
//!   [`Refusals`], the count of refused handshakes.
//! - [`error`]: [`TlsError`], every failure with the file or peer it concerns.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), medfed_tls::TlsError> {
//! use std::path::Path;
//! let tls = medfed_tls::client_config(
//!     Path::new("pki/ca.pem"),
//!     Path::new("pki/hospital-a.pem"),
//!     Path::new("pki/hospital-a.key"),
//! )?;
//! let channel = medfed_tls::connect("https://127.0.0.1:7443", "localhost", tls).await?;
//! # drop(channel);
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod client;
pub mod config;
pub mod error;
pub mod identity;
pub mod incoming;
pub mod pem;
mod pin;
pub mod roster;

pub use client::{CONNECT_TIMEOUT, connect, is_tls_refusal};
pub use config::{ALPN_H2, client_config, pinned_client_config, server_config};
pub use error::TlsError;
pub use identity::{
    SIGNING_KEY_URI_PREFIX, identity_from_der, parse_signing_key_uri, request_identity,
    signing_key_from_der, signing_key_uri,
};
pub use incoming::{HANDSHAKE_TIMEOUT, Refusals, incoming, incoming_with_timeout};
pub use pem::{load_certs, load_private_key};
pub use pin::certificate_sha256;
pub use roster::MemberVerifier;

/// Re-exported so callers name the same types as this crate.
pub use rustls::{ClientConfig, ServerConfig};
/// Re-exported so callers name the same types as this crate.
pub use rustls_pki_types::{CertificateDer, PrivateKeyDer};
