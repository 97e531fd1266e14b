//! The one message a member sends after joining: a [`Submission`] of one
//! kind, as the body of a `Signed` (see `proto/medfed/v2`). Encoding is
//! here; each kind's checked decoding stays with its kind's conversions
//! (they need the step's context: the histogram plan, the models scored).

use medfed_protocol::kinds;

use crate::convert::{baseline_to_pb, evaluation_to_pb, statistics_to_pb, update_to_pb};
use crate::message::Submission;
use crate::pb;
use crate::pb::submission::Body;
use crate::preprocessing::histograms_to_pb;
use crate::privacy::{policy_refusal_to_pb, refusal_to_pb};
use crate::secagg::submission_to_pb as secagg_to_pb;
use crate::terms::{newton_to_pb, normal_to_pb};

/// `submission` as the wire message a member signs.
pub fn to_pb(submission: &Submission, task_id: &str) -> pb::Submission {
    let body = match submission {
        Submission::Statistics(r) => Body::Statistics(statistics_to_pb(r, task_id)),
        Submission::Histograms(r) => Body::Histograms(histograms_to_pb(r, task_id)),
        Submission::Update(u) => Body::Update(update_to_pb(u, task_id)),
        Submission::Newton(r) => Body::NewtonTerms(newton_to_pb(r, task_id)),
        Submission::Normal(r) => Body::NormalTerms(normal_to_pb(r, task_id)),
        Submission::Baseline(m) => Body::Baseline(baseline_to_pb(m, task_id)),
        Submission::Evaluation(r) => Body::Evaluation(evaluation_to_pb(r, task_id)),
        Submission::SecAgg(s) => Body::Secagg(secagg_to_pb(s, task_id)),
        Submission::BudgetRefusal(r) => Body::BudgetRefusal(refusal_to_pb(r, task_id)),
        Submission::Refusal(r) => Body::Refusal(policy_refusal_to_pb(r, task_id)),
    };
    pb::Submission { body: Some(body) }
}

/// `submission` encoded as the bytes a member signs, logs and sends.
pub fn encode(submission: &Submission, task_id: &str) -> Vec<u8> {
    prost::Message::encode_to_vec(&to_pb(submission, task_id))
}

/// The exchange-log kind of a received body, the same name
/// [`Submission::kind`] gives the decoded value.
pub fn kind(body: &Body) -> &'static str {
    match body {
        Body::Statistics(_) => kinds::STATISTICS,
        Body::Histograms(_) => kinds::HISTOGRAMS,
        Body::Update(_) => kinds::UPDATE,
        Body::NewtonTerms(_) => kinds::NEWTON_TERMS,
        Body::NormalTerms(_) => kinds::NORMAL_TERMS,
        Body::Baseline(_) => kinds::BASELINE,
        Body::Evaluation(_) => kinds::EVALUATION,
        Body::Secagg(_) => kinds::SECAGG,
        Body::BudgetRefusal(_) => kinds::BUDGET_REFUSAL,
        Body::Refusal(_) => kinds::REFUSAL,
    }
}

/// The round a received body says it belongs to, as logged (the same
/// number [`Submission::round`] gives the decoded value; unchecked).
pub fn round(body: &Body) -> u32 {
    match body {
        Body::Update(u) => u.round,
        Body::NewtonTerms(r) => r.round,
        Body::NormalTerms(_) => 1,
        Body::Secagg(s) => s.round,
        Body::BudgetRefusal(r) => r.round,
        Body::Statistics(_)
        | Body::Histograms(_)
        | Body::Baseline(_)
        | Body::Evaluation(_)
        | Body::Refusal(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{BaselineModel, BudgetRefusal, NormalReport};
    use medfed_model::NormalTerms;
    use ndarray::{Array1, Array2};

    /// The kind and round read off the wire body match the ones of the
    /// value it was encoded from, for every kind that has a round.
    #[test]
    fn kind_and_round_survive_encoding() {
        let values = [
            Submission::Baseline(BaselineModel {
                step: 4,
                model: Array1::zeros(3),
                num_rows: 10,
            }),
            Submission::Normal(NormalReport {
                step: 5,
                terms: NormalTerms {
                    n: 3,
                    xtx: Array2::eye(2),
                    xty: Array1::zeros(2),
                    yty: 1.0,
                    y_sum: 0.0,
                },
            }),
            Submission::BudgetRefusal(BudgetRefusal {
                round: 7,
                ..BudgetRefusal::no_budget()
            }),
            Submission::Refusal(crate::message::Refusal::new(3, "min_rows", "too few rows")),
        ];
        for value in values {
            let body = to_pb(&value, "t").body.expect("a body");
            assert_eq!(kind(&body), value.kind());
            assert_eq!(round(&body), value.round());
        }
    }
}
