//! From a computed answer to what leaves: the [`Submission`] message and the
//! line the node prints once the coordinator has it, so that the hospital
//! sees exactly what left the building.

use medfed_wire::{SecAggSubmission, Submission};

use crate::work::Answer;

/// A message ready to leave, with the line printed when it is delivered.
#[derive(Debug)]
pub(crate) struct Reply {
    /// What is sent.
    pub(crate) outgoing: Submission,
    /// What the node prints about it (after its name).
    pub(crate) line: String,
}

impl Reply {
    /// One stage of a secure-aggregation round, with the line the
    /// secure-aggregation state wrote for it.
    pub(crate) fn secure(line: String, submission: SecAggSubmission) -> Reply {
        Reply {
            outgoing: Submission::SecAgg(submission),
            line,
        }
    }

    /// Whether the coordinator answers it with a stage of a secure round
    /// (a copy it already holds counts as delivered).
    pub(crate) fn is_secure(&self) -> bool {
        matches!(self.outgoing, Submission::SecAgg(_))
    }
}

/// What comes of an answer computed in clear.
#[derive(Debug)]
pub(crate) enum Next {
    /// Nothing to send; ask for the next instruction.
    Ask,
    /// The task is over, for this reason.
    Finished(String),
    /// Send this (boxed: a message is far larger than the other cases).
    Send(Box<Reply>),
}

/// What `answer` becomes; `holdout_rows` is the number of held-out rows
/// evaluation counts were taken on (named in the printed line).
pub(crate) fn next(answer: Answer, holdout_rows: usize) -> Next {
    let outgoing = match answer {
        Answer::Nothing => return Next::Ask,
        Answer::Finished(reason) => return Next::Finished(reason),
        Answer::Send(submission) => submission,
    };
    let line = line(&outgoing, holdout_rows);
    Next::Send(Box::new(Reply { outgoing, line }))
}

/// The line the node prints once the coordinator has `submission`.
fn line(submission: &Submission, holdout_rows: usize) -> String {
    match submission {
        Submission::Statistics(stats) => format!(
            "sent statistics: count, sum, sum of squares, range (and category counts) \
             for {} columns over {} training rows",
            stats.summaries.len(),
            stats.train_rows
        ),
        Submission::Update(update) => format!(
            "sent update for round {}: {} parameter deltas (norm {:.4}), {} rows",
            update.round,
            update.delta.len(),
            update.delta.dot(&update.delta).sqrt(),
            update.num_rows
        ),
        Submission::Histograms(report) => {
            let columns = report.histograms.iter().flatten().count();
            format!("sent histograms of {columns} columns (counts per bin over the global ranges)")
        }
        Submission::Newton(report) => {
            let (round, d, n) = (
                report.round,
                report.terms.gradient_sum.len(),
                report.terms.n,
            );
            format!(
                "sent Newton terms for round {round}: loss, gradient ({d} values) and \
                 Hessian ({d}x{d}) sums over {n} rows"
            )
        }
        Submission::Normal(report) => {
            let (d, n) = (report.terms.xty.len(), report.terms.n);
            format!("sent normal-equation terms: X'X ({d}x{d}), X'y, y'y sums over {n} rows")
        }
        Submission::Baseline(model) => format!(
            "sent site-alone model: {} parameters trained on {} rows",
            model.model.len(),
            model.num_rows
        ),
        Submission::Evaluation(evaluation) => format!(
            "sent evaluation counts for {} models on {holdout_rows} held-out rows",
            evaluation.models.len(),
        ),
        // Secure-aggregation stages and budget notices have lines of
        // their own where they are made; this one is a fallback.
        other => format!("sent {} for round {}", other.kind(), other.round()),
    }
}

#[cfg(test)]
mod tests {
    use medfed_model::NormalTerms;
    use medfed_wire::{BudgetRefusal, ModelUpdate, NormalReport};
    use ndarray::{Array1, Array2, array};

    use super::*;

    fn sent(answer: Answer) -> Reply {
        match next(answer, 7) {
            Next::Send(reply) => *reply,
            other => panic!("expected a message to send, got {other:?}"),
        }
    }

    #[test]
    fn an_update_leaves_with_its_round_and_the_line_the_tests_read() {
        let reply = sent(Answer::Send(Submission::Update(ModelUpdate {
            step: 4,
            round: 2,
            delta: array![3.0, 4.0],
            num_rows: 120,
            train_loss: 0.5,
            evaluation: None,
            privacy_spend: None,
        })));
        assert_eq!(
            reply.line,
            "sent update for round 2: 2 parameter deltas (norm 5.0000), 120 rows"
        );
        assert_eq!(
            (reply.outgoing.kind(), reply.outgoing.round()),
            ("update", 2)
        );
        assert!(!reply.is_secure());
    }

    #[test]
    fn normal_terms_are_filed_under_round_one() {
        let reply = sent(Answer::Send(Submission::Normal(NormalReport {
            step: 3,
            terms: NormalTerms {
                n: 50,
                xtx: Array2::zeros((3, 3)),
                xty: Array1::zeros(3),
                yty: 0.0,
                y_sum: 0.0,
            },
        })));
        assert_eq!(
            reply.line,
            "sent normal-equation terms: X'X (3x3), X'y, y'y sums over 50 rows"
        );
        assert_eq!(
            (reply.outgoing.kind(), reply.outgoing.round()),
            ("normal-terms", 1)
        );
    }

    #[test]
    fn nothing_and_the_end_send_nothing() {
        assert!(matches!(next(Answer::Nothing, 0), Next::Ask));
        assert!(matches!(
            next(Answer::Finished("done".into()), 0),
            Next::Finished(reason) if reason == "done"
        ));
        let notice = Submission::BudgetRefusal(BudgetRefusal::no_budget());
        assert_eq!((notice.kind(), notice.round()), ("budget-refusal", 0));
    }
}
