//! The one way out of the node. Every value that leaves for the coordinator
//! is an [`Outgoing`] and passes through [`send`]: encoded, signed with the
//! hospital's key, recorded in its exchange log, submitted, and the
//! coordinator's answer read back as a [`Delivered`].

use medfed_audit::SigningKey;
use medfed_wire::convert::{baseline_to_pb, evaluation_to_pb, statistics_to_pb, update_to_pb};
use medfed_wire::preprocessing::histograms_to_pb;
use medfed_wire::privacy::refusal_to_pb;
use medfed_wire::secagg::submission_to_pb;
use medfed_wire::terms::{newton_to_pb, normal_to_pb};
use medfed_wire::{
    BaselineModel, BudgetRefusal, EvaluationReport, HistogramReport, ModelUpdate, NewtonReport,
    NormalReport, SecAggSubmission, StatisticsReport, pb,
};
use prost::Message;

use crate::session::{Session, connection_lost, status_error};

/// A value on its way to the coordinator.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// Per-column summaries.
    Statistics(StatisticsReport),
    /// A training round's update, sent in clear.
    Update(ModelUpdate),
    /// Per-column histograms.
    Histograms(HistogramReport),
    /// A Newton round's loss, gradient and Hessian sums.
    Newton(NewtonReport),
    /// The normal-equation terms.
    Normal(NormalReport),
    /// A site-alone model.
    Baseline(BaselineModel),
    /// Evaluation counts.
    Evaluation(EvaluationReport),
    /// One stage of a secure-aggregation round.
    SecAgg(SecAggSubmission),
    /// The notice that this site declines a DP round (or the whole task).
    BudgetRefusal(BudgetRefusal),
}

impl Outgoing {
    /// The kind of entry it makes in the exchange log.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Outgoing::Statistics(_) => "statistics",
            Outgoing::Update(_) => "update",
            Outgoing::Histograms(_) => "histograms",
            Outgoing::Newton(_) => "newton-terms",
            Outgoing::Normal(_) => "normal-terms",
            Outgoing::Baseline(_) => "baseline",
            Outgoing::Evaluation(_) => "evaluation",
            Outgoing::SecAgg(_) => "secagg",
            Outgoing::BudgetRefusal(_) => "budget-refusal",
        }
    }

    /// The round its exchange-log entry is filed under (0 for what belongs
    /// to no training round; the normal equations are solved in round 1).
    pub(crate) fn round(&self) -> u32 {
        match self {
            Outgoing::Update(update) => update.round,
            Outgoing::Newton(report) => report.round,
            Outgoing::Normal(_) => 1,
            Outgoing::SecAgg(submission) => submission.round,
            Outgoing::BudgetRefusal(refusal) => refusal.round,
            Outgoing::Statistics(_)
            | Outgoing::Histograms(_)
            | Outgoing::Baseline(_)
            | Outgoing::Evaluation(_) => 0,
        }
    }

    /// The protobuf bytes that are signed and sent.
    fn encode(&self, task_id: &str) -> Vec<u8> {
        match self {
            Outgoing::Statistics(stats) => statistics_to_pb(stats, task_id).encode_to_vec(),
            Outgoing::Update(update) => update_to_pb(update, task_id).encode_to_vec(),
            Outgoing::Histograms(report) => histograms_to_pb(report, task_id).encode_to_vec(),
            Outgoing::Newton(report) => newton_to_pb(report, task_id).encode_to_vec(),
            Outgoing::Normal(report) => normal_to_pb(report, task_id).encode_to_vec(),
            Outgoing::Baseline(model) => baseline_to_pb(model, task_id).encode_to_vec(),
            Outgoing::Evaluation(report) => evaluation_to_pb(report, task_id).encode_to_vec(),
            Outgoing::SecAgg(submission) => submission_to_pb(submission, task_id).encode_to_vec(),
            Outgoing::BudgetRefusal(refusal) => refusal_to_pb(refusal, task_id).encode_to_vec(),
        }
    }
}

/// How a submission ended.
#[derive(Debug)]
pub(crate) enum Delivered {
    /// Accepted now.
    Accepted,
    /// The coordinator already holds it (sent before a lost connection).
    AlreadyThere,
    /// The step closed before it arrived (deadline, quorum); the
    /// coordinator's answer says why.
    TooLate(tonic::Status),
    /// The connection dropped: reconnect, then ask for the current step.
    ConnectionLost,
    /// The coordinator refused it for any other reason.
    Refused(tonic::Status),
}

/// Sends `outgoing` for task `task_id`: encodes it, signs it with the
/// hospital's signing key, records it in the exchange log (on disk before
/// it leaves), submits it with the RPC of its kind, and reads the answer.
/// A refusal by the coordinator is recorded in the log too, except the
/// answer to a budget notice it already holds.
///
/// This is the only place in the node that calls a submit RPC: every value
/// that leaves, budget notices included, passes here, so the hospital's
/// own policy gate (what may be computed and released) belongs here too.
///
/// # Errors
/// The exchange log cannot be written; nothing is sent then.
pub(crate) async fn send(
    session: &mut Session<'_>,
    signer: &SigningKey,
    task_id: &str,
    outgoing: &Outgoing,
) -> anyhow::Result<Delivered> {
    let body = outgoing.encode(task_id);
    let signature = signer.sign(&body);
    session
        .ledger
        .sent(outgoing.kind(), outgoing.round(), &body, Some(signature))?;
    let signed = pb::Signed {
        body,
        signature: signature.as_bytes().to_vec(),
    };
    let client = session.client();
    let result = match outgoing {
        Outgoing::Statistics(_) => client.submit_statistics(signed).await,
        Outgoing::Update(_) => client.submit_update(signed).await,
        Outgoing::Histograms(_) => client.submit_histograms(signed).await,
        Outgoing::Newton(_) => client.submit_newton_terms(signed).await,
        Outgoing::Normal(_) => client.submit_normal_terms(signed).await,
        Outgoing::Baseline(_) => client.submit_baseline(signed).await,
        Outgoing::Evaluation(_) => client.submit_evaluation(signed).await,
        Outgoing::SecAgg(_) => client.submit_sec_agg(signed).await,
        Outgoing::BudgetRefusal(_) => client.submit_budget_refusal(signed).await,
    };
    let status = match result {
        Ok(_) => return Ok(Delivered::Accepted),
        Err(status) if connection_lost(&status) => return Ok(Delivered::ConnectionLost),
        Err(status) => status,
    };
    let duplicate = status.code() == tonic::Code::AlreadyExists;
    // A budget notice sent again after a lost connection says nothing new
    // when it is already there; a duplicate submission's answer names the
    // step the coordinator holds, which the log keeps.
    if !(duplicate && matches!(outgoing, Outgoing::BudgetRefusal(_))) {
        session
            .ledger
            .received("refusal", 0, status.message().as_bytes())?;
    }
    Ok(match status.code() {
        tonic::Code::AlreadyExists => Delivered::AlreadyThere,
        tonic::Code::FailedPrecondition => Delivered::TooLate(status),
        _ => Delivered::Refused(status),
    })
}

/// The error for a submission the coordinator refused.
pub(crate) fn refused(status: tonic::Status) -> anyhow::Error {
    status_error(status).context("the coordinator refused a submission")
}
