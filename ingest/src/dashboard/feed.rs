//! The live feed of the dashboard: the shared [`Dashboard`] holding the fleet state and, once
//! per tick, a [`Frame`] (id, time, topic counts, fleet figures, map positions) broadcast to
//! every open stream. Each stream turns every frame into one message of its own: the frame plus
//! the page of the vehicle table it asked for ([`TableQuery`]). So every message is the whole
//! picture the page shows, and its size does not grow with the fleet: the figures are bounded
//! ([`super::state`]), the map carries at most [`DashboardLimits::map_vehicles`] positions and
//! the table one page. No message exceeds [`DashboardLimits::max_message_bytes`]: the map
//! gets at most three quarters of it and draws fewer vehicles rather than more, the table
//! leaves out trails, then rows, before it would overflow.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use super::messages::Incoming;
use super::positions::{Positions, recent_positions};
use super::row::VehicleRow;
use super::state::{Figures, FleetState, ONLINE_WITHIN};
use super::table::{TablePage, TableQuery, table_page};
use crate::topic_counts::TopicFigures;

/// Frames buffered per open stream; a stream further behind skips to the newest.
const STREAM_BUFFER: usize = 16;

/// What bounds the dashboard's memory and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardLimits {
    /// A vehicle whose latest event is older than this is forgotten
    /// (`INGEST_DASHBOARD_VEHICLE_TTL`).
    pub vehicle_ttl: Duration,
    /// Most vehicles drawn on the map: the most recently seen (`INGEST_DASHBOARD_MAP_VEHICLES`).
    pub map_vehicles: usize,
    /// Largest message, bytes of JSON (`INGEST_DASHBOARD_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
}

impl Default for DashboardLimits {
    /// The defaults of `config.master.toml`.
    fn default() -> Self {
        Self {
            vehicle_ttl: Duration::from_secs(3_600),
            map_vehicles: 5_000,
            max_message_bytes: 262_144,
        }
    }
}

/// The simulated area drawn by the map: a circle around the vehicles' origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MapArea {
    /// Latitude of the origin (x = y = 0).
    pub origin_lat: f64,
    /// Longitude of the origin.
    pub origin_lon: f64,
    /// Radius of the area, metres.
    pub radius_m: f64,
}

impl Default for MapArea {
    /// The defaults of `[vehicles]` in `config.master.toml`.
    fn default() -> Self {
        Self {
            origin_lat: 59.3293,
            origin_lon: 18.0686,
            radius_m: 2000.0,
        }
    }
}

/// The SSE event name of every message.
pub const EVENT_NAME: &str = "view";

/// The JSON of a frame.
#[derive(Debug, Serialize)]
struct FrameJson<'a> {
    at: DateTime<Utc>,
    #[serde(flatten)]
    received: &'a TopicFigures,
    #[serde(flatten)]
    figures: Figures,
    map: MapArea,
    #[serde(flatten)]
    positions: Positions,
    #[serde(skip_serializing_if = "Option::is_none")]
    reader_error: Option<&'a str>,
}

/// One tick's part of every stream's message: everything but the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// The SSE event id: increasing, one per tick.
    pub id: u64,
    /// The members of the message's JSON object (without the braces), `id` and `table` aside.
    members: String,
}

/// A message ready to send: its id and JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The SSE event id.
    pub id: u64,
    /// The JSON.
    pub data: String,
}

/// What `GET /events` answers beyond the topic counts: the figures now and the most
/// recently seen vehicles.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetView {
    /// The fleet-wide figures.
    #[serde(flatten)]
    pub figures: Figures,
    /// The area the map shows.
    pub map: MapArea,
    /// Why the output topics cannot be read, if they cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_error: Option<String>,
    /// The most recently seen vehicles, newest first.
    pub vehicles: Vec<VehicleRow>,
}

