//! The fleet as the dashboard knows it, rebuilt from the consumer's output topics: the latest
//! summary of every vehicle with a short trail of its positions, the recent per-second and
//! per-minute windows, and the recent sensor histograms. What a stream sends of the vehicles is
//! cut from it by [`super::table`] (a page of the table) and [`super::positions`] (the map).
//!
//! Everything is bounded: vehicles not seen for the dashboard's time-to-live are forgotten
//! ([`FleetState::forget_older_than`]), trails, windows and histograms keep what the page
//! shows, and the make and model lists keep the [`MAX_LISTED`] largest.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use fleet_common::wire::{Bin, Granularity, Histogram, VehicleSummary, WindowMessage};
use serde::Serialize;

use super::messages::Incoming;
use super::row::VehicleRow;

/// Positions kept per vehicle for its trail on the map.
pub const TRAIL_LEN: usize = 30;
/// Per-second windows kept (the newest ones by window start): the page's chart spans 2 minutes.
pub const SECONDS_KEPT: usize = 120;
/// Per-minute windows kept.
pub const MINUTES_KEPT: usize = 60;
/// Minute windows of histograms kept per sensor.
pub const HISTOGRAM_WINDOWS_KEPT: usize = 10;
/// Makes, and make-model pairs, listed in the figures: the ones with the most vehicles.
pub const MAX_LISTED: usize = 100;
/// A vehicle counts as online when its latest event is at most this old.
pub const ONLINE_WITHIN: TimeDelta = TimeDelta::seconds(10);

/// A vehicle and its recent positions, oldest first.
#[derive(Debug, Clone)]
struct Tracked {
    row: VehicleRow,
    trail: VecDeque<[f64; 2]>,
}

/// One window of the events/s chart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct WindowPoint {
    /// Start of the window.
    pub window_start: DateTime<Utc>,
    /// Events in it.
    pub events: i64,
    /// Distinct vehicles in it.
    pub vehicles: i64,
    /// Their mean speed, m/s.
    pub mean_speed: Option<f64>,
}

/// A sensor's histogram of one minute window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SensorHistogram {
    /// The sensor.
    pub sensor: String,
    /// Start of the minute window.
    pub window_start: DateTime<Utc>,
    /// Bins with at least one event, lowest first.
    pub bins: Vec<Bin>,
}

/// Events and vehicles of one make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MakeCount {
    /// The make.
    pub make: String,
    /// Vehicles whose latest event names it.
    pub vehicles: u64,
    /// Events stored for those vehicles.
    pub events: i64,
}

/// Events and vehicles of one model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelCount {
    /// The make.
    pub make: String,
    /// The model.
    pub model: String,
    /// Vehicles whose latest event names it.
    pub vehicles: u64,
    /// Events stored for those vehicles.
    pub events: i64,
}

/// The fleet-wide figures: what every update carries whole (they are small).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Events stored: the sum of the per-vehicle counts (rows in `diag` once the consumer
    /// caught up and its summaries are read).
    pub events_stored: i64,
    /// Vehicles seen within the dashboard's time-to-live (`INGEST_DASHBOARD_VEHICLE_TTL`).
    pub vehicles_total: usize,
    /// Vehicles whose latest event is at most [`ONLINE_WITHIN`] older than the time the
    /// figures are made for: the newest event time known while events arrive, else now.
    pub vehicles_online: usize,
    /// Per make, by name (the [`MAX_LISTED`] with the most vehicles).
    pub makes: Vec<MakeCount>,
    /// Per make and model, by name (the [`MAX_LISTED`] with the most vehicles).
    pub models: Vec<ModelCount>,
    /// The newest per-second windows (event time), oldest first.
    pub per_second: Vec<WindowPoint>,
    /// The newest per-minute windows (event time), oldest first.
    pub per_minute: Vec<WindowPoint>,
    /// The newest minute window of each sensor.
    pub histograms: Vec<SensorHistogram>,
    /// Output messages applied since ingest started.
    pub messages_applied: u64,
}

