//! The live feed of the dashboard: the shared [`Dashboard`] holding the fleet state, one
//! update per tick (a delta: the fleet figures plus the vehicles changed since the last tick
//! and those forgotten) with monotonically increasing ids, broadcast to every open stream, and
//! the last [`DashboardLimits::resume_updates`] deltas kept so that a client reconnecting with
//! `Last-Event-ID` gets exactly what it missed. A client too far behind (or from an earlier
//! run) gets a snapshot.
//!
//! Memory and messages are bounded by [`DashboardLimits`]: vehicles not seen for
//! `vehicle_ttl` are forgotten, and no update is larger than `max_message_bytes`: changed
//! vehicles that do not fit follow in the next deltas, a snapshot carries the most recently
//! seen vehicles that fit (with their trails) and says how many it left out.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use tokio::sync::broadcast;

use super::messages::Incoming;
use super::state::{Figures, FleetState, VehicleRow};
use crate::topic_counts::TopicFigures;

/// Updates buffered per open stream; a stream further behind gets a fresh snapshot.
const STREAM_BUFFER: usize = 16;

/// What bounds the dashboard's memory and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DashboardLimits {
    /// A vehicle whose latest event is older than this is forgotten
    /// (`INGEST_DASHBOARD_VEHICLE_TTL`).
    pub vehicle_ttl: Duration,
    /// Deltas kept for clients that reconnect (`INGEST_DASHBOARD_RESUME_UPDATES`).
    pub resume_updates: usize,
    /// Largest update, bytes of JSON (`INGEST_DASHBOARD_MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
}

