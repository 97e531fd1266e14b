//! Prometheus metrics: what an operator's dashboard shows while a task runs.
//!
//! The registry lives in [`Metrics`], which the service and the orchestrator
//! update as things happen; [`serve`] answers `GET /metrics` in the text
//! exposition format on an address the operator opts into. Labels take
//! values from small fixed sets (member names from the task file, call
//! names, gRPC status codes), so a peer cannot grow the number of series.
//! Nothing here is about patient data: counts, durations and losses only.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode, header};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// The content type of the text exposition format `prometheus-client` writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A scrape that has not sent its request head by then is dropped.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// A refused call: which call, and the gRPC status code it got.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Refusal {
    call: &'static str,
    reason: &'static str,
}

/// An accepted submission, by kind (`update`, `statistics`, ...).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

/// One member's figure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Site {
    site: String,
}

/// The coordinator's metrics. Cheap to update from any task: every metric is
/// atomic; the registry's lock is only taken to register or to encode, never
/// across an `.await`.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    members_expected: Gauge,
    members_joined: Gauge,
    step: Gauge,
    rounds: Counter,
    participants: Gauge,
    round_seconds: Histogram,
    train_loss: Gauge<f64, std::sync::atomic::AtomicU64>,
    rows: Family<Site, Gauge>,
    epsilon_spent: Family<Site, Gauge<f64, std::sync::atomic::AtomicU64>>,
    accepted: Family<Kind, Counter>,
    refused: Family<Refusal, Counter>,
}

impl Metrics {
    /// Metrics for a task with `members_expected` members.
    pub fn new(members_expected: usize) -> Metrics {
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            members_expected: Gauge::default(),
            members_joined: Gauge::default(),
            step: Gauge::default(),
            rounds: Counter::default(),
            participants: Gauge::default(),
            // 0.25 ms to ~4 s in factors of 2.
            round_seconds: Histogram::new(exponential_buckets(0.000_25, 2.0, 15)),
            train_loss: Gauge::default(),
            rows: Family::default(),
            epsilon_spent: Family::default(),
            accepted: Family::default(),
            refused: Family::default(),
        };
        metrics
            .members_expected
            .set(i64::try_from(members_expected).unwrap_or(i64::MAX));
        {
            let mut r = metrics.lock();
            r.register(
                "medfed_members_expected",
                "Members on the task's member list",
                metrics.members_expected.clone(),
            );
            r.register(
                "medfed_members_joined",
                "Members that have joined the task and not left it",
                metrics.members_joined.clone(),
            );
            r.register(
                "medfed_step",
                "Number of the step the coordinator has announced",
                metrics.step.clone(),
            );
            r.register(
                "medfed_rounds_completed",
                "Training rounds completed (a new global model exists)",
                metrics.rounds.clone(),
            );
            r.register(
                "medfed_round_participants",
                "Members whose answer went into the last completed round",
                metrics.participants.clone(),
            );
            r.register(
                "medfed_round_duration_seconds",
                "Time from announcing a round to having the next global model",
                metrics.round_seconds.clone(),
            );
            r.register(
                "medfed_train_loss",
                "Row-weighted mean training loss of the last round's starting model",
                metrics.train_loss.clone(),
            );
            r.register(
                "medfed_train_rows",
                "Training rows each member declared",
                metrics.rows.clone(),
            );
            r.register(
                "medfed_privacy_epsilon_spent",
                "DP tasks: the ε each member reports it has spent of its own budget (at its δ)",
                metrics.epsilon_spent.clone(),
            );
            r.register(
                "medfed_submissions_accepted",
                "Signed submissions accepted, by kind",
                metrics.accepted.clone(),
            );
            r.register(
                "medfed_refused_calls",
                "Calls refused, by call and gRPC status (not a member, bad signature, \
                 malformed, wrong step, duplicate, ...)",
                metrics.refused.clone(),
            );
        }
        metrics
    }

    /// The registry. Poisoning only means another thread panicked while
    /// encoding; the registry itself is still whole.
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Also exposes `collector`'s figures, read at every scrape.
    pub fn register_collector(&self, collector: impl Collector) {
        self.lock().register_collector(Box::new(collector));
    }

    /// `count` members have joined so far and not left.
    pub fn set_joined(&self, count: usize) {
        self.members_joined
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Step `step` was announced.
    pub fn set_step(&self, step: u64) {
        self.step.set(i64::try_from(step).unwrap_or(i64::MAX));
    }

    /// A round finished: `participants` answers went in, it took `seconds`
    /// and started from a model with this training loss.
    pub fn round_completed(&self, participants: usize, seconds: f64, train_loss: f64) {
        self.rounds.inc();
        self.participants
            .set(i64::try_from(participants).unwrap_or(i64::MAX));
        self.round_seconds.observe(seconds);
        self.train_loss.set(train_loss);
    }

    /// `site` declared `rows` training rows.
    pub fn set_rows(&self, site: &str, rows: u64) {
        self.rows
            .get_or_create(&Site {
                site: site.to_owned(),
            })
            .set(i64::try_from(rows).unwrap_or(i64::MAX));
    }

    /// `site` reports having spent `epsilon` of its privacy budget.
    pub fn set_epsilon_spent(&self, site: &str, epsilon: f64) {
        self.epsilon_spent
            .get_or_create(&Site {
                site: site.to_owned(),
            })
            .set(epsilon);
    }

    /// A submission of `kind` was accepted.
    pub fn accepted(&self, kind: &'static str) {
        self.accepted.get_or_create(&Kind { kind }).inc();
    }

    /// A call was refused with `code`.
    pub fn refused(&self, call: &'static str, code: tonic::Code) {
        self.refused
            .get_or_create(&Refusal {
                call,
                reason: reason(code),
            })
            .inc();
    }

    /// The text exposition of every metric.
    ///
    /// # Errors
    /// A collector failed to encode (a formatting error).
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.lock())?;
        Ok(text)
    }
}