/// The state, fed message by message.
#[derive(Debug, Default)]
pub struct FleetState {
    vehicles: HashMap<String, Tracked>,
    seconds: BTreeMap<DateTime<Utc>, WindowPoint>,
    minutes: BTreeMap<DateTime<Utc>, WindowPoint>,
    histograms: BTreeMap<String, BTreeMap<DateTime<Utc>, Vec<Bin>>>,
    applied: u64,
}

impl FleetState {
    /// Folds one output message in. Summaries are delivered at least once and per VIN in
    /// order; a summary with fewer events than the one kept is an old copy and is ignored.
    pub fn apply(&mut self, message: Incoming) {
        self.applied += 1;
        match message {
            Incoming::Summary(s) => self.apply_summary(s),
            Incoming::Window(w) => self.apply_window(&w),
            Incoming::Histogram(h) => self.apply_histogram(h),
        }
    }

    fn apply_summary(&mut self, summary: VehicleSummary) {
        let row = VehicleRow::from(summary);
        let vin = row.vin.clone();
        let point = [row.last_position.x, row.last_position.y];
        match self.vehicles.get_mut(&vin) {
            Some(t) if row.events < t.row.events => {}
            Some(t) => {
                if row.last_seen > t.row.last_seen {
                    push_trail(&mut t.trail, point);
                }
                t.row = row;
            }
            None => {
                let trail = VecDeque::from([point]);
                self.vehicles.insert(vin, Tracked { row, trail });
            }
        }
    }

    /// Forgets every vehicle whose latest event is older than `cutoff`. How many were
    /// forgotten.
    pub fn forget_older_than(&mut self, cutoff: DateTime<Utc>) -> usize {
        let before = self.vehicles.len();
        self.vehicles.retain(|_, t| t.row.last_seen >= cutoff);
        before - self.vehicles.len()
    }

    /// Vehicles kept.
    pub fn vehicle_count(&self) -> usize {
        self.vehicles.len()
    }

    /// Every vehicle kept, in no particular order, with its trail (oldest position first).
    pub fn tracked(&self) -> impl Iterator<Item = (&VehicleRow, &VecDeque<[f64; 2]>)> {
        self.vehicles.values().map(|t| (&t.row, &t.trail))
    }

    fn apply_window(&mut self, message: &WindowMessage) {
        let w = &message.metric;
        let (windows, kept) = match w.granularity {
            Granularity::Second => (&mut self.seconds, SECONDS_KEPT),
            Granularity::Minute => (&mut self.minutes, MINUTES_KEPT),
        };
        windows.insert(
            w.window_start,
            WindowPoint {
                window_start: w.window_start,
                events: w.events,
                vehicles: w.vehicles,
                mean_speed: message.mean_speed,
            },
        );
        while windows.len() > kept {
            windows.pop_first();
        }
    }

    fn apply_histogram(&mut self, h: Histogram) {
        let windows = self
            .histograms
            .entry(h.sensor.as_str().to_owned())
            .or_default();
        windows.insert(h.window_start, h.bins);
        while windows.len() > HISTOGRAM_WINDOWS_KEPT {
            windows.pop_first();
        }
    }

    /// The newest event time of any vehicle held.
    pub fn newest_seen(&self) -> Option<DateTime<Utc>> {
        self.vehicles.values().map(|t| t.row.last_seen).max()
    }

