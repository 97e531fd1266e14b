//! Starts the coordinator: binds, serves the gRPC service over mutual TLS,
//! runs the task, writes the model and summary, and shuts down cleanly.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use medfed_audit::{AuditKey, SigningKey};
use medfed_wire::limits::MAX_MESSAGE_BYTES;
use medfed_wire::pb::federation_server::FederationServer;

use crate::charts;
use crate::checkpoint::CheckpointStore;
use crate::config::TaskConfig;
use crate::exchange::{Exchange, LogSync};
use crate::metrics::{self, ReadCounter};
use crate::orchestrator::orchestrate;
use crate::progress::Progress;
use crate::report::{self, Summary};
use crate::service::FederationService;
use crate::state::Shared;

/// Everything `coordinator run` needs.
#[derive(Debug)]
pub struct RunOptions {
    /// The operator's task file.
    pub task: PathBuf,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Consortium CA certificate (PEM).
    pub ca: PathBuf,
    /// Coordinator certificate (PEM).
    pub cert: PathBuf,
    /// Coordinator private key (PEM).
    pub key: PathBuf,
    /// Folder for `model.json` and `summary.json`.
    pub out_dir: PathBuf,
    /// Where to write the bound address once listening (for scripts and tests).
    pub ready_file: Option<PathBuf>,
    /// Long-poll window of `NextInstruction`.
    pub poll_window: Duration,
    /// The coordinator's Ed25519 signing key (certified in `cert`), which
    /// signs its exchange log.
    pub signing_key: PathBuf,
    /// The audit key that encrypts the exchange log's payloads.
    pub audit_key: AuditKey,
    /// The exchange log (default: `exchange.log` in `out_dir`).
    pub audit_log: Option<PathBuf>,
    /// When the exchange log is flushed to disk.
    pub sync_policy: LogSync,
    /// Serve Prometheus metrics on this loopback address, if set.
    pub metrics_listen: Option<SocketAddr>,
}

