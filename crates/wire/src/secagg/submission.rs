//! Checked conversions of a member's secure-aggregation submissions (keys,
//! shares, masked input, consistency signature, unmask response).

use medfed_secure::secagg::{
    AdvertiseKeys, ConsistencySignature, MaskedInput, ShareKeys, UnmaskResponse,
};

use super::settings::secagg_settings;
use super::{MaskedKind, Result, check_ids, check_round, protocol};
use crate::WireError;
use crate::convert::check_task_id;
use crate::message::{SecAggMessage, SecAggSubmission, Task};
use crate::pb;

/// Converts a secure-aggregation submission for the wire.
pub fn submission_to_pb(submission: &SecAggSubmission, task_id: &str) -> pb::SecAggSubmission {
    let (stage, payload, evaluation) = match &submission.message {
        SecAggMessage::Keys(m) => (pb::SecAggStage::Keys, m.to_bytes(), None),
        SecAggMessage::Shares(m) => (pb::SecAggStage::Shares, m.to_bytes(), None),
        SecAggMessage::Masked(m) => (pb::SecAggStage::Masked, m.to_bytes(), None),
        SecAggMessage::Consistency(m) => (pb::SecAggStage::Consistency, m.to_bytes(), None),
        SecAggMessage::Unmask(m) => (pb::SecAggStage::Unmask, m.to_bytes(), None),
    };
    pb::SecAggSubmission {
        task_id: task_id.to_owned(),
        step: submission.step,
        round: submission.round,
        stage: stage.into(),
        payload,
        evaluation,
        privacy_spend: submission
            .privacy_spend
            .as_ref()
            .map(crate::privacy::spend_to_pb),
    }
}

/// Converts and validates a member's secure-aggregation submission: the
/// task uses secure aggregation, the round is in range, the payload parses
/// as the stage's message, a masked input has a length the task can mask, and
/// no evaluation counts travel in clear.
///
/// # Errors
/// Any of the above, naming the field.
pub fn submission_from_pb(
    submission: pb::SecAggSubmission,
    task: &Task,
) -> Result<SecAggSubmission> {
    let pb::SecAggSubmission {
        task_id,
        step,
        round,
        stage,
        payload,
        evaluation,
        privacy_spend,
    } = submission;
    check_task_id(task, task_id)?;
    secagg_settings(task, "secagg")?;
    check_round("secagg.round", round, task)?;
    let stage = pb::SecAggStage::try_from(stage).unwrap_or(pb::SecAggStage::Unspecified);
    // In a DP task the keys of a training round carry the spend the round
    // cost the member (charged before its noised update was kept for
    // masking); the steps outside training (round 0) spend nothing.
    let spend_expected =
        task.differential_privacy.is_some() && stage == pb::SecAggStage::Keys && round > 0;
    let privacy_spend = match (privacy_spend, spend_expected) {
        (Some(spend), true) => Some(crate::privacy::spend_from_pb(spend, task, round)?),
        (None, false) => None,
        (None, true) => {
            return Err(WireError::MissingField {
                field: "secagg.privacy_spend",
            });
        }
        (Some(_), false) => {
            return Err(WireError::Invalid {
                field: "secagg.privacy_spend",
                reason: "only the keys of a DP task's training rounds carry a privacy spend".into(),
            });
        }
    };
    if evaluation.is_some() {
        return Err(WireError::Invalid {
            field: "secagg.evaluation",
            reason: "held-out counts travel masked, inside the masked input, never in clear".into(),
        });
    }
    let field = "secagg.payload";
    let message = match stage {
        pb::SecAggStage::Keys => SecAggMessage::Keys(
            AdvertiseKeys::from_bytes(&payload).map_err(|e| protocol(field, e))?,
        ),
        pb::SecAggStage::Shares => {
            SecAggMessage::Shares(ShareKeys::from_bytes(&payload).map_err(|e| protocol(field, e))?)
        }
        pb::SecAggStage::Masked => {
            let input = MaskedInput::from_bytes(&payload).map_err(|e| protocol(field, e))?;
            // The step's kind is not known here: any length up to the
            // longest step of the task passes, and the step's
            // secure-aggregation server holds the input to the exact one.
            let longest = MaskedKind::longest(task);
            let got = input.values.len();
            if got == 0 || got > longest {
                return Err(WireError::Invalid {
                    field,
                    reason: format!(
                        "the masked vector has {got} values, expected 1 to {longest} (the \
                         longest vector this task masks)"
                    ),
                });
            }
            check_ids("secagg.payload.complaints", input.complaints.len(), task)?;
            SecAggMessage::Masked(input)
        }
        pb::SecAggStage::Consistency => {
            let signature =
                ConsistencySignature::from_bytes(&payload).map_err(|e| protocol(field, e))?;
            check_ids("secagg.payload.seen", signature.seen.len(), task)?;
            SecAggMessage::Consistency(signature)
        }
        pb::SecAggStage::Unmask => SecAggMessage::Unmask(
            UnmaskResponse::from_bytes(&payload).map_err(|e| protocol(field, e))?,
        ),
        pb::SecAggStage::Unspecified => {
            return Err(WireError::Invalid {
                field: "secagg.stage",
                reason: "must be keys, shares, masked, consistency or unmask".into(),
            });
        }
    };
    Ok(SecAggSubmission {
        step,
        round,
        message,
        privacy_spend,
    })
}
