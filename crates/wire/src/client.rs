//! The member's side of the gRPC contract in the protocol's terms: join,
//! poll for the next instruction, submit. The generated client and messages
//! stay here; a caller gets each message's exact bytes (for its exchange
//! log) and its checked conversion.

use prost::Message;
use tonic::transport::Channel;

use crate::PROTOCOL_VERSION;
use crate::WireError;
use crate::convert::{step_from_pb, task_from_pb};
use crate::limits::MAX_MESSAGE_BYTES;
use crate::message::{Step, Task};
use crate::pb;
use crate::pb::federation_client::FederationClient;

/// A connected member's calls to the coordinator.
#[derive(Clone, Debug)]
pub struct Client {
    inner: FederationClient<Channel>,
}

/// The coordinator's answer to a join.
#[derive(Debug)]
pub struct Joined {
    /// The join request, encoded as sent.
    pub request: Vec<u8>,
    /// The answer, encoded as received.
    pub response: Vec<u8>,
    /// The task id the answer names (empty when it names no task), as
    /// received.
    pub task_id: String,
    /// The coordinator's identity, as it names itself.
    pub coordinator: String,
    /// The task, checked (an error names what is wrong with it).
    pub task: Result<Task, WireError>,
}

/// An instruction as received.
#[derive(Debug)]
pub struct Received {
    /// The instruction, encoded as received.
    pub bytes: Vec<u8>,
    /// The instruction, checked against the task.
    pub step: Result<Step, WireError>,
}

impl Client {
    /// A client on `channel`, with the protocol's message size bound in
    /// both directions.
    pub fn new(channel: Channel) -> Client {
        Client {
            inner: FederationClient::new(channel)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        }
    }

    /// Asks to join task `task_id` (empty: whatever task the coordinator
    /// runs), speaking [`PROTOCOL_VERSION`].
    ///
    /// # Errors
    /// The call's status: unreachable, refused, not a member, another
    /// protocol version.
    pub async fn join(&mut self, task_id: &str) -> Result<Joined, tonic::Status> {
        let request = pb::JoinRequest {
            task_id: task_id.to_owned(),
            protocol_version: PROTOCOL_VERSION,
        };
        let sent = request.encode_to_vec();
        let response = self.inner.join(request).await?.into_inner();
        Ok(joined(sent, response))
    }

    /// The task the coordinator would give this member at join, without
    /// joining (for a data steward's review).
    ///
    /// # Errors
    /// The call's status; a task that fails validation is in the result.
    pub async fn describe(&mut self, task_id: &str) -> Result<Joined, tonic::Status> {
        let request = pb::JoinRequest {
            task_id: task_id.to_owned(),
            protocol_version: PROTOCOL_VERSION,
        };
        let sent = request.encode_to_vec();
        let described = self.inner.describe(request).await?.into_inner();
        Ok(joined(sent, described))
    }

    /// Long-polls for the first instruction of `task` after step
    /// `after_step` (a `Wait` when none comes within the poll window).
    ///
    /// # Errors
    /// The call's status.
    pub async fn next_instruction(
        &mut self,
        task: &Task,
        after_step: u64,
    ) -> Result<Received, tonic::Status> {
        let instruction = self
            .inner
            .next_instruction(pb::InstructionRequest {
                task_id: task.task_id.clone(),
                after_step,
            })
            .await?
            .into_inner();
        Ok(Received {
            bytes: instruction.encode_to_vec(),
            step: step_from_pb(instruction, task),
        })
    }

    /// Submits `body` (an encoded submission, see
    /// [`crate::submission::encode`]) with the member's `signature` over it.
    ///
    /// # Errors
    /// The call's status: the coordinator's refusal says why.
    pub async fn submit(&mut self, body: Vec<u8>, signature: Vec<u8>) -> Result<(), tonic::Status> {
        self.inner
            .submit(pb::Signed { body, signature })
            .await
            .map(|_| ())
    }
}

/// A join (or describe) answer as the node keeps it: the exact bytes both
/// ways and the validated task.
fn joined(request: Vec<u8>, answer: pb::JoinResponse) -> Joined {
    let response = answer.encode_to_vec();
    let pb::JoinResponse { task, coordinator } = answer;
    let task_id = task.as_ref().map(|t| t.task_id.clone()).unwrap_or_default();
    let task = task
        .ok_or(WireError::MissingField { field: "join.task" })
        .and_then(task_from_pb);
    Joined {
        request,
        response,
        task_id,
        coordinator,
        task,
    }
}
