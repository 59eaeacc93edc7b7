//! `GET /events/stream?sort=&order=&page=&page_size=`: the dashboard as Server-Sent Events,
//! one `view` event per second, each the whole picture the page shows: the fleet figures, the
//! map's positions and the page of the vehicle table the query asks for (see
//! [`crate::dashboard::table`]). The first event is sent at once; a reconnecting browser simply
//! gets the current picture, so `Last-Event-ID` needs no answer of its own. A stream that falls
//! behind skips to the newest frame. To show another page, the page opens a new stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use chrono::Utc;
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::app::AppState;
use crate::dashboard::{EVENT_NAME, Frame, Sent, TableQuery};
use crate::error::ApiError;

/// How soon a browser reconnects after the stream broke.
pub const RETRY: Duration = Duration::from_secs(1);

/// The handler: 400 for a query the table cannot answer.
pub async fn get_stream(
    State(state): State<AppState>,
    query: Result<Query<TableQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("reading the table query: {}", e.body_text()),
        )
    })?;
    let query = query
        .checked()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let dashboard = state.dashboard.clone();
    let (first, receiver) = dashboard.subscribe(Utc::now());
    let start: (Option<Arc<Frame>>, _, _) = (Some(first), receiver, dashboard);
    let stream = futures::stream::unfold(
        start,
        move |(mut next, mut receiver, dashboard)| async move {
            loop {
                if let Some(frame) = next.take() {
                    let event = event(&dashboard.message(&frame, &query));
                    return Some((Ok(event), (None, receiver, dashboard)));
                }
                match receiver.recv().await {
                    Ok(frame) => next = Some(frame),
                    Err(RecvError::Lagged(_)) => {
                        let (newest, again) = dashboard.subscribe(Utc::now());
                        next = Some(newest);
                        receiver = again;
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn event(sent: &Sent) -> Event {
    Event::default()
        .id(sent.id.to_string())
        .event(EVENT_NAME)
        .retry(RETRY)
        .data(&sent.data)
}
