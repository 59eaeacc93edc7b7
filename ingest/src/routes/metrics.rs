//! `GET /metrics`: the Prometheus exposition of [`crate::metrics::Metrics`], and the middleware
//! that counts every response by route and status code.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::app::AppState;
use crate::metrics::{CONTENT_TYPE, ProducerReadings};

/// The handler.
pub async fn get_metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(ProducerReadings {
        queue_depth: state.broker.queue_depth(),
        replacements: state.broker.producer_replacements(),
    });
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// Middleware: counts the response to every request, by method, matched route and status.
pub async fn count_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let response = next.run(request).await;
    state.metrics.count_request(
        method.as_str(),
        route.as_deref(),
        response.status().as_u16(),
    );
    response
}
