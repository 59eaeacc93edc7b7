//! `GET /healthz` (the process answers) and `GET /readyz` (the broker answers a metadata request
//! for the topic within [`READY_TIMEOUT`]).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::app::AppState;

/// How long `/readyz` waits for the broker.
pub const READY_TIMEOUT: Duration = Duration::from_millis(2_500);

/// Always 200 while the process serves HTTP.
pub async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({ "status": "ok" }))).into_response()
}

/// 200 when the topic's metadata can be read, 503 with the reason otherwise.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let check = tokio::time::timeout(READY_TIMEOUT, state.broker.check_ready()).await;
    let error = match check {
        Ok(Ok(())) => return (StatusCode::OK, Json(json!({ "status": "ready" }))).into_response(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!(
            "the broker did not answer a metadata request for topic `{}` within {}",
            state.settings.topic,
            humantime::format_duration(READY_TIMEOUT)
        ),
    };
    tracing::debug!(%error, "not ready");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({ "status": "not ready", "error": error })),
    )
        .into_response()
}
