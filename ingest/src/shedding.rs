//! Load shedding per request: a timeout on reading the body and answering (408), and one cap on
//! the requests being served at once, shared by every route it covers; a request over the cap
//! is answered 503 with `Retry-After` at once instead of waiting (tower's `load_shed` over a
//! global `concurrency_limit`, tower-http's `timeout`).
//!
//! The cap on open connections is the accept loop's ([`crate::serve`]).

use std::sync::Arc;
use std::time::Duration;

use axum::BoxError;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;

/// Seconds a client is asked to wait after a 503 for load.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The limits on requests.
#[derive(Debug, Clone)]
pub struct RequestLimits {
    /// Longest a request may take from its headers to the answer, reading the body included;
    /// past it the answer is 408 and the connection is closed (`INGEST_REQUEST_TIMEOUT`).
    pub timeout: Duration,
    /// Requests served at once; more are answered 503 with `Retry-After`
    /// (`INGEST_MAX_CONCURRENT_REQUESTS`).
    pub max_concurrent: usize,
}

impl Default for RequestLimits {
    /// The defaults of `ingest.request_timeout` and `ingest.max_concurrent_requests`.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_concurrent: 512,
        }
    }
}

/// `router` with every route under the request timeout and the shared concurrency cap.
pub fn limit<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    limits: &RequestLimits,
) -> Router<S> {
    let permits = Arc::new(Semaphore::new(limits.max_concurrent));
    let max = limits.max_concurrent;
    let timeout = limits.timeout;
    router.layer(
        ServiceBuilder::new()
            .layer(HandleErrorLayer::new(move |e: BoxError| async move {
                overloaded(&format!(
                    "ingest is serving {max} requests already (ingest.max_concurrent_requests): {e}"
                ))
            }))
            .load_shed()
            .layer(GlobalConcurrencyLimitLayer::with_semaphore(permits))
            .map_response(move |response: Response| explain_timeout(response, timeout))
            .layer(TimeoutLayer::with_status_code(
                StatusCode::REQUEST_TIMEOUT,
                limits.timeout,
            )),
    )
}

/// The timeout layer's empty 408 as `{"error": ...}`, closing the connection (the rest of the
/// body is not read); any other response as it is.
fn explain_timeout(response: Response, timeout: Duration) -> Response {
    if response.status() != StatusCode::REQUEST_TIMEOUT {
        return response;
    }
    let message = format!(
        "the request took longer than {} (ingest.request_timeout), its body included",
        humantime::format_duration(timeout)
    );
    let mut response = ApiError::new(StatusCode::REQUEST_TIMEOUT, message).into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 503 with `Retry-After` and `{"error": message}`, closing the connection.
pub fn overloaded(message: &str) -> Response {
    let mut response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
        .with_header(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS))
        .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
