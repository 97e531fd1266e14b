//! The gRPC service nodes call. Every call is authorised here: the caller's
//! identity comes from its client certificate (already verified against the
//! consortium CA by the TLS layer) and must be on the task's member list.
//! Domain errors become `tonic::Status` in this file only.

use std::sync::Arc;
use std::time::Duration;

use medfed_wire::convert::{
    baseline_from_pb, evaluation_from_pb, statistics_from_pb, step_to_pb_for, task_to_pb,
    update_from_pb,
};
use medfed_wire::pb::submission::Body;
use medfed_wire::preprocessing::histograms_from_pb;
use medfed_wire::privacy::{policy_refusal_from_pb, refusal_from_pb};
use medfed_wire::secagg::submission_from_pb as secagg_from_pb;
use medfed_wire::submission;
use medfed_wire::terms::{newton_from_pb, normal_from_pb};
use medfed_wire::{Instruction, PROTOCOL_VERSION, Step, Submission, WireError, kinds, pb};
use prost::Message;
use ring::signature::{ED25519, UnparsedPublicKey};
use tonic::{Request, Response, Status};

use medfed_audit::Direction;

use crate::exchange::Exchange;
use crate::state::{Shared, SubmitError};

/// The call name submissions are refused and counted under.
const CALL: &str = "submit";

/// The `medfed.v2.Federation` service.
pub struct FederationService {
    shared: Arc<Shared>,
    poll_window: Duration,
    exchange: Arc<Exchange>,
    /// This coordinator's identity (certificate Common Name).
    name: String,
}

impl FederationService {
    /// A service over `shared` that logs every exchange to `exchange`; a
    /// long poll returns `Wait` after `poll_window`.
    pub fn new(
        shared: Arc<Shared>,
        poll_window: Duration,
        exchange: Arc<Exchange>,
        name: String,
    ) -> Self {
        FederationService {
            shared,
            poll_window,
            exchange,
            name,
        }
    }

    /// Appends a message to the exchange log; a message that cannot be
    /// logged is not exchanged.
    fn log(
        &self,
        direction: Direction,
        peer: &str,
        kind: &str,
        round: u32,
        bytes: &[u8],
        member_signature: Option<&[u8]>,
    ) -> Result<(), Status> {
        self.exchange
            .record(direction, peer, kind, round, bytes, member_signature)
            .map_err(|error| {
                tracing::error!(%error, peer, kind, "cannot append to the exchange log");
                Status::unavailable("the coordinator cannot write its exchange log; try again")
            })
    }

    /// Logs a refusal of `call` sent to `peer` (in the exchange log and the
    /// metrics) and returns the status.
    fn log_refusal(&self, peer: &str, call: &'static str, status: Status) -> Status {
        self.shared.metrics.refused(call, status.code());
        let _ = self.log(
            Direction::Out,
            peer,
            kinds::REJECTION,
            0,
            status.message().as_bytes(),
            None,
        );
        status
    }

    /// The calling member's identity, or the status that refuses the call.
    fn member<T>(&self, request: &Request<T>, call: &'static str) -> Result<String, Status> {
        let Some(identity) = medfed_tls::request_identity(request) else {
            return Err(self.refuse(
                "(no identity)",
                call,
                Status::unauthenticated(
                    "a client certificate issued by the consortium CA is required",
                ),
            ));
        };
        if self.shared.task.members.contains(&identity) {
            Ok(identity)
        } else {
            self.shared.lock().refused_calls += 1;
            tracing::warn!(call, peer = %identity, "refused a call from a certificate that is not on the member list");
            Err(self.log_refusal(
                &identity,
                call,
                Status::permission_denied(format!(
                    "{identity} is not a member of task {}",
                    self.shared.task.task_id
                )),
            ))
        }
    }

    /// Opens a member's signed submission: checks the caller is a member,
    /// verifies the signature against the Ed25519 key its certificate
    /// certifies, decodes the body and logs it under its kind. Under
    /// secure aggregation a clear-text update is refused before it is
    /// logged: no member's update is held in clear.
    fn open_signed(&self, request: Request<pb::Signed>) -> Result<Opened, Status> {
        let member = self.member(&request, CALL)?;
        let key = self.certified_key(&request, &member, CALL)?;
        if let Err(error) = self.exchange.bind(&member, key) {
            tracing::error!(%error, "cannot append to the exchange log");
            return Err(Status::unavailable(
                "the coordinator cannot write its exchange log; try again",
            ));
        }
        let pb::Signed { body, signature } = request.into_inner();
        if UnparsedPublicKey::new(&ED25519, key)
            .verify(&body, &signature)
            .is_err()
        {
            return Err(self.refuse(
                &member,
                CALL,
                Status::unauthenticated(format!(
                    "the signature on this submission does not verify against the signing key \
                     certified for {member}"
                )),
            ));
        }
        let decoded = pb::Submission::decode(body.as_slice())
            .map_err(|error| error.to_string())
            .and_then(|message| message.body.ok_or_else(|| "it names no kind".to_owned()));
        let message = match decoded {
            Ok(message) => message,
            Err(error) => {
                self.log(
                    Direction::In,
                    &member,
                    kinds::UNREADABLE_SUBMISSION,
                    0,
                    &body,
                    Some(&signature),
                )?;
                return Err(self.refuse(
                    &member,
                    CALL,
                    Status::invalid_argument(format!(
                        "the signed body is not a valid submission: {error}"
                    )),
                ));
            }
        };
        if matches!(message, Body::Update(_)) && self.shared.task.secure_aggregation.is_some() {
            return Err(self.refuse(
                &member,
                CALL,
                Status::permission_denied(format!(
                    "task {} uses secure aggregation: clear-text updates are refused; \
                     send masked inputs (a secagg submission)",
                    self.shared.task.task_id
                )),
            ));
        }
        self.log(
            Direction::In,
            &member,
            submission::kind(&message),
            submission::round(&message),
            &body,
            Some(&signature),
        )?;
        Ok(Opened { member, message })
    }

