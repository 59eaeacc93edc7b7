//! The accept loop: HTTP/1.1 over every accepted TCP connection, with a cap on the connections
//! open at once, a timeout on reading a request's headers, and a graceful stop.
//!
//! Up to `max_connections` connections are served by the router. Past the cap, as many again
//! are answered `503` with `Retry-After` and `Connection: close` to their first request
//! (without reading its body), so a client learns to come back instead of hanging; beyond
//! twice the cap a connection is closed at once. A client that holds a connection without
//! finishing its request headers loses it after the header read timeout; the body and the
//! answer are under the request timeout of [`crate::shedding`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::shedding::overloaded;

/// How long open connections may take to finish their requests after the stop signal (a
/// dashboard stream never finishes by itself).
const STOP_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The limits on connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Connections served at once (`INGEST_MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// Longest a connection may take to send a request's headers (`INGEST_REQUEST_TIMEOUT`).
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    /// The defaults of `ingest.max_connections` and `ingest.request_timeout`.
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` under `limits` until `stop` resolves, then lets open
/// requests finish for a few seconds.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    stop: impl Future<Output = ()>,
) {
    let served = Arc::new(Semaphore::new(limits.max_connections));
    let refused = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let max = limits.max_connections;
    tokio::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let io = TokioIo::new(stream);
        if let Ok(permit) = served.clone().try_acquire_owned() {
            let service = TowerToHyperService::new(router.clone());
            let connection = graceful.watch(http.serve_connection(io, service));
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(permit);
            });
        } else if let Ok(permit) = refused.clone().try_acquire_owned() {
            let service = hyper::service::service_fn(move |_: Request<Incoming>| async move {
                Ok::<Response<Body>, Infallible>(overloaded(&format!(
                    "ingest has {max} connections open already (ingest.max_connections)"
                )))
            });
            let connection = graceful.watch(http.serve_connection(io, service));
            tokio::spawn(async move {
                let _ = connection.await;
                drop(permit);
            });
        } else {
            tracing::debug!("over twice the connection cap: closing a new connection at once");
        }
    }
    drop(listener);
    if tokio::time::timeout(STOP_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!("connections still open after the grace period; closing them");
    }
}

#[cfg(test)]
mod tests;
