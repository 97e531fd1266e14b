//! `medfed-audit`: the auditor's command line. Parses flags, calls the
//! library, prints, and maps the outcome to the exit status (see
//! [`exit_code`]).

#![forbid(unsafe_code)]

mod args;
mod commands;

use std::process::ExitCode;

use clap::Parser;
use medfed_audit::AuditError;

/// How a command ended, when it ran.
pub(crate) enum Outcome {
    /// Every check passed.
    Clean,
    /// A check found a problem (already printed).
    Findings,
}

/// `show` was asked to decrypt without an audit key.
#[derive(Debug, thiserror::Error)]
#[error("{0} needs the audit key: pass --audit-key-file or set {var}", var = medfed_audit::AUDIT_KEY_ENV)]
pub(crate) struct NeedsAuditKey(pub(crate) &'static str);

/// Exit codes, the same for every medfed tool (README, "Exit codes"). 0 is
/// success and 2 (usage) is also clap's own.
#[derive(Clone, Copy)]
enum Exit {
    Unexpected = 1,
    Usage = 2,
    Config = 3,
    Data = 4,
    /// A log did not verify, or two logs disagree.
    VerificationFailed = 6,
}

/// The exit code for an error that stopped a command before it could
/// report findings.
fn exit_code(error: &anyhow::Error) -> Exit {
    for cause in error.chain() {
        if cause.is::<NeedsAuditKey>() {
            return Exit::Config;
        }
        match cause.downcast_ref::<AuditError>() {
            Some(AuditError::AuditKeyEnvUnset { .. }) => return Exit::Config,
            // The entry asked for is not in the log: a wrong --seq.
            Some(AuditError::EntryNotFound { .. }) => return Exit::Usage,
            Some(_) => return Exit::Data,
            None => {}
        }
    }
    Exit::Unexpected
}

/// Standard output was closed by its reader: nothing more can be shown,
/// and nothing went wrong.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
pub(crate) struct StdoutClosed;

impl StdoutClosed {
    /// `StdoutClosed` for a broken pipe, the error itself otherwise.
    pub(crate) fn or_io(error: std::io::Error) -> anyhow::Error {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            StdoutClosed.into()
        } else {
            anyhow::Error::new(error).context("cannot write to standard output")
        }
    }
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli.command) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(Exit::VerificationFailed as u8),
        Err(error) if error.is::<StdoutClosed>() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("medfed-audit: error: {error:#}");
            ExitCode::from(exit_code(&error) as u8)
        }
    }
}
