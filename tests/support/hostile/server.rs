//! The hostile coordinator: an in-process gRPC server on 127.0.0.1 that
//! speaks the real wire contract over mutual TLS, serves a crafted task and
//! a scripted list of instructions, and keeps every call a node makes.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use medfed_wire::pb::federation_server::{Federation, FederationServer};
use medfed_wire::pb::{self, submission::Body};
use medfed_wire::{Instruction, Step, Task};
use prost::Message;
use tonic::{Request, Response, Status};

/// What the hostile coordinator serves: the task `Join` and `Describe`
/// answer, and the instructions `NextInstruction` hands out in step order.
#[derive(Clone, Debug)]
pub struct Script {
    /// The task, as raw protobuf (so a test may set any field, valid or
    /// not).
    pub task: pb::TaskSpec,
    /// The instructions, in increasing step order.
    pub instructions: Vec<pb::Instruction>,
}

impl Script {
    /// `task` with no instructions yet.
    pub fn new(task: &Task) -> Script {
        Script {
            task: medfed_wire::convert::task_to_pb(task),
            instructions: Vec::new(),
        }
    }

    /// Adds `instruction` as the next step (numbered from 1).
    #[must_use]
    pub fn then(mut self, instruction: Instruction) -> Script {
        let step = self.instructions.last().map_or(1, |last| last.step + 1);
        self.instructions
            .push(medfed_wire::convert::step_to_pb(&Step {
                step,
                instruction,
            }));
        self
    }

    /// The step number the next [`Script::then`] would get.
    pub fn next_step(&self) -> u64 {
        self.instructions.last().map_or(1, |last| last.step + 1)
    }
}

/// A `Join` or `Describe` call as received.
#[derive(Clone, Debug)]
pub struct Call {
    /// The caller's identity (its client certificate's Common Name).
    pub peer: Option<String>,
    /// The task it asked for (empty: any).
    pub task_id: String,
    /// The protocol version it speaks.
    pub protocol_version: u32,
}

/// A `Submit` call as received.
#[derive(Clone, Debug)]
pub struct Submitted {
    /// The caller's identity.
    pub peer: Option<String>,
    /// The signed message exactly as it arrived.
    pub signed: pb::Signed,
    /// Whether the signature is valid under the signing key certified in
    /// the caller's TLS certificate.
    pub signature_valid: bool,
    /// The body decoded as a `Submission` (`None`: it does not decode, or
    /// names no kind).
    pub body: Option<Body>,
}

impl Submitted {
    /// The exchange-log kind of the body (`"undecodable"` when it does not
    /// decode).
    pub fn kind(&self) -> &'static str {
        self.body
            .as_ref()
            .map_or("undecodable", medfed_wire::submission::kind)
    }

    /// The refusal, when this is one.
    pub fn refusal(&self) -> Option<&pb::Refusal> {
        match &self.body {
            Some(Body::Refusal(refusal)) => Some(refusal),
            _ => None,
        }
    }

    /// The evaluation report, when this is one.
    pub fn evaluation(&self) -> Option<&pb::EvaluationReport> {
        match &self.body {
            Some(Body::Evaluation(report)) => Some(report),
            _ => None,
        }
    }
}

/// Everything the hostile coordinator received, in arrival order.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// `Join` calls.
    pub joins: Vec<Call>,
    /// `Describe` calls.
    pub describes: Vec<Call>,
    /// The `after_step` of every `NextInstruction` call.
    pub polls: Vec<u64>,
    /// `Submit` calls.
    pub submissions: Vec<Submitted>,
}

impl Received {
    /// The kind of every submission, in order.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.submissions.iter().map(Submitted::kind).collect()
    }
}

/// Plays the coordinator's side step by step: asked for the instruction
/// that follows the script's last one, it computes it from everything the
/// node has sent so far (`None`: the script ends). It is called only once
/// the node has moved past the last step handed out.
pub trait Director: Send {
    /// The instruction to hand out as `step`, given everything received
    /// so far.
    fn next(&mut self, received: &Received, step: u64) -> Option<Instruction>;
}

/// The script being served and what has arrived.
struct State {
    script: Script,
    received: Received,
    director: Option<Box<dyn Director>>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("script", &self.script)
            .field("received", &self.received)
            .field("director", &self.director.is_some())
            .finish()
    }
}

/// The service behind the server. Its lock is a std `Mutex`: it is held only
/// to read the script or record a call, never across an `.await`.
struct Service {
    state: Arc<Mutex<State>>,
    /// The name the coordinator's certificate carries, given in every
    /// `JoinResponse`.
    name: String,
}

impl Service {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn call<T>(request: &Request<T>, task_id: String, protocol_version: u32) -> Call {
        Call {
            peer: medfed_tls::request_identity(request),
            task_id,
            protocol_version,
        }
    }

    fn answer(&self) -> pb::JoinResponse {
        pb::JoinResponse {
            task: Some(self.state().script.task.clone()),
            coordinator: self.name.clone(),
        }
    }
}

/// Whether `signed` carries a valid signature by the key certified in the
/// caller's leaf certificate.
fn signature_valid<T>(request: &Request<T>, signed: &pb::Signed) -> bool {
    let Some(certs) = request.peer_certs() else {
        return false;
    };
    let Some(Ok(Some(key))) = certs.first().map(medfed_tls::signing_key_from_der) else {
        return false;
    };
    let Ok(signature) = <[u8; 64]>::try_from(signed.signature.as_slice()) else {
        return false;
    };
    medfed_audit::PublicKey::from_bytes(key).verify(
        &signed.body,
        &medfed_audit::Signature::from_bytes(signature),
    )
}