#[derive(Debug)]
struct Inner {
    state: FleetState,
    last_id: u64,
    latest: Option<Arc<Frame>>,
    received: TopicFigures,
    /// When the input topic last grew, by the ticks' clock: the fleet is sending.
    grew_at: Option<DateTime<Utc>>,
    reader_error: Option<String>,
}

impl Inner {
    /// The time "vehicles online" is counted back from at `now`. While events arrive (the
    /// input topic grew within [`ONLINE_WITHIN`]), the newest event time the state holds: the
    /// summaries come from the consumer, which may be behind, and a vehicle is not offline
    /// because its newest events are still on their way. Otherwise `now`.
    fn online_reference(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let sending = self.grew_at.is_some_and(|at| now - at <= ONLINE_WITHIN);
        match self.state.newest_seen() {
            Some(newest) if sending => newest.min(now),
            _ => now,
        }
    }
}

/// The dashboard shared by the reader, the ticker and the handlers.
#[derive(Debug)]
pub struct Dashboard {
    map: MapArea,
    limits: DashboardLimits,
    inner: Mutex<Inner>,
    sender: broadcast::Sender<Arc<Frame>>,
}

impl Dashboard {
    /// An empty dashboard whose first tick gets id `last_id + 1`. Starting from the wall
    /// clock in milliseconds ([`Self::starting_now`]) keeps ids increasing across restarts,
    /// as ticks come at most once per millisecond.
    pub fn new(map: MapArea, limits: DashboardLimits, last_id: u64) -> Self {
        let (sender, _) = broadcast::channel(STREAM_BUFFER);
        Self {
            map,
            limits,
            inner: Mutex::new(Inner {
                state: FleetState::default(),
                last_id,
                latest: None,
                received: TopicFigures::default(),
                grew_at: None,
                reader_error: None,
            }),
            sender,
        }
    }

    /// An empty dashboard with ids starting after the current time in milliseconds.
    pub fn starting_now(map: MapArea, limits: DashboardLimits) -> Self {
        let millis = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
        Self::new(map, limits, millis)
    }

