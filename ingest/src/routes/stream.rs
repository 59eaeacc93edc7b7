//! `GET /events/stream`: the dashboard's updates as Server-Sent Events, one per second. The
//! first event is a snapshot, or after a reconnect with `Last-Event-ID` the deltas missed; a
//! stream that falls behind gets a fresh snapshot.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::Utc;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::app::AppState;
use crate::dashboard::Sent;

/// How soon a browser reconnects after the stream broke.
pub const RETRY: Duration = Duration::from_secs(1);

/// The handler.
pub async fn get_stream(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let dashboard = state.dashboard.clone();
    let (backlog, receiver) = dashboard.subscribe(last_event_id, Utc::now());
    let start = (VecDeque::from(backlog), receiver, dashboard);
    let stream =
        futures::stream::unfold(start, |(mut backlog, mut receiver, dashboard)| async move {
            loop {
                if let Some(sent) = backlog.pop_front() {
                    return Some((Ok(event(&sent)), (backlog, receiver, dashboard)));
                }
                match receiver.recv().await {
                    Ok(sent) => return Some((Ok(event(&sent)), (backlog, receiver, dashboard))),
                    Err(RecvError::Lagged(_)) => {
                        let (fresh, again) = dashboard.subscribe(None, Utc::now());
                        backlog = fresh.into();
                        receiver = again;
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn event(sent: &Arc<Sent>) -> Event {
    Event::default()
        .id(sent.id.to_string())
        .event(sent.kind.as_str())
        .retry(RETRY)
        .data(&sent.data)
}
