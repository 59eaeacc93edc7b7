//! `GET /openapi.json`: the API description of [`crate::openapi`] for this process's settings.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use crate::app::AppState;
use crate::openapi;

/// The handler.
pub async fn get_openapi(State(state): State<AppState>) -> Json<Value> {
    Json(openapi::document(
        &state.settings,
        state.tokens.is_some(),
        state.tokens.is_some() && state.dashboard_requires_token,
        state.rate_limiter.per_second(),
    ))
}