    /// The fleet-wide figures at `now` (vehicles online counted back from it).
    pub fn figures(&self, now: DateTime<Utc>) -> Figures {
        let mut makes: BTreeMap<&str, MakeCount> = BTreeMap::new();
        let mut models: BTreeMap<(&str, &str), ModelCount> = BTreeMap::new();
        let mut online = 0;
        for t in self.vehicles.values() {
            let r = &t.row;
            let make = makes.entry(&r.make).or_insert_with(|| MakeCount {
                make: r.make.clone(),
                vehicles: 0,
                events: 0,
            });
            make.vehicles += 1;
            make.events += r.events;
            let model = models
                .entry((&r.make, &r.model))
                .or_insert_with(|| ModelCount {
                    make: r.make.clone(),
                    model: r.model.clone(),
                    vehicles: 0,
                    events: 0,
                });
            model.vehicles += 1;
            model.events += r.events;
            if now - r.last_seen <= ONLINE_WITHIN {
                online += 1;
            }
        }
        Figures {
            events_stored: self.vehicles.values().map(|t| t.row.events).sum(),
            vehicles_total: self.vehicles.len(),
            vehicles_online: online,
            makes: largest(makes.into_values().collect(), |m| m.vehicles),
            models: largest(models.into_values().collect(), |m| m.vehicles),
            per_second: self.seconds.values().copied().collect(),
            per_minute: self.minutes.values().copied().collect(),
            histograms: self
                .histograms
                .iter()
                .filter_map(|(sensor, windows)| {
                    let (start, bins) = windows.last_key_value()?;
                    Some(SensorHistogram {
                        sensor: sensor.clone(),
                        window_start: *start,
                        bins: bins.clone(),
                    })
                })
                .collect(),
            messages_applied: self.applied,
        }
    }

    /// Every vehicle, by VIN.
    #[cfg(test)]
    pub fn vehicles(&self) -> Vec<VehicleRow> {
        let mut rows: Vec<VehicleRow> = self.vehicles.values().map(|t| t.row.clone()).collect();
        rows.sort_by(|a, b| a.vin.cmp(&b.vin));
        rows
    }

    /// The `limit` most recently seen vehicles, newest first (ties by VIN).
    pub fn recent_vehicles(&self, limit: usize) -> Vec<VehicleRow> {
        self.newest(limit)
            .into_iter()
            .map(|(row, _)| row.clone())
            .collect()
    }

    /// The `limit` most recently seen vehicles with their trails, newest first (ties by VIN).
    pub fn newest(&self, limit: usize) -> Vec<(&VehicleRow, &VecDeque<[f64; 2]>)> {
        first_sorted(self.tracked().collect(), limit, |a, b| {
            b.0.last_seen
                .cmp(&a.0.last_seen)
                .then_with(|| a.0.vin.cmp(&b.0.vin))
        })
    }

    /// Every vehicle's trail, oldest position first.
    #[cfg(test)]
    pub fn trails(&self) -> BTreeMap<String, Vec<[f64; 2]>> {
        self.vehicles
            .iter()
            .map(|(vin, t)| (vin.clone(), t.trail.iter().copied().collect()))
            .collect()
    }
}

/// The first `n` of `items` in the order of `cmp`, in that order: a selection first, so that
/// the first page of a large fleet costs no full sort.
pub fn first_sorted<T>(mut items: Vec<T>, n: usize, cmp: impl Fn(&T, &T) -> Ordering) -> Vec<T> {
    if n < items.len() {
        if n == 0 {
            return Vec::new();
        }
        items.select_nth_unstable_by(n - 1, &cmp);
        items.truncate(n);
    }
    items.sort_unstable_by(cmp);
    items
}

/// The `MAX_LISTED` entries of `by_name` (sorted by name) with the largest `size`, still by
/// name.
fn largest<T>(mut by_name: Vec<T>, size: impl Fn(&T) -> u64) -> Vec<T> {
    if by_name.len() > MAX_LISTED {
        let mut order: Vec<usize> = (0..by_name.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(size(&by_name[i])));
        let mut keep = vec![false; by_name.len()];
        for &i in &order[..MAX_LISTED] {
            keep[i] = true;
        }
        let mut keep = keep.into_iter();
        by_name.retain(|_| keep.next().unwrap_or(false));
    }
    by_name
}

fn push_trail(trail: &mut VecDeque<[f64; 2]>, point: [f64; 2]) {
    trail.push_back(point);
    while trail.len() > TRAIL_LEN {
        trail.pop_front();
    }
}

#[cfg(test)]
mod tests;
