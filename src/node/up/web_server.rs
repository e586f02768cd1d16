//! The web server: the axum app over plain HTTP (`axum::serve`), or over TLS
//! (`--web-tls-cert`/`--web-tls-key`, rustls with the ring provider, HTTP/1.1) through
//! an accept loop of our own, since axum 0.7 serves only a plain `TcpListener`. Either
//! way each request carries the client's address (`ConnectInfo`) for the login
//! throttle.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::Instrument;

/// Longest TLS handshake; a client that stalls longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait at shutdown for TLS connections to end after the stop.
const DRAIN: Duration = Duration::from_secs(3);

/// The TLS acceptor for a PEM certificate chain and private key.
pub async fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let cert_pem = tokio::fs::read(cert)
        .await
        .with_context(|| format!("cannot read --web-tls-cert {}", cert.display()))?;
    let key_pem = tokio::fs::read(key)
        .await
        .with_context(|| format!("cannot read --web-tls-key {}", key.display()))?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e:?}", cert.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
        cert.display()
    );
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| anyhow::anyhow!("{}: not a PEM private key: {e:?}", key.display()))?;
    // ring, not rustls's default aws-lc-rs (a large C and cmake build for the 2-core
    // machines). rustls deprecates ring's provider only for lacking post-quantum key
    // exchange, which a node's web UI does without.
    #[allow(deprecated)]
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .with_context(|| {
            format!(
                "the key {} does not fit the certificate {} (or is of an unsupported kind)",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `stop`: over TLS with `tls`, else plain HTTP.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    match tls {
        None => {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        }
        Some(acceptor) => {
            serve_tls(listener, app, acceptor, stop).await;
            Ok(())
        }
    }
}

/// The TLS accept loop: one task per connection (handshake, then HTTP/1.1), all owned
/// by a tracker and ended by `stop`.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    acceptor: TlsAcceptor,
    stop: CancellationToken,
) {
    let tasks = TaskTracker::new();
    loop {
        let (tcp, peer) = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors and the like: wait rather than spin.
                    tracing::warn!("web server: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (acceptor, app, stop) = (acceptor.clone(), app.clone(), stop.clone());
        let span = tracing::debug_span!("web_tls", %peer);
        tasks.spawn(
            async move {
                let stream =
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => return tracing::debug!("TLS handshake timed out"),
                    };
                let service =
                    hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        app.clone().oneshot(req)
                    });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service);
                tokio::select! {
                    r = conn => if let Err(e) = r {
                        tracing::debug!("connection ended: {e}");
                    },
                    _ = stop.cancelled() => {}
                }
            }
            .instrument(span),
        );
    }
    tasks.close();
    let _ = tokio::time::timeout(DRAIN, tasks.wait()).await;
}
