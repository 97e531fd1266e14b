//! `medfed-audit`: the auditor's command line. Parses flags, calls the
//! library, prints, and maps the outcome to the exit status (0 all checks
//! pass, 1 a check found a problem, 2 usage or I/O error).

#![forbid(unsafe_code)]

mod args;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// How a command ended, when it ran.
pub(crate) enum Outcome {
    /// Every check passed.
    Clean,
    /// A check found a problem (already printed).
    Findings,
}

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli.command) {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Findings) => ExitCode::from(1),
        Err(error) => {
            eprintln!("medfed-audit: error: {error:#}");
            ExitCode::from(2)
        }
    }
}
