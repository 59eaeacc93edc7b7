//! The token checks, as middleware in front of the handlers, so that a request without a valid
//! token is refused (401/403) before its body is read: a client that is not allowed to send
//! cannot hold ingest busy with a large or slow body.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use fleet_common::Vin;

use crate::app::AppState;

/// The vehicle whose token a `POST /events` carried (only with tokens on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle(pub Vin);

/// Middleware of `POST /events`: with tokens on, the request needs a vehicle's token; the
/// vehicle goes to the handler as a [`Vehicle`] request extension.
pub async fn vehicle_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(tokens) = &state.tokens {
        match tokens.authenticate(request.headers()) {
            Ok(vin) => {
                let vehicle = Vehicle(vin.clone());
                request.extensions_mut().insert(vehicle);
            }
            Err(e) => return e.into_response(),
        }
    }
    next.run(request).await
}

/// Middleware of the dashboard (`GET /events`, `GET /events/stream`): with tokens on and
/// [`AppState::dashboard_requires_token`], the request needs a dashboard token, in the
/// `Authorization` header or the `access_token` query parameter.
pub async fn viewer_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let tokens = state
        .tokens
        .as_ref()
        .filter(|_| state.dashboard_requires_token);
    if let Some(tokens) = tokens
        && let Err(e) = tokens.authenticate_viewer(request.headers(), request.uri().query())
    {
        return e.into_response();
    }
    next.run(request).await
}