    /// The checked domain value of a received body, or the status that
    /// refuses it.
    fn convert(&self, member: &str, body: Body) -> Result<Submission, Status> {
        let task = &self.shared.task;
        let wire = |e: WireError| self.log_refusal(member, CALL, refuse_wire(member, CALL, e));
        Ok(match body {
            Body::Statistics(m) => {
                Submission::Statistics(statistics_from_pb(m, task).map_err(wire)?)
            }
            Body::Update(m) => Submission::Update(update_from_pb(m, task).map_err(wire)?),
            Body::Baseline(m) => Submission::Baseline(baseline_from_pb(m, task).map_err(wire)?),
            Body::NewtonTerms(m) => Submission::Newton(newton_from_pb(m, task).map_err(wire)?),
            Body::NormalTerms(m) => Submission::Normal(normal_from_pb(m, task).map_err(wire)?),
            Body::Secagg(m) => Submission::SecAgg(secagg_from_pb(m, task).map_err(wire)?),
            Body::BudgetRefusal(m) => {
                Submission::BudgetRefusal(refusal_from_pb(m, task).map_err(wire)?)
            }
            Body::Refusal(m) => Submission::Refusal(policy_refusal_from_pb(m, task).map_err(wire)?),
            Body::Evaluation(m) => {
                let models = self.shared.evaluation_models();
                if models == 0 {
                    return Err(self.log_refusal(
                        member,
                        CALL,
                        Status::failed_precondition("no evaluation step is in progress"),
                    ));
                }
                Submission::Evaluation(evaluation_from_pb(m, task, models).map_err(wire)?)
            }
            Body::Histograms(m) => {
                let Some(plan) = self.shared.histogram_plan() else {
                    return Err(self.log_refusal(
                        member,
                        CALL,
                        Status::failed_precondition("no histogram step is in progress"),
                    ));
                };
                Submission::Histograms(histograms_from_pb(m, task, &plan).map_err(wire)?)
            }
        })
    }

    /// The Ed25519 signing key the caller's certificate certifies.
    fn certified_key<T>(
        &self,
        request: &Request<T>,
        member: &str,
        call: &'static str,
    ) -> Result<[u8; 32], Status> {
        let key = request
            .peer_certs()
            .and_then(|certs| certs.first().cloned())
            .map(|leaf| medfed_tls::signing_key_from_der(&leaf));
        match key {
            Some(Ok(Some(key))) => Ok(key),
            Some(Ok(None)) | None => Err(self.refuse(
                member,
                call,
                Status::permission_denied(format!(
                    "the certificate of {member} certifies no signing key; \
                     re-enrol with `medfed-certs request`"
                )),
            )),
            Some(Err(error)) => {
                Err(self.refuse(member, call, Status::permission_denied(error.to_string())))
            }
        }
    }

    /// Counts and logs a refused call (in the exchange log too).
    fn refuse(&self, member: &str, call: &'static str, status: Status) -> Status {
        self.shared.lock().refused_calls += 1;
        tracing::warn!(
            peer = member,
            call,
            reason = status.message(),
            "refused a call"
        );
        self.log_refusal(member, call, status)
    }

    fn check_task(&self, task_id: &str) -> Result<(), Status> {
        if task_id.is_empty() || task_id == self.shared.task.task_id {
            Ok(())
        } else {
            Err(Status::not_found(format!(
                "this coordinator runs task {:?}, not {task_id:?}",
                self.shared.task.task_id
            )))
        }
    }
}

/// A verified, decoded submission (its exact bytes and signature are in
/// the exchange log by the time it is opened).
struct Opened {
    member: String,
    message: Body,
}

fn refuse_wire(member: &str, call: &str, error: WireError) -> Status {
    tracing::warn!(peer = member, call, %error, "refused a malformed message");
    Status::invalid_argument(error.to_string())
}

fn refuse_submit(member: &str, call: &str, error: SubmitError) -> Status {
    tracing::warn!(peer = member, call, %error, "refused a submission");
    match error {
        SubmitError::WrongStep { .. } => Status::failed_precondition(error.to_string()),
        SubmitError::Duplicate { .. } => Status::already_exists(error.to_string()),
        SubmitError::Invalid(_) => Status::invalid_argument(error.to_string()),
    }
}