    /// The oldest latest-event time of a vehicle kept at `now`.
    fn cutoff(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let ttl = TimeDelta::from_std(self.limits.vehicle_ttl).unwrap_or(TimeDelta::MAX);
        now.checked_sub_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent if a holder panicked: each change is one assignment.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Folds output messages into the state, skipping summaries of vehicles last seen longer
    /// than the time-to-live before `now`.
    pub fn apply(&self, messages: impl IntoIterator<Item = Incoming>, now: DateTime<Utc>) {
        let cutoff = self.cutoff(now);
        let mut inner = self.lock();
        for m in messages {
            if matches!(&m, Incoming::Summary(s) if s.last_seen < cutoff) {
                continue;
            }
            inner.state.apply(m);
        }
    }

    /// Records why the output topics cannot be read (`None`: they can again).
    pub fn set_reader_error(&self, error: Option<String>) {
        self.lock().reader_error = error;
    }

    /// Ends a tick at `now`: forgets the vehicles past their time-to-live, makes the next frame
    /// and sends it to every open stream.
    pub fn tick(&self, received: TopicFigures, now: DateTime<Utc>) -> Arc<Frame> {
        let mut inner = self.lock();
        if received.error.is_none() && received.events_received > inner.received.events_received {
            inner.grew_at = Some(now);
        }
        inner.received = received;
        let forgotten = inner.state.forget_older_than(self.cutoff(now));
        if forgotten > 0 {
            tracing::debug!(
                forgotten,
                "dashboard: forgot vehicles past their time-to-live"
            );
        }
        let id = inner.last_id + 1;
        let frame = Arc::new(self.frame(&inner, id, now));
        inner.last_id = id;
        inner.latest = Some(frame.clone());
        // No open stream is not an error.
        let _ = self.sender.send(frame.clone());
        frame
    }

    /// What a stream opened at `now` starts with (the latest frame, or one made now before
    /// the first tick) and the receiver of the frames after it.
    pub fn subscribe(&self, now: DateTime<Utc>) -> (Arc<Frame>, broadcast::Receiver<Arc<Frame>>) {
        let inner = self.lock();
        let receiver = self.sender.subscribe();
        let frame = match &inner.latest {
            Some(frame) => frame.clone(),
            None => Arc::new(self.frame(&inner, inner.last_id, now)),
        };
        (frame, receiver)
    }

    /// The message of `frame` for a stream showing the table page `query`.
    pub fn message(&self, frame: &Frame, query: &TableQuery) -> Sent {
        let table = table_page(&self.lock().state, query);
        let data = fit_table(frame, table, self.limits.max_message_bytes);
        Sent { id: frame.id, data }
    }

    /// The figures at `now` and the `limit` most recently seen vehicles.
    pub fn view(&self, limit: usize, now: DateTime<Utc>) -> FleetView {
        let inner = self.lock();
        FleetView {
            figures: inner.state.figures(inner.online_reference(now)),
            map: self.map,
            reader_error: inner.reader_error.clone(),
            vehicles: inner.state.recent_vehicles(limit),
        }
    }

    /// The frame `id` at `now`, with as many of the most recently seen vehicles (up to the
    /// map's cap) as fit in three quarters of the message cap.
    fn frame(&self, inner: &Inner, id: u64, now: DateTime<Utc>) -> Frame {
        let budget = self.limits.max_message_bytes - self.limits.max_message_bytes / 4;
        let figures = inner.state.figures(inner.online_reference(now));
        let mut limit = self.limits.map_vehicles;
        loop {
            let positions = recent_positions(&inner.state, limit);
            let drawn = positions.drawn();
            let positions_bytes = json_len(&positions.positions);
            let json = encode(&FrameJson {
                at: now,
                received: &inner.received,
                figures: figures.clone(),
                map: self.map,
                positions,
                reader_error: inner.reader_error.as_deref(),
            });
            if json.len() <= budget || drawn == 0 {
                if json.len() > budget {
                    tracing::warn!(
                        bytes = json.len(),
                        budget,
                        "dashboard: the fleet figures alone exceed their part of the message cap"
                    );
                }
                let members = json[1..json.len() - 1].to_owned();
                return Frame { id, members };
            }
            // Draw proportionally fewer, and at least one fewer, until the frame fits.
            let over = json.len() - budget;
            let fewer = drawn * positions_bytes.saturating_sub(over) / positions_bytes.max(1);
            limit = fewer.min(drawn - 1);
        }
    }
}

/// The message of `frame` with `table`, leaving out trails, then rows, from the end of the
/// page while it exceeds `cap` bytes.
fn fit_table(frame: &Frame, mut table: TablePage, cap: usize) -> String {
    let compose = |table: &TablePage| {
        format!(
            r#"{{"id":{},{},"table":{}}}"#,
            frame.id,
            frame.members,
            encode(table)
        )
    };
    let mut data = compose(&table);
    while data.len() > cap {
        if let Some(row) = table.rows.iter_mut().rev().find(|r| !r.trail.is_empty()) {
            row.trail.clear();
            table.trails_omitted += 1;
        } else if table.rows.pop().is_some() {
            table.rows_omitted += 1;
        } else {
            tracing::warn!(
                bytes = data.len(),
                cap,
                "dashboard: a message without table rows exceeds the message cap"
            );
            break;
        }
        data = compose(&table);
    }
    data
}

/// `value` as JSON; a value that cannot be encoded (none of the dashboard's) as an object
/// naming the error, so that a message stays valid JSON.
fn encode(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| {
        serde_json::json!({ "reader_error": format!("encoding the dashboard message: {e}") })
            .to_string()
    })
}

/// The length of `value` as JSON.
fn json_len(value: &impl Serialize) -> usize {
    encode(value).len()
}

#[cfg(test)]
mod tests;
