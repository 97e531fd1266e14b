//! The coordinator's accept loop: TCP connections in, established mutual-TLS
//! streams out, with every refused handshake logged and counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;

/// How long [`incoming`] gives a peer to complete its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; further connections wait in the kernel's
/// accept queue until one finishes or times out.
const MAX_HANDSHAKES: usize = 256;

/// Established connections waiting for the server to pick them up.
const READY_QUEUE: usize = 64;

/// Pause after an accept error (e.g. out of file descriptors) before retrying.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A shared count of refused TLS handshakes (bad or missing client
/// certificate, wrong TLS version, timeout, peer gone). Clones share the count.
#[derive(Clone, Debug, Default)]
pub struct Refusals(Arc<AtomicU64>);

impl Refusals {
    /// Handshakes refused so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn record(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Accepts TCP connections from `listener` and performs the TLS handshakes
/// with `config` concurrently, one task per handshake, each limited to
/// [`HANDSHAKE_TIMEOUT`]; yields the established streams, ready for
/// `tonic::transport::Server::serve_with_incoming_shutdown` (tonic then
/// exposes the client's certificates to [`request_identity`](crate::request_identity)).
///
/// Accepted sockets get `TCP_NODELAY`. A refused handshake is logged at warn
/// level with the peer's address and the reason and counted in the returned
/// [`Refusals`]. The stream never yields an error: accept errors are logged
/// and retried. The accept loop stops, and the listener is closed, when the
/// stream is dropped.
///
/// # Panics
/// When called outside a Tokio runtime (the accept loop is a spawned task).
pub fn incoming(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
) -> (
    impl Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> + Send + 'static,
    Refusals,
) {
    incoming_with_timeout(listener, config, HANDSHAKE_TIMEOUT)
}

/// [`incoming`] with a handshake timeout of your choosing.
///
/// # Panics
/// When called outside a Tokio runtime (the accept loop is a spawned task).
pub fn incoming_with_timeout(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
) -> (
    impl Stream<Item = Result<TlsStream<TcpStream>, std::io::Error>> + Send + 'static,
    Refusals,
) {
    let (ready, streams) = mpsc::channel(READY_QUEUE);
    let refusals = Refusals::default();
    tokio::spawn(accept_loop(
        listener,
        TlsAcceptor::from(config),
        handshake_timeout,
        ready,
        refusals.clone(),
    ));
    (ReceiverStream::new(streams), refusals)
}

type Ready = mpsc::Sender<Result<TlsStream<TcpStream>, std::io::Error>>;

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    handshake_timeout: Duration,
    ready: Ready,
    refusals: Refusals,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let slot = tokio::select! {
            () = ready.closed() => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = ready.closed() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a connection; retrying");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        let refusals = refusals.clone();
        tokio::spawn(async move {
            let outcome = handshake(&acceptor, tcp, handshake_timeout).await;
            drop(slot);
            match outcome {
                Ok(stream) => {
                    tracing::debug!(%peer, "TLS handshake completed");
                    // A send error means the server stopped; the connection just closes.
                    let _ = ready.send(Ok(stream)).await;
                }
                Err(reason) => refuse(&refusals, peer, &reason),
            }
        });
    }
    tracing::debug!("accept loop stopped");
}

async fn handshake(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    timeout: Duration,
) -> Result<TlsStream<TcpStream>, String> {
    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "no complete TLS handshake within {} ms",
            timeout.as_millis()
        )),
    }
}

fn refuse(refusals: &Refusals, peer: SocketAddr, reason: &str) {
    refusals.record();
    tracing::warn!(%peer, %reason, "refused a TLS handshake");
}