impl Default for DashboardLimits {
    /// The defaults of `config.master.toml`.
    fn default() -> Self {
        Self {
            vehicle_ttl: Duration::from_secs(3_600),
            resume_updates: 30,
            max_message_bytes: 1_048_576,
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
    /// Vehicles forgotten since the previous update (deltas only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gone: Vec<String>,
    /// Vehicles a snapshot left out to stay under the message cap.
    #[serde(skip_serializing_if = "is_zero")]
    vehicles_omitted: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    trails: Option<BTreeMap<String, Vec<[f64; 2]>>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
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
    limits: DashboardLimits,
    inner: Mutex<Inner>,
    sender: broadcast::Sender<Arc<Sent>>,
}

impl Dashboard {
    /// An empty dashboard whose first update gets id `last_id + 1`. Starting from the wall
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
                recent: VecDeque::new(),
                received: TopicFigures::default(),
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

    /// Ends a tick at `now`: builds the delta since the previous one, keeps it for reconnecting
    /// clients and sends it to every open stream.
    pub fn tick(&self, received: TopicFigures, now: DateTime<Utc>) -> Arc<Sent> {
        let mut inner = self.lock();
        inner.received = received;
        let forgotten = inner.state.forget_older_than(self.cutoff(now));
        if forgotten > 0 {
            tracing::debug!(
                forgotten,
                "dashboard: forgot vehicles past their time-to-live"
            );
        }
        let changed = inner.state.take_changed();
        let gone = inner.state.take_gone();
        let id = inner.last_id + 1;
        let (sent, left) = self.render(&inner, id, Kind::Delta, changed, gone, now);
        inner
            .state
            .mark_changed(left.into_iter().map(|row| row.vin));
        let sent = Arc::new(sent);
        inner.last_id = id;
        inner.recent.push_back(sent.clone());
        while inner.recent.len() > self.limits.resume_updates {
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
                let vehicles = inner.state.recent_vehicles(usize::MAX);
                let id = inner.last_id;
                let (sent, _) = self.render(&inner, id, Kind::Snapshot, vehicles, Vec::new(), now);
                vec![Arc::new(sent)]
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

    /// The update of `kind` with as many of `vehicles` (in their order; a snapshot with their
    /// trails) as fit in the message cap, and the vehicles left out.
    fn render(
        &self,
        inner: &Inner,
        id: u64,
        kind: Kind,
        mut vehicles: Vec<VehicleRow>,
        gone: Vec<String>,
        now: DateTime<Utc>,
    ) -> (Sent, Vec<VehicleRow>) {
        let snapshot = kind == Kind::Snapshot;
        let mut update = Update {
            id,
            kind,
            at: now,
            received: &inner.received,
            figures: inner.state.figures(now),
            map: self.map,
            reader_error: inner.reader_error.as_deref(),
            vehicles: Vec::new(),
            gone,
            // Room for the counter of left-out vehicles, should it be needed.
            vehicles_omitted: usize::MAX,
            trails: snapshot.then(BTreeMap::new),
        };
        let encode = |update: &Update| {
            serde_json::to_string(update).unwrap_or_else(|e| {
                serde_json::json!({ "id": id, "reader_error": format!("encoding the update: {e}") })
                    .to_string()
            })
        };
        // Each vehicle adds its row (and a snapshot its trail) and a comma to the empty update.
        let mut size = encode(&update).len();
        let mut trails = BTreeMap::new();
        let mut fit = 0;
        for row in &vehicles {
            let trail = if snapshot {
                inner.state.trail(&row.vin)
            } else {
                Vec::new()
            };
            let mut more = json_len(row) + 1;
            if snapshot {
                more += json_len(&row.vin) + 1 + json_len(&trail) + 1;
            }
            if size + more > self.limits.max_message_bytes {
                break;
            }
            size += more;
            fit += 1;
            if snapshot {
                trails.insert(row.vin.clone(), trail);
            }
        }
        let left = vehicles.split_off(fit);
        update.vehicles = vehicles;
        update.vehicles_omitted = if snapshot { left.len() } else { 0 };
        if snapshot {
            update.trails = Some(trails);
        }
        let data = encode(&update);
        if data.len() > self.limits.max_message_bytes {
            tracing::warn!(
                bytes = data.len(),
                cap = self.limits.max_message_bytes,
                "dashboard: the fleet figures alone exceed the message cap"
            );
        }
        (Sent { id, kind, data }, left)
    }
}

/// The length of `value` as JSON.
fn json_len(value: &impl Serialize) -> usize {
    serde_json::to_string(value).map_or(0, |s| s.len())
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
        let d = Dashboard::new(MapArea::default(), DashboardLimits::default(), 100);
        d.apply(
            [
                summary("A", "Volvo", "XC40", 1, 0),
                summary("B", "Ford", "Transit", 1, 0),
            ],
            now(),
        );
        let first = d.tick(received(2), now());
        assert_eq!((first.id, first.kind), (101, Kind::Delta));
        let v = json(&first);
        assert_eq!(v["vehicles"].as_array().unwrap().len(), 2);
        assert_eq!(v["events_received"], 2);
        assert_eq!(v["events_stored"], 2);
        assert_eq!(v["map"]["radius_m"], 2000.0);
        assert!(v.get("trails").is_none());

        d.apply([summary("B", "Ford", "Transit", 2, 1)], now());
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

    const KEPT: usize = 30;

    #[test]
    fn a_stream_resumes_after_its_last_event_id_or_gets_a_snapshot() {
        let d = Dashboard::new(MapArea::default(), DashboardLimits::default(), 0);
        for n in 1..=(KEPT as i64 + 5) {
            d.apply([summary("A", "Volvo", "XC40", n, n as u32)], now());
            d.tick(received(n), now());
        }
        let last = KEPT as u64 + 5;

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
        let oldest = last + 1 - KEPT as u64 + 1;
        let (backlog, _) = d.subscribe(Some(oldest - 1), now());
        assert_eq!(backlog.len(), KEPT);

        // Too old, from the future (an earlier run) or none: one snapshot with the current id.
        for last_event_id in [Some(oldest - 2), Some(last + 50), None] {
            let (backlog, _) = d.subscribe(last_event_id, now());
            assert_eq!(backlog.len(), 1, "{last_event_id:?}");
            assert_eq!((backlog[0].id, backlog[0].kind), (last + 1, Kind::Snapshot));
            let v = json(&backlog[0]);
            assert_eq!(v["vehicles"][0]["events"], KEPT as i64 + 5);
            assert_eq!(v["trails"]["A"].as_array().unwrap().len(), 30);
        }
    }

    #[test]
    fn vehicles_past_the_time_to_live_are_dropped_and_named_gone() {
        let limits = DashboardLimits {
            vehicle_ttl: Duration::from_secs(60),
            ..DashboardLimits::default()
        };
        let d = Dashboard::new(MapArea::default(), limits, 0);
        // 200 vehicles last seen at 10:00:00..10:00:199, one seen at 10:05.
        let old: Vec<Incoming> = (0..200u32)
            .map(|n| summary(&format!("OLD{n:03}"), "Volvo", "XC40", 1, n))
            .collect();
        d.apply(old, now());
        d.apply([summary("NEW", "Ford", "Transit", 1, 300)], now());
        assert_eq!(d.view(usize::MAX, now()).vehicles.len(), 201);
        // At 10:05:30 the ones last seen before 10:04:30 (270 s) are forgotten: all the old.
        let later = now() + TimeDelta::seconds(320);
        let v = json(&d.tick(received(0), later));
        assert_eq!(v["vehicles_total"], 1);
        assert_eq!(v["gone"].as_array().unwrap().len(), 200);
        assert_eq!(v["vehicles"].as_array().unwrap().len(), 1, "NEW changed");
        assert_eq!(d.view(usize::MAX, later).vehicles.len(), 1);
        assert!(json(&d.tick(received(0), later)).get("gone").is_none());
        // A summary already past the time-to-live is not taken in.
        d.apply([summary("LATE", "Ford", "Transit", 1, 10)], later);
        assert_eq!(d.view(usize::MAX, later).vehicles.len(), 1);
        let (snapshot, _) = d.subscribe(None, later);
        let v = json(&snapshot[0]);
        assert_eq!(v["trails"].as_object().unwrap().len(), 1);
    }

    #[test]
    fn no_message_exceeds_the_cap_and_what_does_not_fit_follows() {
        let limits = DashboardLimits {
            max_message_bytes: 65_536,
            resume_updates: 5,
            ..DashboardLimits::default()
        };
        let d = Dashboard::new(MapArea::default(), limits, 0);
        let many: Vec<Incoming> = (0..2000u32)
            .map(|n| summary(&format!("V{n:05}"), "Volvo", "XC40", 1, n % 30))
            .collect();
        d.apply(many, now());
        let mut seen = std::collections::BTreeSet::new();
        let mut ticks = 0;
        while seen.len() < 2000 {
            let sent = d.tick(received(0), now());
            assert!(sent.data.len() <= 65_536, "{} bytes", sent.data.len());
            let v = json(&sent);
            let vehicles = v["vehicles"].as_array().unwrap();
            assert!(!vehicles.is_empty(), "every delta carries some of the rest");
            seen.extend(
                vehicles
                    .iter()
                    .map(|r| r["vin"].as_str().unwrap().to_owned()),
            );
            ticks += 1;
            assert!(ticks < 50, "the changed vehicles are never all sent");
        }
        assert!(ticks > 1, "2000 vehicles do not fit in 64 KiB");
        assert!(
            json(&d.tick(received(0), now()))["vehicles"]
                .as_array()
                .unwrap()
                .is_empty()
        );
        // The snapshot carries the newest that fit, with their trails, and counts the rest.
        let (snapshot, _) = d.subscribe(None, now());
        assert!(snapshot[0].data.len() <= 65_536);
        let v = json(&snapshot[0]);
        let listed = v["vehicles"].as_array().unwrap().len();
        assert!(listed > 0 && listed < 2000);
        assert_eq!(v["vehicles_omitted"], 2000 - listed as u64);
        assert_eq!(v["trails"].as_object().unwrap().len(), listed);
        assert_eq!(v["vehicles"][0]["last_seen"], "2026-11-21T10:00:29Z");
        // Only the configured number of updates is kept for resuming.
        let (backlog, _) = d.subscribe(Some(1), now());
        assert_eq!(backlog.len(), 1, "id 1 is no longer kept: a snapshot");
        assert_eq!(backlog[0].kind, Kind::Snapshot);
    }

    #[test]
    fn the_view_has_the_figures_and_the_recent_vehicles() {
        let d = Dashboard::new(MapArea::default(), DashboardLimits::default(), 0);
        d.apply(
            [
                summary("A", "Volvo", "XC40", 4, 1),
                summary("B", "Volvo", "XC60", 6, 2),
            ],
            now(),
        );
        d.set_reader_error(Some("no metadata".into()));
        let view = d.view(1, now());
        assert_eq!(view.figures.events_stored, 10);
        assert_eq!(view.vehicles.len(), 1);
        assert_eq!(view.vehicles[0].vin, "B");
        assert_eq!(view.reader_error.as_deref(), Some("no metadata"));
    }
}
