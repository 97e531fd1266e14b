//! A node's connection to the coordinator: a tonic channel over mutual TLS.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;
use tonic::codegen::http::uri::Scheme;
use tonic::transport::{Channel, Endpoint};

use crate::TlsError;

/// How long [`connect`] waits for TCP, TLS and HTTP/2 to be set up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a tonic [`Channel`] to `uri` (`https://host:port`) over mutual TLS
/// with `config` (see [`client_config`](crate::client_config)).
///
/// The coordinator's certificate must chain to the consortium CA of
/// `config` and carry `server_name` (a DNS name such as `localhost`, or an
/// IP address such as `127.0.0.1`) as a subject alternative name. The
/// connection is made eagerly (TCP with `TCP_NODELAY`, TLS 1.3, HTTP/2)
/// within [`CONNECT_TIMEOUT`].
///
/// With TLS 1.3 the coordinator checks the node's certificate after the
/// node considers the handshake done, so a node whose certificate the
/// coordinator refuses typically learns it on its first RPC, not here.
///
/// # Errors
/// [`TlsError::InvalidUri`] for an address that is not `https://host[:port]`
/// (port 443 when absent), [`TlsError::InvalidServerName`] for a bad
/// `server_name`, and [`TlsError::Connect`] when the coordinator cannot be
/// reached, its certificate is refused, or the connection times out.
pub async fn connect(
    uri: &str,
    server_name: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Channel, TlsError> {
    let invalid = |reason: &str| TlsError::InvalidUri {
        uri: uri.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed: Uri = uri.parse().map_err(|e| invalid(&format!("{e}")))?;
    if parsed.scheme() != Some(&Scheme::HTTPS) {
        return Err(invalid("the scheme must be https"));
    }
    let host = parsed.host().ok_or_else(|| invalid("no host"))?;
    let port = parsed.port_u16().unwrap_or(443);
    if parsed.path() != "/" && !parsed.path().is_empty() {
        return Err(invalid("a path is not allowed"));
    }
    let address = format!("{host}:{port}");
    let name =
        ServerName::try_from(server_name.to_owned()).map_err(|_| TlsError::InvalidServerName {
            name: server_name.to_owned(),
        })?;

    // The endpoint is `http://` so that tonic does not look for a TLS
    // configuration of its own: TLS is done by the connector below. The
    // origin keeps `https` in the requests' `:scheme`.
    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .map_err(|e| invalid(&e.to_string()))?
        .origin(parsed.clone())
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true);
    let connector = TlsConnector::from(config);
    let target = address.clone();
    let make = tower::service_fn(move |_: Uri| {
        let connector = connector.clone();
        let name = name.clone();
        let target = target.clone();
        async move {
            let tcp = TcpStream::connect(&target).await?;
            tcp.set_nodelay(true)?;
            let tls = connector.connect(name, tcp).await?;
            Ok::<_, std::io::Error>(TokioIo::new(tls))
        }
    });
    endpoint
        .connect_with_connector(make)
        .await
        .map_err(|error| TlsError::Connect {
            uri: uri.to_owned(),
            detail: chain(&error),
        })
}

/// An error and its causes as one line, without repeats.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Whether `error` (for example a failed call's `tonic::Status`) was caused
/// by a TLS failure that retrying cannot fix: the peer refused our
/// certificate, or we refused its certificate. Walks the whole source chain,
/// including the I/O errors that wrap rustls errors.
pub fn is_tls_refusal(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(current) = next {
        if current.downcast_ref::<rustls::Error>().is_some() {
            return true;
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some())
            {
                return true;
            }
            // h2 rebuilds I/O errors from their kind and text, dropping the
            // rustls error inside, so recognise rustls's own wording too.
            let text = io.to_string();
            if text.starts_with("received fatal alert")
                || text.starts_with("invalid peer certificate")
                || text.starts_with("peer sent no certificates")
            {
                return true;
            }
        }
        next = current.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Arc<rustls::ClientConfig> {
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
    }

    #[tokio::test]
    async fn rejects_non_https_addresses() {
        for bad in [
            "http://127.0.0.1:1",
            "127.0.0.1:1",
            "https://",
            "https://h:1/x",
        ] {
            let error = connect(bad, "localhost", config()).await.unwrap_err();
            assert!(
                matches!(error, TlsError::InvalidUri { .. }),
                "{bad}: {error:?}"
            );
            assert!(error.to_string().contains(bad), "{error}");
        }
    }

    #[tokio::test]
    async fn rejects_bad_server_names() {
        let error = connect("https://127.0.0.1:1", "not a name", config())
            .await
            .unwrap_err();
        assert!(
            matches!(error, TlsError::InvalidServerName { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn unreachable_server_is_an_error_not_a_panic() {
        // Bind then drop a listener: nothing listens on that port any more.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let uri = format!("https://127.0.0.1:{port}");
        let error = connect(&uri, "127.0.0.1", config()).await.unwrap_err();
        assert!(matches!(error, TlsError::Connect { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&uri), "{message}");
        assert!(message.to_lowercase().contains("refused"), "{message}");
    }
}