impl Service {
    /// A join or describe call, as recorded.
    fn join_call(request: &Request<pb::JoinRequest>) -> Call {
        let pb::JoinRequest {
            task_id,
            protocol_version,
        } = request.get_ref().clone();
        Service::call(request, task_id, protocol_version)
    }
}

#[tonic::async_trait]
impl Federation for Service {
    async fn join(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let call = Service::join_call(&request);
        self.state().received.joins.push(call);
        Ok(Response::new(self.answer()))
    }

    async fn describe(
        &self,
        request: Request<pb::JoinRequest>,
    ) -> Result<Response<pb::JoinResponse>, Status> {
        let call = Service::join_call(&request);
        self.state().received.describes.push(call);
        Ok(Response::new(self.answer()))
    }

    async fn next_instruction(
        &self,
        request: Request<pb::InstructionRequest>,
    ) -> Result<Response<pb::Instruction>, Status> {
        let after_step = request.get_ref().after_step;
        let mut state = self.state();
        state.received.polls.push(after_step);
        let last = state.script.instructions.last().map_or(0, |i| i.step);
        if after_step >= last {
            let State {
                script,
                received,
                director,
            } = &mut *state;
            let step = script.next_step();
            if let Some(instruction) = director.as_mut().and_then(|d| d.next(received, step)) {
                *script = script.clone().then(instruction);
            }
        }
        let next = state
            .script
            .instructions
            .iter()
            .find(|instruction| instruction.step > after_step)
            .cloned();
        let instruction = next.unwrap_or_else(|| {
            let last = state.script.instructions.last().map_or(0, |i| i.step);
            medfed_wire::convert::step_to_pb(&Step {
                step: last.max(after_step) + 1,
                instruction: Instruction::Finished {
                    reason: "the script has ended".into(),
                },
            })
        });
        Ok(Response::new(instruction))
    }

    async fn submit(&self, request: Request<pb::Signed>) -> Result<Response<pb::Ack>, Status> {
        let signed = request.get_ref().clone();
        let submitted = Submitted {
            peer: medfed_tls::request_identity(&request),
            signature_valid: signature_valid(&request, &signed),
            body: pb::Submission::decode(signed.body.as_slice())
                .ok()
                .and_then(|submission| submission.body),
            signed,
        };
        self.state().received.submissions.push(submitted);
        Ok(Response::new(pb::Ack {}))
    }
}

/// A hostile coordinator listening on 127.0.0.1, on its own Tokio runtime;
/// stopped when dropped.
pub struct HostileCoordinator {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), tonic::transport::Error>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl HostileCoordinator {
    /// Starts serving `script` on a free port of 127.0.0.1 with the
    /// coordinator's certificate from the consortium PKI in `pki` (as
    /// `medfed-certs demo` lays it out: `coordinator/ca.pem`,
    /// `coordinator/coordinator.pem`, `coordinator/coordinator.key`).
    ///
    /// # Panics
    /// When the certificates cannot be read or the port cannot be bound.
    pub fn start(pki: &Path, script: Script) -> HostileCoordinator {
        let dir = pki.join("coordinator");
        let cert = dir.join("coordinator.pem");
        let tls =
            medfed_tls::server_config(&dir.join("ca.pem"), &cert, &dir.join("coordinator.key"))
                .expect("coordinator TLS configuration");
        let leaf = medfed_tls::load_certs(&cert).expect("coordinator certificate");
        let name = medfed_tls::identity_from_der(&leaf[0]).expect("coordinator name");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let state = Arc::new(Mutex::new(State {
            script,
            received: Received::default(),
            director: None,
        }));
        let service = Service {
            state: Arc::clone(&state),
            name,
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (address, server) = runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1:0");
            let address = listener.local_addr().expect("bound address");
            let (incoming, _refusals) = medfed_tls::incoming(listener, tls);
            let limit = medfed_wire::limits::MAX_MESSAGE_BYTES;
            let server = tokio::spawn(
                tonic::transport::Server::builder()
                    .add_service(
                        FederationServer::new(service)
                            .max_decoding_message_size(limit)
                            .max_encoding_message_size(limit),
                    )
                    .serve_with_incoming_shutdown(incoming, async {
                        let _ = stopped.await;
                    }),
            );
            (address, server)
        });
        HostileCoordinator {
            address,
            state,
            stop: Some(stop),
            server: Some(server),
            runtime: Some(runtime),
        }
    }

    /// The address a node dials, e.g. `https://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("https://{}", self.address)
    }

    /// Serves `script` from now on (what was received is kept).
    pub fn serve(&self, script: Script) {
        self.lock().script = script;
    }

    /// Hands the steps after the script's last to `director`.
    pub fn direct(&self, director: Box<dyn Director>) {
        self.lock().director = Some(director);
    }

    /// Everything received so far.
    pub fn received(&self) -> Received {
        self.lock().received.clone()
    }

    /// Stops serving and returns everything received.
    pub fn stop(mut self) -> Received {
        self.shut_down();
        self.received()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let (Some(runtime), Some(server)) = (self.runtime.take(), self.server.take()) {
            // A node still connected would hold a graceful shutdown open;
            // give it a moment, then drop whatever is left.
            let _ = runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(2), server).await });
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

impl Drop for HostileCoordinator {
    fn drop(&mut self) {
        self.shut_down();
    }
}
