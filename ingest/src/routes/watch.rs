//! `GET /events`: how many events the topic holds. Programs (`Accept: application/json`) get
//! JSON; browsers and everyone else get the live page.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::app::AppState;
use crate::broker::PartitionWatermarks;
use crate::negotiate::prefers_json;
use crate::page;

/// The JSON answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventCounts {
    /// Records in the topic: the sum of the partitions' high watermarks. Counts what every
    /// replica ever produced and survives restarts.
    pub events_received: i64,
    /// Records this replica had acknowledged since it started.
    pub accepted_by_this_replica: u64,
    /// The topic.
    pub topic: String,
    /// Per-partition watermarks.
    pub partitions: Vec<PartitionWatermarks>,
    /// Why the broker could not be asked (then the other broker figures are 0 and the status 503).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The handler.
pub async fn get_events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let counts = current(&state).await;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    if prefers_json(accept) {
        let status = if counts.error.is_some() {
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

async fn current(state: &AppState) -> EventCounts {
    let reading = state.topic_counts.get(state.broker.as_ref()).await;
    let accepted_by_this_replica = state.accepted.load(Ordering::Relaxed);
    let topic = state.settings.topic.clone();
    match reading {
        Ok(snapshot) => EventCounts {
            events_received: snapshot.events_received(),
            accepted_by_this_replica,
            topic,
            partitions: snapshot.partitions.clone(),
            error: None,
        },
        Err(e) => EventCounts {
            events_received: 0,
            accepted_by_this_replica,
            topic,
            partitions: Vec::new(),
            error: Some(e.to_string()),
        },
    }
}
