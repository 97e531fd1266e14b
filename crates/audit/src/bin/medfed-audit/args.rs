//! Command-line flags of `medfed-audit`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use medfed_audit::PublicKey;

/// Checks medfed exchange logs: verify a log's integrity, list it, show a
/// decrypted message, cross-check a node's log against the coordinator's,
/// and generate keys.
#[derive(Debug, Parser)]
#[command(
    name = "medfed-audit",
    version,
    after_help = "Exit status: 0 when every check passes, 6 when a check found a problem \
                  (the first bad entry, a missing or altered message), 2 for usage errors \
                  (a missing or malformed flag, an entry that is not in the log), 3 when \
                  `show` has no audit key, 4 for logs and keys that cannot be read or \
                  written, 1 for anything else.\n\
                  The audit key comes from --audit-key-file, else from the environment \
                  variable MEDFED_AUDIT_KEY when it is set."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check a log's chain, hashes and signatures (and, with the audit key,
    /// every payload and member signature); report the first bad entry.
    #[command(
        after_help = "Example:\n  medfed-audit verify /var/lib/medfed/exchange.log \
                            --audit-key-file audit.key --writer-key 3b6a27bc...\n\
                            Exit status 0 only when the whole log verifies, 6 when it does not."
    )]
    Verify {
        /// The log file, e.g. run/exchange.log.
        #[arg(value_name = "LOG")]
        log: PathBuf,
        #[command(flatten)]
        key: AuditKeyArg,
        /// The writer's Ed25519 public key (64 hex digits), obtained from the
        /// writer out of band; without it the key in the log's first entry is
        /// taken on trust.
        #[arg(long, value_name = "HEX")]
        writer_key: Option<PublicKey>,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the entries (seq, time, round, direction, peer, kind, bytes,
    /// short hash), then who exchanged which kinds in each round. Does not
    /// verify: run `verify` for that.
    #[command(after_help = "Example:\n  medfed-audit list exchange.log\n  \
                            medfed-audit list exchange.log --json | jq '.rounds'")]
    List {
        /// The log file, e.g. run/exchange.log.
        #[arg(value_name = "LOG")]
        log: PathBuf,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Decrypt one entry's message and print it, decoded as the protobuf
    /// message its kind names (vectors summarised).
    #[command(after_help = "Example:\n  medfed-audit show exchange.log --seq 42 \
                            --audit-key-file audit.key")]
    Show {
        /// The log file, e.g. run/exchange.log.
        #[arg(value_name = "LOG")]
        log: PathBuf,
        /// Sequence number of the entry, e.g. 42 (see `list`).
        #[arg(long, value_name = "N")]
        seq: u64,
        #[command(flatten)]
        key: AuditKeyArg,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Compare a node's log with the coordinator's: every message one side
    /// has and the other lacks or holds differently. Verifies both logs
    /// first (payloads and member signatures too when the audit key is
    /// given).
    #[command(
        after_help = "Example:\n  medfed-audit cross-check --node st-marys/exchange.log \
                            --coordinator consortium/exchange.log\n\
                            Exit status 0 only when both logs verify and agree, 6 otherwise."
    )]
    CrossCheck {
        /// The node's log, e.g. site/exchange.log.
        #[arg(long, value_name = "LOG")]
        node: PathBuf,
        /// The coordinator's log, e.g. run/exchange.log.
        #[arg(long, value_name = "LOG")]
        coordinator: PathBuf,
        #[command(flatten)]
        key: AuditKeyArg,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write new keys to new files (mode 0600; existing files are never
    /// overwritten): an audit key, and/or an Ed25519 writer key.
    #[command(
        after_help = "Example:\n  medfed-audit keygen --audit-key-file /etc/medfed/audit.key\n  \
                            medfed-audit keygen --signing-key /etc/medfed/coordinator.log.key"
    )]
    Keygen {
        /// Where to write a new audit (Fernet) key, e.g. audit.key.
        #[arg(
            long = "audit-key-file",
            alias = "audit-key",
            value_name = "FILE",
            required_unless_present = "signing_key"
        )]
        audit_key: Option<PathBuf>,
        /// Where to write a new Ed25519 writer key (PKCS#8 PEM), e.g.
        /// coordinator.log.key; its public key is printed.
        #[arg(long, value_name = "FILE")]
        signing_key: Option<PathBuf>,
    },
}

/// Where the audit key comes from.
#[derive(Debug, Args)]
pub(crate) struct AuditKeyArg {
    /// File holding the audit key, e.g. audit.key (else MEDFED_AUDIT_KEY).
    #[arg(long, value_name = "FILE")]
    pub(crate) audit_key_file: Option<PathBuf>,
}
