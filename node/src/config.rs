//! The hospital's node file (TOML): where the coordinator, the vault, the
//! certificates and the keys are. `node run --config FILE` reads it and
//! `node config check FILE` checks it; `examples/heart/node.toml` explains
//! every key.
//!
//! ```toml
//! [coordinator]
//! address = "https://coordinator.example.org:7443"
//! server_name = "coordinator.example.org"
//! [vault]
//! path = "site.vault"
//! key_file = "vault.key"
//! [tls]
//! ca = "pki/ca.pem"
//! cert = "pki/my-hospital.pem"
//! key = "pki/my-hospital.key"
//! signing_key = "pki/my-hospital.sign.key"
//! [audit]
//! key_file = "audit.key"
//! ```
//!
//! Relative paths in the file are resolved against the file's own folder,
//! so a file works the same from any working directory. Unknown keys, wrong
//! types and values out of range are refused with the file, the line, the
//! key and what is allowed.
//!
//! Where each setting comes from is decided in one place,
//! [`Settings::resolve`]: a flag on the command line wins over the file; for
//! the two secrets (the vault key and the audit key) the environment
//! variables `MEDFED_VAULT_KEY` and `MEDFED_AUDIT_KEY` come between the two,
//! so the order is flag, then environment, then file.

mod check;
mod coordinator;
mod error;
mod file;
mod policy;
mod privacy;
mod read;
mod settings;

pub use check::{CheckedFile, NodeCheck, check};
pub use coordinator::{check_address, check_server_name};
pub use error::NodeConfigError;
pub use file::{MAX_FILE_BYTES, NodeFile};
pub use privacy::{check_delta, check_epsilon};
pub use read::MAX_CONNECT_TIMEOUT_SECONDS;
pub use settings::{
    AuditKeySource, DEFAULT_CONNECT_TIMEOUT, DEFAULT_SERVER_NAME, RunFlags, Settings,
    default_audit_log,
};

#[cfg(test)]
mod tests;
