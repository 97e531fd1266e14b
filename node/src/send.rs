//! The one way out of the node. Every value that leaves for the coordinator
//! is a [`Submission`] and passes through [`send`]: encoded, signed with the
//! hospital's key, recorded in its exchange log, submitted, and the
//! coordinator's answer read back as a [`Delivered`].

use medfed_audit::SigningKey;
use medfed_wire::{Submission, kinds};

use crate::session::{Session, connection_lost, status_error};

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
/// it leaves), submits it (one call for every kind), and reads the answer.
/// A refusal by the coordinator is recorded in the log too, except the
/// answer to a budget notice it already holds.
///
/// This is the only place in the node that calls `Submit`: every value
/// that leaves, budget notices included, passes here, so the hospital's
/// own policy gate (what may be computed and released) belongs here too.
///
/// # Errors
/// The exchange log cannot be written; nothing is sent then.
pub(crate) async fn send(
    session: &mut Session<'_>,
    signer: &SigningKey,
    task_id: &str,
    outgoing: &Submission,
) -> anyhow::Result<Delivered> {
    let body = medfed_wire::submission::encode(outgoing, task_id);
    let signature = signer.sign(&body);
    session
        .ledger
        .sent(outgoing.kind(), outgoing.round(), &body, Some(signature))?;
    let result = session
        .client()
        .submit(body, signature.as_bytes().to_vec())
        .await;
    let status = match result {
        Ok(_) => return Ok(Delivered::Accepted),
        Err(status) if connection_lost(&status) => return Ok(Delivered::ConnectionLost),
        Err(status) => status,
    };
    let duplicate = status.code() == tonic::Code::AlreadyExists;
    // A budget notice sent again after a lost connection says nothing new
    // when it is already there; a duplicate submission's answer names the
    // step the coordinator holds, which the log keeps.
    if !(duplicate
        && matches!(
            outgoing,
            Submission::BudgetRefusal(_) | Submission::Refusal(_)
        ))
    {
        session
            .ledger
            .received(kinds::REJECTION, 0, status.message().as_bytes())?;
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