#[tonic::async_trait]
impl pb::federation_server::Federation for FederationService {
    async fn describe(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let member = self.member(&request, "describe")?;
        let pb::JoinRequest { task_id, .. } = request.into_inner();
        self.check_task(&task_id)
            .map_err(|status| self.log_refusal(&member, "describe", status))?;
        tracing::info!(peer = %member, "member asked for the task's description");
        self.shared.metrics.accepted("describe");
        Ok(Response::new(pb::JoinResponse {
            task: Some(task_to_pb(&self.shared.task)),
            coordinator: self.name.clone(),
        }))
    }

    async fn join(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let member = self.member(&request, "join")?;
        let key = self.certified_key(&request, &member, "join")?;
        let request_leaf = request
            .peer_certs()
            .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()));
        let join = request.into_inner();
        self.log(
            Direction::In,
            &member,
            kinds::JOIN,
            0,
            &join.encode_to_vec(),
            None,
        )?;
        let pb::JoinRequest {
            task_id,
            protocol_version,
        } = join;
        self.check_task(&task_id)
            .map_err(|status| self.log_refusal(&member, "join", status))?;
        if protocol_version != PROTOCOL_VERSION {
            return Err(self.log_refusal(
                &member,
                "join",
                Status::failed_precondition(format!(
                    "node speaks protocol version {protocol_version}, coordinator speaks {PROTOCOL_VERSION}"
                )),
            ));
        }
        if let Err(error) = self.exchange.bind(&member, key) {
            tracing::error!(%error, "cannot append to the exchange log");
            return Err(Status::unavailable(
                "the coordinator cannot write its exchange log; try again",
            ));
        }
        // Kept for secure-aggregation rosters: every member checks this
        // certificate against the consortium CA before trusting its key.
        if let Some(leaf) = request_leaf {
            self.shared.lock().certificates.insert(member.clone(), leaf);
        }
        tracing::info!(peer = %member, "member joined");
        let response = pb::JoinResponse {
            task: Some(task_to_pb(&self.shared.task)),
            coordinator: self.name.clone(),
        };
        self.log(
            Direction::Out,
            &member,
            kinds::TASK,
            0,
            &response.encode_to_vec(),
            None,
        )?;
        self.shared.join(&member);
        self.shared.metrics.accepted("join");
        Ok(Response::new(response))
    }

    async fn next_instruction(
        &self,
        request: Request<pb::InstructionRequest>,
    ) -> Result<Response<pb::Instruction>, Status> {
        let member = self.member(&request, "next_instruction")?;
        let pb::InstructionRequest {
            task_id,
            after_step,
        } = request.into_inner();
        self.check_task(&task_id)?;
        let mut steps = self.shared.subscribe();
        let waited = tokio::time::timeout(
            self.poll_window,
            steps.wait_for(|step| step.step > after_step),
        )
        .await;
        let step = match waited {
            Ok(Ok(step)) => Arc::clone(&step),
            // The coordinator is shutting down (sender gone) or nothing new
            // arrived in the poll window: ask again.
            Ok(Err(_)) | Err(_) => Arc::new(Step {
                step: after_step,
                instruction: Instruction::Wait,
            }),
        };
        // Routed secure-aggregation shares: each member gets only its own;
        // roster certificates it already has go by digest.
        let step = self.shared.step_for(&step, &member);
        let instruction = step_to_pb_for(&step, &member);
        if !matches!(step.instruction, Instruction::Wait) {
            self.log(
                Direction::Out,
                &member,
                step.kind(),
                step.round(),
                &instruction.encode_to_vec(),
                None,
            )?;
        }
        if matches!(step.instruction, Instruction::Finished { .. }) {
            self.shared.lock().told_finished.insert(member);
            self.shared.progress.notify_waiters();
        }
        Ok(Response::new(instruction))
    }

    async fn submit(&self, request: Request<pb::Signed>) -> Result<Response<pb::Ack>, Status> {
        let Opened { member, message } = self.open_signed(request)?;
        let submission = self.convert(&member, message)?;
        let kind = match &submission {
            Submission::SecAgg(s) => s.message.kind(),
            other => other.kind(),
        };
        if let Submission::BudgetRefusal(refusal) = &submission {
            tracing::warn!(
                site = %member,
                round = refusal.round,
                spent_epsilon = refusal.spent_epsilon,
                epsilon_after_round = refusal.epsilon_after_round,
                budget_epsilon = refusal.budget_epsilon,
                delta = refusal.delta,
                reason = %refusal,
                "a member declined a differential-privacy task or round and left"
            );
        }
        self.shared
            .accept(&member, submission)
            .map_err(|e| self.log_refusal(&member, CALL, refuse_submit(&member, CALL, e)))?;
        self.shared.metrics.accepted(kind);
        Ok(Response::new(pb::Ack {}))
    }
}
