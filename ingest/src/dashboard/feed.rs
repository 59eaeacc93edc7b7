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
use super::state::{Figures, FleetState};
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
    reader_error: Option<String>,
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
            figures: inner.state.figures(now),
            map: self.map,
            reader_error: inner.reader_error.clone(),
            vehicles: inner.state.recent_vehicles(limit),
        }
    }

    /// The frame `id` at `now`, with as many of the most recently seen vehicles (up to the
    /// map's cap) as fit in three quarters of the message cap.
    fn frame(&self, inner: &Inner, id: u64, now: DateTime<Utc>) -> Frame {
        let budget = self.limits.max_message_bytes - self.limits.max_message_bytes / 4;
        let figures = inner.state.figures(now);
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
mod tests {
    use super::*;
    use fleet_common::wire::{Bin, Granularity, Histogram, LastPosition, Sensor, VehicleSummary};

    use crate::dashboard::fixtures::{summary, window};
    use crate::dashboard::table::{MAX_PAGE_SIZE, Order, SortKey};

    /// The SSE cap the issue asks for, also the default.
    const CAP: usize = 256 * 1024;

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

    fn vins(message: &serde_json::Value) -> Vec<String> {
        message["table"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["vin"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn every_message_is_the_frame_and_the_page_asked_for() {
        let d = Dashboard::new(MapArea::default(), DashboardLimits::default(), 100);
        // Before the first tick a stream gets a frame made at once, with the current id.
        let (first, mut receiver) = d.subscribe(now());
        assert_eq!(first.id, 100);
        let v = json(&d.message(&first, &TableQuery::default()));
        assert_eq!(v["table"]["total"], 0);
        assert_eq!(v["vehicles_total"], 0);

        d.apply(
            [
                summary("A", "Volvo", "XC40", 1, 0),
                summary("B", "Ford", "Transit", 3, 2),
                summary("C", "Ford", "Transit", 2, 1),
            ],
            now(),
        );
        let frame = d.tick(received(6), now());
        assert_eq!(frame.id, 101);
        assert_eq!(receiver.try_recv().unwrap().id, 101);
        let query = TableQuery {
            page_size: 2,
            ..TableQuery::default()
        };
        let sent = d.message(&frame, &query);
        assert_eq!(sent.id, 101);
        let v = json(&sent);
        assert_eq!(v["id"], 101);
        assert_eq!(v["events_received"], 6);
        assert_eq!(v["events_stored"], 6);
        assert_eq!(v["map"]["radius_m"], 2000.0);
        assert_eq!(v["positions"][0]["make"], "Ford");
        assert_eq!(v["positions"][0]["xy"], serde_json::json!([2, -2, 1, -1]));
        assert_eq!(v["positions_omitted"], 0);
        assert_eq!(vins(&v), ["B", "C"], "most events first");
        assert_eq!(v["table"]["pages"], 2);
        assert_eq!(v["table"]["rows"][0]["trail"], serde_json::json!([[2, -2]]));
        let second = json(&d.message(&frame, &TableQuery { page: 1, ..query }));
        assert_eq!(vins(&second), ["A"]);
        assert_eq!(second["table"]["page"], 1);
        // Subscribing after a tick starts with that tick's frame.
        assert_eq!(d.subscribe(now()).0.id, 101);
        assert_eq!(d.tick(received(6), now()).id, 102);
    }

    #[test]
    fn vehicles_past_the_time_to_live_leave_the_figures_the_map_and_the_table() {
        let limits = DashboardLimits {
            vehicle_ttl: Duration::from_secs(60),
            ..DashboardLimits::default()
        };
        let d = Dashboard::new(MapArea::default(), limits, 0);
        // 200 vehicles last seen at 10:00:00..10:03:19, one seen at 10:05.
        let old: Vec<Incoming> = (0..200u32)
            .map(|n| summary(&format!("OLD{n:03}"), "Volvo", "XC40", 1, n))
            .collect();
        d.apply(old, now());
        d.apply([summary("NEW", "Ford", "Transit", 1, 300)], now());
        assert_eq!(d.view(usize::MAX, now()).vehicles.len(), 201);
        // At 10:05:30 the ones last seen before 10:04:30 are forgotten: all the old.
        let later = now() + TimeDelta::seconds(320);
        let frame = d.tick(received(0), later);
        let v = json(&d.message(&frame, &TableQuery::default()));
        assert_eq!(v["vehicles_total"], 1);
        assert_eq!(v["table"]["total"], 1);
        assert_eq!(vins(&v), ["NEW"]);
        assert_eq!(v["positions"].as_array().unwrap().len(), 1);
        assert_eq!(d.view(usize::MAX, later).vehicles.len(), 1);
        // A summary already past the time-to-live is not taken in.
        d.apply([summary("LATE", "Ford", "Transit", 1, 10)], later);
        assert_eq!(d.view(usize::MAX, later).vehicles.len(), 1);
    }

    /// `n` vehicles of 150 makes and 300 models with 17-character VINs, spread over the area,
    /// last seen over the 10 minutes before `now()`; VIN `n` has `n + 1` events.
    fn fleet(n: u32) -> Vec<Incoming> {
        (0..n)
            .map(|i| {
                let angle = f64::from(i) * 0.618;
                let r = 1999.0 * f64::from(i % 1000) / 1000.0;
                Incoming::Summary(VehicleSummary {
                    vin: format!("1FLT{i:013}"),
                    make: format!("Make number {:03}", i % 150),
                    model: format!("Model number {:03}", i % 300),
                    first_seen: now() - TimeDelta::seconds(3_000),
                    last_seen: now() - TimeDelta::milliseconds(i64::from(i % 600_000) * 17),
                    last_seq: i64::from(i),
                    events: i64::from(i) + 1,
                    last_position: LastPosition {
                        x: r * angle.cos() + 0.123_456_789,
                        y: r * angle.sin() - 0.987_654_321,
                        lat: 59.3,
                        lon: 18.0,
                    },
                    last_speed: 13.888_888_888_9,
                })
            })
            .collect()
    }

    /// Full windows and histograms: the figures as large as they get.
    fn windows_and_histograms() -> Vec<Incoming> {
        let mut out = Vec::new();
        for s in 0..200 {
            for granularity in [Granularity::Second, Granularity::Minute] {
                out.push(window(
                    granularity,
                    now() - TimeDelta::seconds(s),
                    29_876,
                    29_876,
                    Some(13.888_888_888_9),
                ));
            }
        }
        for sensor in Sensor::ALL {
            out.push(Incoming::Histogram(Histogram {
                sensor,
                window_start: now(),
                bins: (0..100)
                    .map(|b| Bin {
                        lower: Some(f64::from(b) * 0.5 + 0.25),
                        count: 1_234_567,
                    })
                    .collect(),
            }));
        }
        out
    }

    #[test]
    fn thirty_thousand_vehicles_give_messages_under_256_kib_with_the_page_asked_for() {
        let d = Dashboard::new(MapArea::default(), DashboardLimits::default(), 0);
        d.apply(fleet(30_000), now());
        d.apply(windows_and_histograms(), now());
        let (first, _) = d.subscribe(now());
        let mut largest = 0;
        let queries = [
            TableQuery::default(),
            TableQuery {
                sort: SortKey::Vin,
                order: Order::Asc,
                page: 7,
                page_size: MAX_PAGE_SIZE,
            },
            TableQuery {
                sort: SortKey::LastSeen,
                order: Order::Desc,
                page: 1_000_000,
                page_size: MAX_PAGE_SIZE,
            },
        ];
        let opened = d.message(&first, &queries[0]);
        assert!(opened.data.len() <= CAP, "{} bytes", opened.data.len());
        // Ten ticks in which every vehicle moves (its trail grows to the full length).
        for tick in 1..=10u32 {
            let moved: Vec<Incoming> = fleet(30_000)
                .into_iter()
                .map(|m| match m {
                    Incoming::Summary(mut s) => {
                        s.events += i64::from(tick);
                        s.last_seen += TimeDelta::seconds(tick.into());
                        s.last_position.x -= f64::from(tick) * 3.3;
                        Incoming::Summary(s)
                    }
                    other => other,
                })
                .collect();
            d.apply(moved, now());
            let frame = d.tick(received(0), now() + TimeDelta::seconds(tick.into()));
            for query in &queries {
                let sent = d.message(&frame, query);
                assert!(sent.data.len() <= CAP, "{} bytes", sent.data.len());
                largest = largest.max(sent.data.len());
            }
        }
        let frame = d.tick(received(0), now() + TimeDelta::seconds(10));
        let by_events = json(&d.message(&frame, &queries[0]));
        let by_vin = json(&d.message(&frame, &queries[1]));
        let oldest = json(&d.message(&frame, &queries[2]));
        eprintln!(
            "30,000 vehicles: first message {} bytes, largest update {largest} bytes",
            opened.data.len()
        );

        // Every figure is whole, the map draws its cap, the table is the page asked for.
        assert_eq!(by_events["vehicles_total"], 30_000);
        assert_eq!(by_events["makes"].as_array().unwrap().len(), 100);
        assert_eq!(by_events["per_second"].as_array().unwrap().len(), 120);
        assert_eq!(by_events["histograms"].as_array().unwrap().len(), 3);
        let drawn: usize = by_events["positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["xy"].as_array().unwrap().len() / 2)
            .sum();
        assert_eq!(drawn, 5_000);
        assert_eq!(by_events["positions_omitted"], 25_000);
        let expected: Vec<String> = (0..25).map(|i| format!("1FLT{:013}", 29_999 - i)).collect();
        assert_eq!(vins(&by_events), expected, "most events first");
        let expected: Vec<String> = (700..800).map(|i| format!("1FLT{i:013}")).collect();
        assert_eq!(vins(&by_vin), expected, "page 7 of 100 by VIN");
        assert_eq!(by_vin["table"]["pages"], 300);
        assert_eq!(oldest["table"]["page"], 299, "past the end: the last page");
        for v in [&by_events, &by_vin, &oldest] {
            assert!(v.get("table").unwrap().get("rows_omitted").is_none());
            assert!(v["table"].get("trails_omitted").is_none());
            assert_eq!(v["table"]["rows"][0]["trail"].as_array().unwrap().len(), 11);
        }
    }

    #[test]
    fn a_small_cap_draws_fewer_vehicles_and_keeps_the_page() {
        let cap = 65_536;
        let limits = DashboardLimits {
            map_vehicles: 100_000,
            max_message_bytes: cap,
            ..DashboardLimits::default()
        };
        let d = Dashboard::new(MapArea::default(), limits, 0);
        d.apply(fleet(30_000), now());
        let frame = d.tick(received(0), now());
        let sent = d.message(&frame, &TableQuery::default());
        assert!(sent.data.len() <= cap, "{} bytes", sent.data.len());
        let v = json(&sent);
        let omitted = v["positions_omitted"].as_u64().unwrap();
        assert!(omitted > 0 && omitted < 30_000, "{omitted}");
        assert_eq!(vins(&v).len(), 25, "the page whole");
        assert!(v["table"].get("trails_omitted").is_none());
        // A cap too small for the page: the trails go first, then rows, never the cap.
        let query = TableQuery {
            page_size: MAX_PAGE_SIZE,
            ..TableQuery::default()
        };
        let one_row = d.message(
            &frame,
            &TableQuery {
                page_size: 1,
                ..query
            },
        );
        let tiny = one_row.data.len() + 20_000;
        let fitted = fit_table(&frame, table_page(&d.lock().state, &query), tiny);
        assert!(fitted.len() <= tiny, "{} bytes", fitted.len());
        let v: serde_json::Value = serde_json::from_str(&fitted).unwrap();
        assert_eq!(v["table"]["trails_omitted"], MAX_PAGE_SIZE);
        let kept = vins(&v).len();
        assert!(kept > 0 && kept < MAX_PAGE_SIZE, "{kept}");
        assert_eq!(v["table"]["rows_omitted"], MAX_PAGE_SIZE - kept);
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
        let frame = d.tick(received(0), now());
        let v = json(&d.message(&frame, &TableQuery::default()));
        assert_eq!(v["reader_error"], "no metadata");
    }
}
