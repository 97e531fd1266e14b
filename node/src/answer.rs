//! From a computed answer to what leaves: the [`Outgoing`] message and the
//! line the node prints once the coordinator has it, so that the hospital
//! sees exactly what left the building.

use medfed_wire::SecAggSubmission;

use crate::send::Outgoing;
use crate::work::Answer;

/// A message ready to leave, with the line printed when it is delivered.
#[derive(Debug)]
pub(crate) struct Reply {
    /// What is sent.
    pub(crate) outgoing: Outgoing,
    /// What the node prints about it (after its name).
    pub(crate) line: String,
}

impl Reply {
    /// One stage of a secure-aggregation round, with the line the
    /// secure-aggregation state wrote for it.
    pub(crate) fn secure(line: String, submission: SecAggSubmission) -> Reply {
        Reply {
            outgoing: Outgoing::SecAgg(submission),
            line,
        }
    }

    /// Whether the coordinator answers it with a stage of a secure round
    /// (a copy it already holds counts as delivered).
    pub(crate) fn is_secure(&self) -> bool {
        matches!(self.outgoing, Outgoing::SecAgg(_))
    }
}

/// What comes of an answer computed in clear.
#[derive(Debug)]
pub(crate) enum Next {
    /// Nothing to send; ask for the next instruction.
    Ask,
    /// The task is over, for this reason.
    Finished(String),
    /// Send this.
    Send(Reply),
}

/// What `answer` becomes; `holdout_rows` is the number of held-out rows
/// evaluation counts were taken on (named in the printed line).
pub(crate) fn next(answer: Answer, holdout_rows: usize) -> Next {
    let (line, outgoing) = match answer {
        Answer::Nothing => return Next::Ask,
        Answer::Finished(reason) => return Next::Finished(reason),
        Answer::Statistics(stats) => (
            format!(
                "sent statistics: count, sum, sum of squares, range (and category counts) \
                 for {} columns over {} training rows",
                stats.summaries.len(),
                stats.train_rows
            ),
            Outgoing::Statistics(stats),
        ),
        Answer::Update(update) => (
            format!(
                "sent update for round {}: {} parameter deltas (norm {:.4}), {} rows",
                update.round,
                update.delta.len(),
                update.delta.dot(&update.delta).sqrt(),
                update.num_rows
            ),
            Outgoing::Update(update),
        ),
        Answer::Histograms(report) => {
            let columns = report.histograms.iter().flatten().count();
            (
                format!(
                    "sent histograms of {columns} columns (counts per bin over the global ranges)"
                ),
                Outgoing::Histograms(report),
            )
        }
        Answer::Newton(report) => {
            let (round, d, n) = (
                report.round,
                report.terms.gradient_sum.len(),
                report.terms.n,
            );
            (
                format!(
                    "sent Newton terms for round {round}: loss, gradient ({d} values) and \
                     Hessian ({d}x{d}) sums over {n} rows"
                ),
                Outgoing::Newton(report),
            )
        }
        Answer::Normal(report) => {
            let (d, n) = (report.terms.xty.len(), report.terms.n);
            (
                format!("sent normal-equation terms: X'X ({d}x{d}), X'y, y'y sums over {n} rows"),
                Outgoing::Normal(report),
            )
        }
        Answer::Baseline(model) => (
            format!(
                "sent site-alone model: {} parameters trained on {} rows",
                model.model.len(),
                model.num_rows
            ),
            Outgoing::Baseline(model),
        ),
        Answer::Evaluation(evaluation) => (
            format!(
                "sent evaluation counts for {} models on {holdout_rows} held-out rows",
                evaluation.models.len(),
            ),
            Outgoing::Evaluation(evaluation),
        ),
    };
    Next::Send(Reply { outgoing, line })
}
