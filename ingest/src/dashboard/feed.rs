//! The live feed of the dashboard: the shared [`Dashboard`] holding the fleet state, one
//! update per tick (a delta: the fleet figures plus the vehicles changed since the last tick)
//! with monotonically increasing ids, broadcast to every open stream, and the last
//! [`RECENT_KEPT`] deltas kept so that a client reconnecting with `Last-Event-ID` gets exactly
//! what it missed. A client too far behind (or from an earlier run) gets a full snapshot.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use super::messages::Incoming;
use super::state::{Figures, FleetState, VehicleRow};
use crate::topic_counts::TopicFigures;

/// Deltas kept for clients that reconnect.
pub const RECENT_KEPT: usize = 120;
/// Updates buffered per open stream; a stream further behind gets a fresh snapshot.
const STREAM_BUFFER: usize = 16;

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

/// Whether an update replaces the client's picture or amends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Everything: all vehicles with their trails.
    Snapshot,
    /// The figures and the vehicles changed since the previous update.
    Delta,
}

impl Kind {
    /// The SSE event name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Delta => "delta",
        }
    }
}

/// The JSON of an update.
#[derive(Debug, Serialize)]
struct Update<'a> {
    id: u64,
    kind: Kind,
    at: DateTime<Utc>,
    #[serde(flatten)]
    received: &'a TopicFigures,
    #[serde(flatten)]
    figures: Figures,
    map: MapArea,
    #[serde(skip_serializing_if = "Option::is_none")]
    reader_error: Option<&'a str>,
    vehicles: Vec<VehicleRow>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trails: Option<BTreeMap<String, Vec<[f64; 2]>>>,
}

/// An update ready to send: its id, kind and JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// The SSE event id.
    pub id: u64,
    /// Snapshot or delta.
    pub kind: Kind,
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
    recent: VecDeque<Arc<Sent>>,
    received: TopicFigures,
    reader_error: Option<String>,
}

/// The dashboard shared by the reader, the ticker and the handlers.
#[derive(Debug)]
pub struct Dashboard {
    map: MapArea,
    inner: Mutex<Inner>,
    sender: broadcast::Sender<Arc<Sent>>,
}

impl Dashboard {
    /// An empty dashboard whose first update gets id `last_id + 1`. Starting from the wall
    /// clock in milliseconds ([`Self::starting_now`]) keeps ids increasing across restarts,
    /// as ticks come at most once per millisecond.
    pub fn new(map: MapArea, last_id: u64) -> Self {
        let (sender, _) = broadcast::channel(STREAM_BUFFER);
        Self {
            map,
            inner: Mutex::new(Inner {
                state: FleetState::default(),
                last_id,
                recent: VecDeque::new(),
                received: TopicFigures::default(),
                reader_error: None,
            }),
            sender,
        }
    }

