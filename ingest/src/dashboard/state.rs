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
    /// Vehicles whose latest event is at most [`ONLINE_WITHIN`] old.
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

    /// The fleet-wide figures at `now`.
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
mod tests {
    use fleet_common::wire::Sensor;

    use super::*;
    use crate::dashboard::fixtures::{summary, window};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn make_and_model_counts_come_from_the_latest_summaries() {
        let mut state = FleetState::default();
        state.apply(summary("A", "Volvo", "XC40", 3, 2));
        state.apply(summary("B", "Volvo", "XC60", 5, 4));
        state.apply(summary("C", "Ford", "Transit", 7, 6));
        state.apply(summary("A", "Volvo", "XC40", 4, 3));
        let f = state.figures(t("2026-11-21T10:00:13.500Z"));
        assert_eq!(f.events_stored, 4 + 5 + 7);
        assert_eq!(f.vehicles_total, 3);
        assert_eq!(f.vehicles_online, 2, "A is 10.5 s old, B 9.5 s, C 7.5 s");
        let makes: Vec<(&str, u64, i64)> = f
            .makes
            .iter()
            .map(|m| (m.make.as_str(), m.vehicles, m.events))
            .collect();
        assert_eq!(makes, vec![("Ford", 1, 7), ("Volvo", 2, 9)]);
        let models: Vec<(&str, u64, i64)> = f
            .models
            .iter()
            .map(|m| (m.model.as_str(), m.vehicles, m.events))
            .collect();
        assert_eq!(
            models,
            vec![("Transit", 1, 7), ("XC40", 1, 4), ("XC60", 1, 5)]
        );
        assert_eq!(f.messages_applied, 4);
    }

    #[test]
    fn an_old_copy_of_a_summary_changes_nothing_and_trails_are_bounded() {
        let mut state = FleetState::default();
        for sec in 0..(TRAIL_LEN as u32 + 5) {
            state.apply(summary("A", "Volvo", "XC40", i64::from(sec) + 1, sec));
        }
        let last = TRAIL_LEN as i64 + 5;
        state.apply(summary("A", "Volvo", "XC40", last - 3, 1));
        assert_eq!(state.vehicles()[0].events, last);
        let trail = &state.trails()["A"];
        assert_eq!(trail.len(), TRAIL_LEN);
        assert_eq!(trail.last(), Some(&[34.0, -34.0]));
        // A redelivered copy of the latest summary moves nothing.
        state.apply(summary("A", "Volvo", "XC40", last, TRAIL_LEN as u32 + 4));
        assert_eq!(state.trails()["A"].len(), TRAIL_LEN);
        assert_eq!(state.trails()["A"].last(), Some(&[34.0, -34.0]));
    }

    #[test]
    fn vehicles_older_than_the_cutoff_are_forgotten() {
        let mut state = FleetState::default();
        for n in 0..50u32 {
            state.apply(summary(&format!("OLD{n:02}"), "Volvo", "XC40", 1, n));
        }
        state.apply(summary("NEW", "Ford", "Transit", 4, 100));
        state.apply(summary("OLD49", "Volvo", "XC40", 2, 90));
        let cutoff = t("2026-11-21T10:00:00Z") + TimeDelta::seconds(60);
        assert_eq!(state.forget_older_than(cutoff), 49);
        let vins: Vec<String> = state.vehicles().into_iter().map(|r| r.vin).collect();
        assert_eq!(vins, ["NEW", "OLD49"]);
        let f = state.figures(cutoff);
        assert_eq!((f.vehicles_total, f.events_stored), (2, 6));
        assert!(
            state
                .trails()
                .keys()
                .all(|vin| vin == "NEW" || vin == "OLD49")
        );
        // A forgotten vehicle that reports again is back.
        state.apply(summary("OLD00", "Volvo", "XC40", 3, 120));
        assert_eq!(state.forget_older_than(cutoff), 0);
        assert_eq!(state.vehicles().len(), 3);
    }

    #[test]
    fn only_the_largest_makes_and_models_are_listed() {
        let mut state = FleetState::default();
        for n in 0..(MAX_LISTED as u32 + 20) {
            state.apply(summary(&format!("V{n:03}"), &format!("M{n:03}"), "X", 1, 0));
        }
        // One make with 3 vehicles is among the listed ones whatever its name.
        state.apply(summary("W1", "ZZZ", "X", 1, 0));
        state.apply(summary("W2", "ZZZ", "X", 1, 0));
        state.apply(summary("W3", "ZZZ", "X", 1, 0));
        let f = state.figures(t("2026-11-21T10:00:00Z"));
        assert_eq!(f.makes.len(), MAX_LISTED);
        assert_eq!(f.models.len(), MAX_LISTED);
        assert_eq!(
            f.makes.last().map(|m| (m.make.as_str(), m.vehicles)),
            Some(("ZZZ", 3))
        );
        assert!(f.makes.windows(2).all(|w| w[0].make < w[1].make));
    }

    #[test]
    fn windows_and_histograms_keep_the_newest() {
        let mut state = FleetState::default();
        let start = t("2026-11-21T10:00:00Z");
        for s in 0..(SECONDS_KEPT as i64 + 10) {
            state.apply(window(
                Granularity::Second,
                start + TimeDelta::seconds(s),
                s,
                1,
                Some(1.0),
            ));
        }
        // A later update of a window replaces it.
        state.apply(window(
            Granularity::Second,
            start + TimeDelta::seconds(SECONDS_KEPT as i64 + 9),
            1000,
            2,
            None,
        ));
        state.apply(window(Granularity::Minute, start, 5, 1, None));
        for m in 0..3 {
            state.apply(Incoming::Histogram(Histogram {
                sensor: Sensor::TemperatureC,
                window_start: start + TimeDelta::minutes(m),
                bins: vec![Bin {
                    lower: Some(20.0),
                    count: m + 1,
                }],
            }));
        }
        let f = state.figures(start);
        assert_eq!(f.per_second.len(), SECONDS_KEPT);
        assert_eq!(f.per_second[0].events, 10);
        assert_eq!(f.per_second.last().map(|w| w.events), Some(1000));
        assert_eq!(f.per_minute.len(), 1);
        assert_eq!(f.histograms.len(), 1);
        assert_eq!(f.histograms[0].window_start, start + TimeDelta::minutes(2));
        assert_eq!(f.histograms[0].bins[0].count, 3);
        assert!(state.vehicles().is_empty(), "only summaries add vehicles");
    }

    #[test]
    fn recent_vehicles_are_newest_first_and_limited() {
        let mut state = FleetState::default();
        state.apply(summary("A", "Volvo", "XC40", 1, 5));
        state.apply(summary("B", "Volvo", "XC40", 1, 9));
        state.apply(summary("C", "Volvo", "XC40", 1, 7));
        let vins: Vec<String> = state
            .recent_vehicles(2)
            .into_iter()
            .map(|r| r.vin)
            .collect();
        assert_eq!(vins, ["B", "C"]);
    }
}
