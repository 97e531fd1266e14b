//! Progress for the operator: a bar while rounds run when stdout is a
//! terminal, plain lines otherwise (logs, CI, pipes).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use medfed_model::ModelKind;

use crate::step::RoundRecord;

/// Where round progress goes.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// The task's model, whose headline metric each round line shows.
    model: ModelKind,
}

impl Progress {
    /// A bar on a terminal, plain lines elsewhere, for rounds of a `model`
    /// task.
    pub fn new(model: ModelKind) -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::hidden());
            bar.set_style(
                ProgressStyle::with_template("rounds {bar:30} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Progress { bar, model }
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
        let metric = record
            .held_out
            .as_ref()
            .and_then(|scores| {
                let headline = self.model.summary_metrics()[0];
                let value = scores.overall.get(headline.key)?;
                Some(format!("  held-out {} {value:.4}", headline.label))
            })
            .unwrap_or_default();
        let note = record
            .note
            .as_ref()
            .map(|n| format!("  ({n})"))
            .unwrap_or_default();
        self.message(&format!(
            "round {:>width$}/{total}  loss {:.5}{metric}  contributors {}  {:.2} ms{note}",
            record.round, record.train_loss, record.contributors, record.millis
        ));
        if let Some(bar) = &self.bar {
            bar.set_position(record.round.into());
            bar.set_message(format!("loss {:.5}{metric}", record.train_loss));
        }
    }

    /// Removes the bar.
    pub fn finish_rounds(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