    /// An empty dashboard with ids starting after the current time in milliseconds.
    pub fn starting_now(map: MapArea) -> Self {
        let millis = u64::try_from(Utc::now().timestamp_millis()).unwrap_or_default();
        Self::new(map, millis)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state stays consistent if a holder panicked: each change is one assignment.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Folds output messages into the state.
    pub fn apply(&self, messages: impl IntoIterator<Item = Incoming>) {
        let mut inner = self.lock();
        for m in messages {
            inner.state.apply(m);
        }
    }

    /// Records why the output topics cannot be read (`None`: they can again).
    pub fn set_reader_error(&self, error: Option<String>) {
        self.lock().reader_error = error;
    }

    /// Ends a tick at `now`: builds the delta since the previous one, keeps it for reconnecting
    /// clients and sends it to every open stream.
    pub fn tick(&self, received: TopicFigures, now: DateTime<Utc>) -> Arc<Sent> {
        let mut inner = self.lock();
        inner.received = received;
        let changed = inner.state.take_changed();
        let id = inner.last_id + 1;
        let sent = Arc::new(self.render(&inner, id, Kind::Delta, changed, now));
        inner.last_id = id;
        inner.recent.push_back(sent.clone());
        while inner.recent.len() > RECENT_KEPT {
            inner.recent.pop_front();
        }
        // No open stream is not an error.
        let _ = self.sender.send(sent.clone());
        sent
    }

    /// What a stream opened at `now` after `last_event_id` starts with, and the receiver of
    /// the updates after it: the missed deltas when they are all kept (nothing when the client
    /// is up to date), else a snapshot with the current id.
    pub fn subscribe(
        &self,
        last_event_id: Option<u64>,
        now: DateTime<Utc>,
    ) -> (Vec<Arc<Sent>>, broadcast::Receiver<Arc<Sent>>) {
        let inner = self.lock();
        let receiver = self.sender.subscribe();
        let first_kept = inner.recent.front().map_or(inner.last_id + 1, |s| s.id);
        let backlog = match last_event_id {
            Some(id) if id == inner.last_id => Vec::new(),
            Some(id) if id < inner.last_id && id + 1 >= first_kept => {
                inner.recent.iter().filter(|s| s.id > id).cloned().collect()
            }
            _ => {
                let vehicles = inner.state.vehicles();
                let id = inner.last_id;
                vec![Arc::new(self.render(
                    &inner,
                    id,
                    Kind::Snapshot,
                    vehicles,
                    now,
                ))]
            }
        };
        (backlog, receiver)
    }

    /// The figures at `now` and the `limit` most recently seen vehicles.
    pub fn view(&self, limit: usize, now: DateTime<Utc>) -> FleetView {
        let inner = self.lock();
        FleetView {
            figures: inner.state.figures(now),
            map: self.map,
            reader_error: inner.reader_error.clone(),
            vehicles: inner.state.recent_vehicles(limit),
        }
    }

    fn render(
        &self,
        inner: &Inner,
        id: u64,
        kind: Kind,
        vehicles: Vec<VehicleRow>,
        now: DateTime<Utc>,
    ) -> Sent {
        let update = Update {
            id,
            kind,
            at: now,
            received: &inner.received,
            figures: inner.state.figures(now),
            map: self.map,
            reader_error: inner.reader_error.as_deref(),
            vehicles,
            trails: (kind == Kind::Snapshot).then(|| inner.state.trails()),
        };
        let data = serde_json::to_string(&update).unwrap_or_else(|e| {
            serde_json::json!({ "id": id, "reader_error": format!("encoding the update: {e}") })
                .to_string()
        });
        Sent { id, kind, data }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::state::tests::summary;

    fn now() -> DateTime<Utc> {
        "2026-11-21T10:00:10Z".parse().unwrap()
    }

    fn json(sent: &Sent) -> serde_json::Value {
        serde_json::from_str(&sent.data).unwrap()
    }

    fn received(n: i64) -> TopicFigures {
        TopicFigures {
            events_received: n,
            ..TopicFigures::default()
        }
    }

    #[test]
    fn deltas_carry_the_changed_vehicles_and_increasing_ids() {
        let d = Dashboard::new(MapArea::default(), 100);
        d.apply([
            summary("A", "Volvo", "XC40", 1, 0),
            summary("B", "Ford", "Transit", 1, 0),
        ]);
        let first = d.tick(received(2), now());
        assert_eq!((first.id, first.kind), (101, Kind::Delta));
        let v = json(&first);
        assert_eq!(v["vehicles"].as_array().unwrap().len(), 2);
        assert_eq!(v["events_received"], 2);
        assert_eq!(v["events_stored"], 2);
        assert_eq!(v["map"]["radius_m"], 2000.0);
        assert!(v.get("trails").is_none());

        d.apply([summary("B", "Ford", "Transit", 2, 1)]);
        let second = json(&d.tick(received(3), now()));
        assert_eq!(second["id"], 102);
        assert_eq!(second["vehicles"][0]["vin"], "B");
        assert_eq!(second["vehicles"].as_array().unwrap().len(), 1);
        assert_eq!(second["events_stored"], 3);
        assert_eq!(
            json(&d.tick(received(3), now()))["vehicles"],
            serde_json::json!([])
        );
    }

    #[test]
    fn a_stream_resumes_after_its_last_event_id_or_gets_a_snapshot() {
        let d = Dashboard::new(MapArea::default(), 0);
        for n in 1..=(RECENT_KEPT as i64 + 5) {
            d.apply([summary("A", "Volvo", "XC40", n, n as u32)]);
            d.tick(received(n), now());
        }
        let last = RECENT_KEPT as u64 + 5;

        // Missed the last three: gets exactly those, in order.
        let (backlog, _) = d.subscribe(Some(last - 3), now());
        let ids: Vec<u64> = backlog.iter().map(|s| s.id).collect();
        assert_eq!(ids, [last - 2, last - 1, last]);
        assert!(backlog.iter().all(|s| s.kind == Kind::Delta));

        // Up to date: nothing until the next tick, which the receiver gets.
        let (backlog, mut receiver) = d.subscribe(Some(last), now());
        assert!(backlog.is_empty());
        d.tick(received(0), now());
        assert_eq!(receiver.try_recv().unwrap().id, last + 1);

        // The oldest kept delta can still be resumed from the id before it.
        let oldest = last + 1 - RECENT_KEPT as u64 + 1;
        let (backlog, _) = d.subscribe(Some(oldest - 1), now());
        assert_eq!(backlog.len(), RECENT_KEPT);

        // Too old, from the future (an earlier run) or none: one snapshot with the current id.
        for last_event_id in [Some(oldest - 2), Some(last + 50), None] {
            let (backlog, _) = d.subscribe(last_event_id, now());
            assert_eq!(backlog.len(), 1, "{last_event_id:?}");
            assert_eq!((backlog[0].id, backlog[0].kind), (last + 1, Kind::Snapshot));
            let v = json(&backlog[0]);
            assert_eq!(v["vehicles"][0]["events"], RECENT_KEPT as i64 + 5);
            assert_eq!(v["trails"]["A"].as_array().unwrap().len(), 30);
        }
    }

    #[test]
    fn the_view_has_the_figures_and_the_recent_vehicles() {
        let d = Dashboard::new(MapArea::default(), 0);
        d.apply([
            summary("A", "Volvo", "XC40", 4, 1),
            summary("B", "Volvo", "XC60", 6, 2),
        ]);
        d.set_reader_error(Some("no metadata".into()));
        let view = d.view(1, now());
        assert_eq!(view.figures.events_stored, 10);
        assert_eq!(view.vehicles.len(), 1);
        assert_eq!(view.vehicles[0].vin, "B");
        assert_eq!(view.reader_error.as_deref(), Some("no metadata"));
    }
}
