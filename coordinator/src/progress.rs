//! Progress for the operator: a bar while rounds run when stdout is a
//! terminal, plain lines otherwise (logs, CI, pipes).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::orchestrator::RoundRecord;

/// Where round progress goes.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar on a terminal, plain lines elsewhere.
    pub fn new() -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
            bar.set_style(
                ProgressStyle::with_template("rounds {bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress { bar }
    }

    /// Prints a line (above the bar when there is one).
    pub fn message(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// Shows the bar for `total` rounds.
    pub fn start_rounds(&self, total: u32) {
        if let Some(bar) = &self.bar {
            bar.set_length(total.into());
            bar.set_draw_target(ProgressDrawTarget::stdout());
        }
    }

    /// Reports a finished round.
    pub fn round(&self, record: &RoundRecord, total: u32) {
        let width = total.to_string().len();
        self.message(&format!(
            "round {:>width$}/{total}  loss {:.5}  contributors {}  {:.2} ms",
            record.round, record.train_loss, record.contributors, record.millis
        ));
        if let Some(bar) = &self.bar {
            bar.set_position(record.round.into());
            bar.set_message(format!("loss {:.5}", record.train_loss));
        }
    }

    /// Removes the bar.
    pub fn finish_rounds(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}
