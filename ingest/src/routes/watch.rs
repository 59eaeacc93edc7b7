//! `GET /events`: how many events the topic holds and the live fleet figures. Programs
//! (`Accept: application/json`) get JSON; browsers and everyone else get the live page.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use serde::Serialize;

use crate::app::AppState;
use crate::dashboard::FleetView;
use crate::negotiate::prefers_json;
use crate::page;
use crate::topic_counts::TopicFigures;

/// Vehicles listed in the JSON answer, most recently seen first.
pub const VEHICLES_LISTED: usize = 1000;

/// The JSON answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventCounts {
    /// The topic's counts: `events_received`, `accepted_by_this_replica`, `partitions`,
    /// `error`.
    #[serde(flatten)]
    pub counts: TopicFigures,
    /// The topic.
    pub topic: String,
    /// The fleet, from the consumer's output topics.
    #[serde(flatten)]
    pub fleet: FleetView,
}

/// The handler.
pub async fn get_events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accepted = state.accepted.load(Ordering::Relaxed);
    let counts = EventCounts {
        counts: state
            .topic_counts
            .figures(state.broker.as_ref(), accepted)
            .await,
        topic: state.settings.topic.clone(),
        fleet: state.dashboard.view(VEHICLES_LISTED, Utc::now()),
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if prefers_json(accept) {
        let status = if counts.counts.error.is_some() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        };
        (status, Json(counts)).into_response()
    } else {
        // The page always renders; it shows the broker error itself.
        Html(page::render(&counts)).into_response()
    }
}
