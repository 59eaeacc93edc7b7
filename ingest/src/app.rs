//! The HTTP application: shared state and the router.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::auth::Tokens;
use crate::broker::Broker;
use crate::dashboard::{Dashboard, DashboardLimits, MapArea};
use crate::metrics::Metrics;
use crate::rate_limit::VinRateLimiter;
use crate::routes;
use crate::shedding::{self, RequestLimits};
use crate::topic_counts::TopicCounts;

/// Settings the handlers need.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The topic events go to (shown on the page and in the JSON).
    pub topic: String,
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Most records one request may carry; a body with more is refused with 413.
    pub max_records_per_request: usize,
    /// How long a request waits for the broker's acknowledgements.
    pub produce_timeout: Duration,
    /// Events per second one vehicle may send at start; 0 turns rate limiting off. The live
    /// value is the rate limiter's ([`AppState::rate_limiter`]).
    pub rate_limit_per_vin: u32,
}

/// Everything the handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The broker all requests produce to.
    pub broker: Arc<dyn Broker>,
    /// The settings.
    pub settings: Arc<Settings>,
    /// Records this replica had acknowledged since it started.
    pub accepted: Arc<AtomicU64>,
    /// Cached topic watermarks for `GET /events`.
    pub topic_counts: Arc<TopicCounts>,
    /// Whether the last produce failed: an outage is logged when it starts and ends, not on
    /// every request.
    pub broker_failing: Arc<AtomicBool>,
    /// What `GET /metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Per-vehicle token buckets at the live rate (0: off).
    pub rate_limiter: Arc<VinRateLimiter>,
    /// Per-vehicle bearer tokens; `None` when authentication is off.
    pub tokens: Option<Arc<Tokens>>,
    /// Whether, with tokens on, the dashboard needs a dashboard token too.
    pub dashboard_requires_token: bool,
    /// The request timeout and the cap on requests served at once.
    pub request_limits: RequestLimits,
    /// The live fleet dashboard of `GET /events` and `GET /events/stream`.
    pub dashboard: Arc<Dashboard>,
}

impl AppState {
    /// State around `broker` with fresh counters.
    pub fn new(broker: Arc<dyn Broker>, settings: Settings) -> Self {
        let rate_limiter = Arc::new(VinRateLimiter::new(settings.rate_limit_per_vin));
        Self {
            broker,
            rate_limiter,
            tokens: None,
            dashboard_requires_token: true,
            request_limits: RequestLimits::default(),
            settings: Arc::new(settings),
            accepted: Arc::default(),
            topic_counts: Arc::default(),
            broker_failing: Arc::default(),
            metrics: Arc::default(),
            dashboard: Arc::new(Dashboard::starting_now(
                MapArea::default(),
                DashboardLimits::default(),
            )),
        }
    }

    /// The same state with `POST /events` requiring a vehicle's token of `tokens`, and the
    /// dashboard a dashboard token when `dashboard_requires_token`.
    pub fn with_tokens(mut self, tokens: Tokens, dashboard_requires_token: bool) -> Self {
        self.tokens = Some(Arc::new(tokens));
        self.dashboard_requires_token = dashboard_requires_token;
        self
    }

    /// The same state under `limits`.
    pub fn with_request_limits(mut self, limits: RequestLimits) -> Self {
        self.request_limits = limits;
        self
    }

    /// The same state showing `dashboard`.
    pub fn with_dashboard(mut self, dashboard: Arc<Dashboard>) -> Self {
        self.dashboard = dashboard;
        self
    }
}

/// The router: `/events` (POST to ingest, GET to watch), `/events/stream` (the live updates),
/// `/healthz`, `/readyz`, `/metrics`,
/// `/openapi.json`. Every response is counted in the metrics. The tokens are checked before a
/// body is read; the work routes (`/events`, `/events/stream`, `/openapi.json`) are under the
/// request timeout and the cap on concurrent requests ([`shedding`]), the probes and metrics
/// are not, so that an overloaded ingest can still be watched.
pub fn app(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    let vehicle = from_fn_with_state(state.clone(), routes::guard::vehicle_token);
    let viewer = from_fn_with_state(state.clone(), routes::guard::viewer_token);
    let work = Router::new()
        .route(
            "/events",
            get(routes::watch::get_events)
                .route_layer(viewer.clone())
                .merge(post(routes::ingest::post_events).route_layer(vehicle)),
        )
        .route(
            "/events/stream",
            get(routes::stream::get_stream).route_layer(viewer),
        )
        .route("/openapi.json", get(routes::openapi::get_openapi));
    shedding::limit(work, &state.request_limits)
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(routes::metrics::get_metrics))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            routes::metrics::count_requests,
        ))
        .with_state(state)
}

#[cfg(test)]
mod tests;