/// A label value for a refusal's status code.
fn reason(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Unauthenticated => "unauthenticated",
        Code::PermissionDenied => "permission_denied",
        Code::InvalidArgument => "invalid_argument",
        Code::FailedPrecondition => "failed_precondition",
        Code::AlreadyExists => "already_exists",
        Code::NotFound => "not_found",
        Code::Unavailable => "unavailable",
        Code::ResourceExhausted => "resource_exhausted",
        _ => "other",
    }
}

/// A counter read from elsewhere at every scrape.
pub struct ReadCounter<F> {
    name: &'static str,
    help: &'static str,
    read: F,
}

impl<F> ReadCounter<F> {
    /// Exposes `read()` as the counter `name` (the `_total` suffix is added).
    pub fn new(name: &'static str, help: &'static str, read: F) -> ReadCounter<F> {
        ReadCounter { name, help, read }
    }
}

impl<F> std::fmt::Debug for ReadCounter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCounter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F: Fn() -> u64 + Send + Sync + 'static> Collector for ReadCounter<F> {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let counter = ConstCounter::new((self.read)());
        let metric =
            encoder.encode_descriptor(self.name, self.help, None, counter.metric_type())?;
        counter.encode(metric)
    }
}

/// Checks that `address` is a loopback address: the endpoint has no TLS and
/// no authentication, so it is for a local scraper (or a local proxy that
/// adds both), never for the network.
///
/// # Errors
/// `address` is not loopback.
pub fn check_address(address: SocketAddr) -> anyhow::Result<()> {
    if !address.ip().is_loopback() {
        bail!(
            "{address} is not a loopback address: the metrics endpoint has no TLS or \
             authentication, so it only listens on 127.0.0.1 or ::1; put a proxy in front of it \
             to expose it further"
        );
    }
    Ok(())
}

/// Binds the metrics endpoint on `address` (loopback only).
///
/// # Errors
/// A non-loopback address, or one that cannot be bound.
pub async fn bind(address: SocketAddr) -> anyhow::Result<TcpListener> {
    check_address(address)?;
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for metrics on {address}"))
}

/// Answers `GET /metrics` on `listener` until `shutdown` resolves. Every
/// other path gets 404, every other method 405.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let response = respond(&metrics, &request);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "metrics endpoint: connection ended with an error");
            }
        });
    }
}

fn respond<B>(metrics: &Metrics, request: &Request<B>) -> Response<Full<Bytes>> {
    let plain = |status: StatusCode, text: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match metrics.encode() {
        Ok(text) => {
            let mut response = Response::new(Full::new(Bytes::from(text)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(CONTENT_TYPE),
            );
            response
        }
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_labels_show_in_the_text_format() {
        let metrics = Metrics::new(4);
        metrics.set_joined(3);
        metrics.round_completed(3, 0.002, 0.61);
        metrics.round_completed(4, 0.003, 0.55);
        metrics.accepted("update");
        metrics.refused("join", tonic::Code::PermissionDenied);
        metrics.set_rows("site-a", 120);
        metrics.set_epsilon_spent("site-a", 0.75);
        metrics.register_collector(ReadCounter::new("medfed_test_read", "read", || 7));
        let text = metrics.encode().expect("encode");
        for line in [
            "medfed_members_expected 4",
            "medfed_members_joined 3",
            "medfed_rounds_completed_total 2",
            "medfed_round_participants 4",
            "medfed_round_duration_seconds_count 2",
            "medfed_train_loss 0.55",
            "medfed_train_rows{site=\"site-a\"} 120",
            "medfed_privacy_epsilon_spent{site=\"site-a\"} 0.75",
            "medfed_submissions_accepted_total{kind=\"update\"} 1",
            "medfed_refused_calls_total{call=\"join\",reason=\"permission_denied\"} 1",
            "medfed_test_read_total 7",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
        }
    }

    #[test]
    fn only_loopback_addresses_are_accepted() {
        assert!(check_address("127.0.0.1:0".parse().expect("address")).is_ok());
        assert!(check_address("[::1]:9464".parse().expect("address")).is_ok());
        let error =
            check_address("0.0.0.0:9464".parse().expect("address")).expect_err("wildcard refused");
        assert!(error.to_string().contains("loopback"), "{error}");
    }

    #[tokio::test]
    async fn the_endpoint_serves_metrics_and_refuses_other_paths() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let metrics = Arc::new(Metrics::new(2));
        metrics.round_completed(2, 0.001, 0.7);
        let listener = bind("127.0.0.1:0".parse().expect("address"))
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::clone(&metrics), async {
            let _ = stopped.await;
        }));
        let get = |path: &'static str| async move {
            let mut stream = tokio::net::TcpStream::connect(address)
                .await
                .expect("connect");
            stream
                .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .expect("write");
            let mut reply = String::new();
            stream.read_to_string(&mut reply).await.expect("read");
            reply
        };
        let reply = get("/metrics").await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.contains("medfed_rounds_completed_total 1"), "{reply}");
        assert!(reply.contains("application/openmetrics-text"), "{reply}");
        let reply = get("/other").await;
        assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
        let _ = stop.send(());
        server.await.expect("server stops");
    }
}