/// Runs one task to its end.
///
/// # Errors
/// Bad task file or certificates, a port that cannot be bound, members that
/// do not answer in time, an interruption by `shutdown`, or outputs that
/// cannot be written.
pub async fn run(
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let config = TaskConfig::load(&options.task)?;
    let task_bytes = std::fs::read(&options.task)
        .with_context(|| format!("cannot read {}", options.task.display()))?;
    let store = CheckpointStore::new(options.out_dir.join("state.json"), &task_bytes);
    let resume = store.load()?;
    let tls = medfed_tls::server_config(&options.ca, &options.cert, &options.key)
        .context("cannot set up TLS")?;
    std::fs::create_dir_all(&options.out_dir)
        .with_context(|| format!("cannot create {}", options.out_dir.display()))?;
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("cannot listen on {}", options.listen))?;
    let address = listener.local_addr()?;
    let (incoming, refusals) = medfed_tls::incoming(listener, tls);
    tracing::info!(%address, task = %config.task.task_id, "coordinator listening");
    let metrics_listener = match options.metrics_listen {
        Some(listen) => Some(metrics::bind(listen).await?),
        None => None,
    };
    let metrics_address = match &metrics_listener {
        Some(listener) => {
            let bound = listener.local_addr()?;
            tracing::info!(address = %bound, "serving metrics at http://{bound}/metrics");
            Some(bound.to_string())
        }
        None => None,
    };
    if let Some(path) = &options.ready_file {
        report::write_json(
            path,
            &serde_json::json!({ "address": address.to_string(), "metrics_address": metrics_address }),
        )?;
    }

    // Who we are, and the key that signs our exchange log: the one our
    // certificate certifies, so an auditor needs only the consortium CA.
    let leaf = medfed_tls::load_certs(&options.cert)?
        .into_iter()
        .next()
        .with_context(|| format!("{} holds no certificate", options.cert.display()))?;
    let name = medfed_tls::identity_from_der(&leaf)?;
    let signing = SigningKey::from_file(&options.signing_key)?;
    let certified = medfed_tls::signing_key_from_der(&leaf)?;
    if certified != Some(*signing.public_key().as_bytes()) {
        bail!(
            "the signing key {} is not the one certified in {}",
            options.signing_key.display(),
            options.cert.display()
        );
    }
    let log_path = options
        .audit_log
        .clone()
        .unwrap_or_else(|| options.out_dir.join("exchange.log"));
    let (exchange, repair) = Exchange::open(
        &log_path,
        &config.task.task_id,
        &name,
        &signing,
        &options.audit_key,
        options.sync_policy,
    )
    .with_context(|| format!("cannot open the exchange log {}", log_path.display()))?;
    if let Some(repair) = repair {
        tracing::warn!(
            log = %log_path.display(),
            bytes_cut = repair.bytes_cut,
            "the exchange log ended in a torn entry; cut it and recorded the repair"
        );
    }
    let exchange = Arc::new(exchange);

    let shared = Shared::new(config.task.clone(), config.max_update_norm);
    shared.attach_log(Arc::clone(&exchange));
    // Before any member can call: a refusal is announced on these lines.
    let progress = Arc::new(Progress::new(config.task.model));
    shared.attach_progress(Arc::clone(&progress));
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(listener) = metrics_listener {
        let handshakes = refusals.clone();
        shared.metrics.register_collector(ReadCounter::new(
            "medfed_refused_connections",
            "TLS handshakes refused (no or bad client certificate, wrong TLS version, timeout)",
            move || handshakes.count(),
        ));
        let log = Arc::clone(&exchange);
        shared.metrics.register_collector(ReadCounter::new(
            "medfed_exchange_log_entries",
            "Entries this process appended to the exchange log",
            move || log.entries(),
        ));
        tokio::spawn(metrics::serve(
            listener,
            Arc::clone(&shared.metrics),
            async {
                let _ = metrics_stopped.await;
            },
        ));
    }
    let service = FederationServer::new(FederationService::new(
        Arc::clone(&shared),
        options.poll_window,
        Arc::clone(&exchange),
        name,
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .tcp_nodelay(true)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = server_stopped.await;
            }),
    );

    let strategy = config.strategy()?;
    let outcome = tokio::select! {
        outcome = orchestrate(&shared, &config, strategy.as_ref(), &progress, &store, resume) => outcome,
        () = shutdown => {
            let _ = stop_server.send(());
            bail!("interrupted before the task finished");
        }
    };
    let _ = stop_server.send(());
    let _ = stop_metrics.send(());
    match server.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "server ended with an error"),
        Err(e) => tracing::warn!(error = %e, "server task failed"),
    }
    let outcome = outcome?;
    exchange
        .sync()
        .with_context(|| format!("cannot flush the exchange log {}", log_path.display()))?;

    let refused_calls = shared.lock().refused_calls;
    let (mut summary, model) = report::build(
        &config.task,
        strategy.name(),
        &outcome,
        refusals.count(),
        refused_calls,
        started.elapsed().as_secs_f64(),
    );
    summary.exchange_log = Some(report::ExchangeLogSummary {
        path: log_path.display().to_string(),
        entries_written: exchange.entries(),
        last_hash: exchange.last_hash(),
    });
    summary.charts = charts::write_all(&options.out_dir, &summary, &outcome);
    let model_path = options.out_dir.join("model.json");
    let summary_path = options.out_dir.join("summary.json");
    report::write_json(&model_path, &model)?;
    report::write_json(&summary_path, &summary)?;
    // The run is complete: the same command now starts the task afresh.
    std::fs::remove_file(store.path())
        .with_context(|| format!("cannot remove {}", store.path().display()))?;
    progress.message(&report::render_table(&summary));
    progress.message(&format!(
        "model written to {}\nsummary written to {}",
        model_path.display(),
        summary_path.display()
    ));
    if !summary.charts.is_empty() {
        progress.message(&format!(
            "charts written to {}: {}",
            options.out_dir.display(),
            summary.charts.join(", ")
        ));
    }
    Ok(summary)
}
