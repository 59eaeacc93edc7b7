//! What the rows a batch really inserted add to each aggregate, computed in Rust: one entry
//! per vehicle, per make and model, per window and per histogram bin, handed to PostgreSQL as
//! arrays (`unnest`) so that every aggregate is one upsert of already grouped rows.
//!
//! The distinct-vehicle counts still come from PostgreSQL (`make_model_vehicles`,
//! `window_vehicle_minutes`, whose rows also decide between concurrent writers); [`Known`]
//! remembers what those tables are known to hold after a commit, so it is not probed again.
//!
//! Over 500 lines: the code is about 350 of them, one computation over the same inserted rows
//! (a pass per aggregate, sharing the window and bin arithmetic); the rest are its unit tests,
//! which check those private passes one by one.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_common::wire::{Granularity, Sensor};

use super::histograms::HistogramBins;
use super::windows;
use crate::row::DiagRow;

/// 2000-01-01T00:00:00Z, PostgreSQL's epoch, in seconds since 1970.
const POSTGRES_EPOCH_SECS: i64 = 946_684_800;

/// `ts` as PostgreSQL stores it: the driver sends whole microseconds since 2000-01-01,
/// truncated towards that date (down after it, up before it).
pub fn as_stored(ts: DateTime<Utc>) -> DateTime<Utc> {
    let below_micro = i64::from(ts.timestamp_subsec_nanos() % 1_000);
    if below_micro == 0 {
        ts
    } else if ts.timestamp() >= POSTGRES_EPOCH_SECS {
        ts - TimeDelta::nanoseconds(below_micro)
    } else {
        ts + TimeDelta::nanoseconds(1_000 - below_micro)
    }
}

/// The entries of `map` in key order. The passes below group a batch's rows in hash maps
/// (a batch holds up to 20,000 rows but few distinct keys) and sort only the groups: an
/// ordered map compared the keys' strings on every row, a quarter of the consumer's time.
fn sorted<K: Ord, V>(map: HashMap<K, V>) -> Vec<(K, V)> {
    let mut entries: Vec<(K, V)> = map.into_iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// The keys of `set` in order.
fn sorted_keys<K: Ord + Hash>(set: HashSet<K>) -> Vec<K> {
    let mut keys: Vec<K> = set.into_iter().collect();
    keys.sort_unstable();
    keys
}

/// New events per vehicle: the parameters of `UPSERT_VEHICLES`, one element per VIN, in VIN
/// order.
#[derive(Debug, Default, PartialEq)]
pub struct VehicleColumns {
    /// VIN.
    pub vin: Vec<String>,
    /// Make of the latest new event.
    pub make: Vec<String>,
    /// Model of the latest new event.
    pub model: Vec<String>,
    /// Earliest new event time.
    pub first_seen: Vec<DateTime<Utc>>,
    /// Time of the latest new event (greatest `(ts, seq)`).
    pub last_seen: Vec<DateTime<Utc>>,
    /// Its `seq`.
    pub last_seq: Vec<i64>,
    /// New events.
    pub events: Vec<i64>,
    /// Position x of the latest new event.
    pub position_x: Vec<f64>,
    /// Position y of the latest new event.
    pub position_y: Vec<f64>,
    /// Latitude of the latest new event.
    pub lat: Vec<f64>,
    /// Longitude of the latest new event.
    pub lon: Vec<f64>,
    /// Speed of the latest new event.
    pub speed: Vec<f64>,
}

/// New events per make and model (model `''` holds the make's total), and the
/// `(make, model, vin)` pairs not known to be counted yet.
#[derive(Debug, Default, PartialEq)]
pub struct MakeModelColumns {
    /// Make of each count.
    pub make: Vec<String>,
    /// Model of each count (`''`: the make's total).
    pub model: Vec<String>,
    /// New events.
    pub events: Vec<i64>,
    /// Make of each pair to probe.
    pub pair_make: Vec<String>,
    /// Model of each pair to probe.
    pub pair_model: Vec<String>,
    /// VIN of each pair to probe.
    pub pair_vin: Vec<String>,
}

/// New events per second and minute window, and the `(minute start, vin, second)` triples of
/// the second windows whose vehicles are not known to be counted yet (see
/// `windows::UPSERT_WINDOWS`).
#[derive(Debug, Default, PartialEq)]
pub struct WindowColumns {
    /// Granularity of each window.
    pub granularity: Vec<String>,
    /// Start of each window.
    pub window_start: Vec<DateTime<Utc>>,
    /// New events in it.
    pub events: Vec<i64>,
    /// Sum of their speeds.
    pub speed_sum: Vec<f64>,
    /// Minute window of each triple to probe.
    pub vehicle_minute_start: Vec<DateTime<Utc>>,
    /// VIN of each triple to probe.
    pub vehicle_vin: Vec<String>,
    /// Second of the minute (0 to 59) of each triple to probe.
    pub vehicle_second: Vec<i32>,
}

/// New readings per sensor, minute window and bin, and the histograms they touch.
#[derive(Debug, Default, PartialEq)]
pub struct HistogramColumns {
    /// Sensor of each bin.
    pub sensor: Vec<String>,
    /// Minute window of each bin.
    pub window_start: Vec<DateTime<Utc>>,
    /// Lower bound of each bin (see `Bins::bin_lower`).
    pub bin_lower: Vec<f64>,
    /// New readings in it.
    pub count: Vec<i64>,
    /// Sensor of each touched histogram.
    pub touched_sensor: Vec<String>,
    /// Minute window of each touched histogram.
    pub touched_window_start: Vec<DateTime<Utc>>,
}

/// Everything the inserted rows of one batch add.
#[derive(Debug, Default, PartialEq)]
pub struct Delta {
    /// Per vehicle.
    pub vehicles: VehicleColumns,
    /// Per make and model.
    pub make_models: MakeModelColumns,
    /// Per window (rows at or after the cutoff only).
    pub windows: WindowColumns,
    /// Per histogram bin (rows at or after the cutoff only).
    pub histograms: HistogramColumns,
    /// Rows before the cutoff: in no window and no histogram.
    pub late: u64,
}

/// A `(make, model, vin)` pair of `make_model_vehicles`.
type MakeModelVin = (String, String, String);
/// A `(minute start, vin)` key of `window_vehicle_minutes`.
type MinuteVin = (DateTime<Utc>, String);

/// Most entries [`Known`] keeps per table; beyond it, new ones are not remembered (they are
/// probed again, which costs time, not correctness).
const KNOWN_LIMIT: usize = 200_000;

/// What `make_model_vehicles` and `window_vehicle_minutes` hold, as learnt from committed
/// batches: pairs, and per vehicle and minute the window bits (minute and seconds) it is
/// counted in. Sound as long as nothing deletes these rows behind the consumer's back;
/// `window_vehicle_minutes` rows that pruning deletes are forgotten here too.
#[derive(Debug, Default)]
pub struct Known {
    make_models: HashSet<MakeModelVin>,
    windows: HashMap<MinuteVin, i64>,
}

/// What a batch probed, to remember after its commit.
#[derive(Debug, Default, PartialEq)]
pub struct Probed {
    make_models: Vec<MakeModelVin>,
    windows: Vec<(MinuteVin, i64)>,
}

impl Known {
    /// Remembers what a committed batch probed: those rows exist now.
    pub fn learn(&mut self, probed: Probed) {
        for pair in probed.make_models {
            if self.make_models.len() >= KNOWN_LIMIT {
                break;
            }
            self.make_models.insert(pair);
        }
        for (key, bits) in probed.windows {
            if let Some(known) = self.windows.get_mut(&key) {
                *known |= bits;
            } else if self.windows.len() < KNOWN_LIMIT {
                self.windows.insert(key, bits);
            }
        }
    }

    /// Forgets the minutes starting before `before` (pruned from `window_vehicle_minutes`).
    pub fn forget_windows_before(&mut self, before: DateTime<Utc>) {
        self.windows.retain(|(start, _), _| *start >= before);
    }
}

/// Per-window sums of the new events.
#[derive(Default)]
struct WindowSums {
    events: i64,
    speed_sum: f64,
}

/// Computes what `rows` (the rows really inserted) add to each aggregate. Rows with an event
/// time before `cutoff` count everywhere but in windows and histograms; without a cutoff all
/// rows count there. Returns the pairs to remember after the commit as well.
pub fn compute(
    rows: &[&DiagRow],
    cutoff: Option<DateTime<Utc>>,
    bins: &HistogramBins,
    known: &Known,
) -> (Delta, Probed) {
    let mut delta = Delta::default();
    let mut probed = Probed::default();
    vehicles(rows, &mut delta.vehicles);
    make_models(rows, known, &mut delta.make_models, &mut probed);

    let timely: Vec<(&DiagRow, DateTime<Utc>)> = rows
        .iter()
        .map(|r| (*r, as_stored(r.ts)))
        .filter(|(_, ts)| cutoff.is_none_or(|c| *ts >= c))
        .collect();
    delta.late = (rows.len() - timely.len()) as u64;
    windows(&timely, known, &mut delta.windows, &mut probed);
    histograms(&timely, bins, &mut delta.histograms);
    (delta, probed)
}

fn vehicles(rows: &[&DiagRow], out: &mut VehicleColumns) {
    // Per VIN: earliest time, events, and the row with the greatest (ts, seq).
    let mut per_vin: HashMap<&str, (DateTime<Utc>, i64, &DiagRow)> = HashMap::new();
    for row in rows {
        let ts = as_stored(row.ts);
        per_vin
            .entry(&row.vin)
            .and_modify(|(first, events, latest)| {
                *first = (*first).min(ts);
                *events += 1;
                if (ts, row.seq) > (as_stored(latest.ts), latest.seq) {
                    *latest = row;
                }
            })
            .or_insert((ts, 1, row));
    }
    for (vin, (first, events, latest)) in sorted(per_vin) {
        out.vin.push(vin.to_owned());
        out.make.push(latest.make.clone());
        out.model.push(latest.model.clone());
        out.first_seen.push(first);
        out.last_seen.push(as_stored(latest.ts));
        out.last_seq.push(latest.seq);
        out.events.push(events);
        out.position_x.push(latest.position_x);
        out.position_y.push(latest.position_y);
        out.lat.push(latest.lat);
        out.lon.push(latest.lon);
        out.speed.push(latest.speed);
    }
}

fn make_models(rows: &[&DiagRow], known: &Known, out: &mut MakeModelColumns, probed: &mut Probed) {
    let mut events: HashMap<(&str, &str), i64> = HashMap::new();
    let mut pairs: HashSet<(&str, &str, &str)> = HashSet::new();
    for row in rows {
        for model in [row.model.as_str(), ""] {
            *events.entry((&row.make, model)).or_default() += 1;
            pairs.insert((&row.make, model, &row.vin));
        }
    }
    for ((make, model), n) in sorted(events) {
        out.make.push(make.to_owned());
        out.model.push(model.to_owned());
        out.events.push(n);
    }
    for (make, model, vin) in sorted_keys(pairs) {
        let pair = (make.to_owned(), model.to_owned(), vin.to_owned());
        if known.make_models.contains(&pair) {
            continue;
        }
        out.pair_make.push(pair.0.clone());
        out.pair_model.push(pair.1.clone());
        out.pair_vin.push(pair.2.clone());
        probed.make_models.push(pair);
    }
}

fn windows(
    rows: &[(&DiagRow, DateTime<Utc>)],
    known: &Known,
    out: &mut WindowColumns,
    probed: &mut Probed,
) {
    let mut sums: HashMap<(Granularity, DateTime<Utc>), WindowSums> = HashMap::new();
    // Per vehicle and minute: the bits of the windows its new events are in.
    let mut bits: HashMap<(DateTime<Utc>, &str), i64> = HashMap::new();
    for (row, ts) in rows {
        for g in Granularity::ALL {
            let sum = sums.entry((g, g.window_start(*ts))).or_default();
            sum.events += 1;
            sum.speed_sum += row.speed;
        }
        let second = Granularity::Second.window_start(*ts);
        *bits
            .entry((Granularity::Minute.window_start(*ts), &row.vin))
            .or_default() |= windows::MINUTE_BIT | windows::second_bit(second);
    }
    for ((g, start), sum) in sorted(sums) {
        out.granularity.push(g.as_str().to_owned());
        out.window_start.push(start);
        out.events.push(sum.events);
        out.speed_sum.push(sum.speed_sum);
    }
    for ((minute, vin), bits) in sorted(bits) {
        let key = (minute, vin.to_owned());
        let known_bits = known.windows.get(&key).copied().unwrap_or(0);
        if bits & !known_bits == 0 {
            continue;
        }
        // Every second is sent, known or not: the minute bit rides on them.
        for second in 0..60 {
            if bits & (1 << second) != 0 {
                out.vehicle_minute_start.push(minute);
                out.vehicle_vin.push(key.1.clone());
                out.vehicle_second.push(second);
            }
        }
        probed.windows.push((key, bits));
    }
}

fn histograms(
    rows: &[(&DiagRow, DateTime<Utc>)],
    bins: &HistogramBins,
    out: &mut HistogramColumns,
) {
    let mut counts: HashMap<(Sensor, DateTime<Utc>, u64), (f64, i64)> = HashMap::new();
    for (row, ts) in rows {
        let window = Granularity::Minute.window_start(*ts);
        for (sensor, value) in
            Sensor::ALL
                .into_iter()
                .zip([row.temperature_c, row.humidity_pct, row.pressure_hpa])
        {
            // A missing reading (the old client has no sensors) is in no bin.
            let Some(value) = value else { continue };
            let lower = bins.of(sensor).bin_lower(value);
            // Keyed by the bits: the bounds are finite or -inf, never NaN.
            counts
                .entry((sensor, window, lower.to_bits()))
                .or_insert((lower, 0))
                .1 += 1;
        }
    }
    let mut last_touched = None;
    for ((sensor, window, _), (lower, count)) in sorted(counts) {
        out.sensor.push(sensor.as_str().to_owned());
        out.window_start.push(window);
        out.bin_lower.push(lower);
        out.count.push(count);
        if last_touched != Some((sensor, window)) {
            out.touched_sensor.push(sensor.as_str().to_owned());
            out.touched_window_start.push(window);
            last_touched = Some((sensor, window));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::fixtures::event;

    fn row(n: u32, vin: &str, ts: &str, speed: f64) -> DiagRow {
        let mut r = DiagRow::from_event(&event(n), 0, i64::from(n)).unwrap();
        r.vin = vin.into();
        r.ts = ts.parse().unwrap();
        r.speed = speed;
        r
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    const A: &str = "AAAAAAAAAAAAAAAAA";
    const B: &str = "BBBBBBBBBBBBBBBBB";

    #[test]
    fn stored_times_are_whole_microseconds_like_the_driver_sends() {
        assert_eq!(
            as_stored(t("2026-11-21T10:00:00.1234569Z")),
            t("2026-11-21T10:00:00.123456Z")
        );
        assert_eq!(
            as_stored(t("1999-12-31T23:59:59.9999999Z")),
            t("2000-01-01T00:00:00Z"),
            "towards 2000-01-01 before it"
        );
        let whole = t("2026-11-21T10:00:00.5Z");
        assert_eq!(as_stored(whole), whole);
        assert_eq!(
            as_stored(t("1999-12-31T23:59:59.0000005Z")),
            t("1999-12-31T23:59:59.000001Z")
        );
        assert_eq!(
            as_stored(t("1969-07-20T20:17:40.0000009Z")),
            t("1969-07-20T20:17:40.000001Z")
        );
        assert_eq!(
            as_stored(t("2000-01-01T00:00:00.0000009Z")),
            t("2000-01-01T00:00:00Z")
        );
    }

    #[test]
    fn vehicles_take_the_latest_event_by_time_then_seq() {
        let mut late_seq = row(5, A, "2026-11-21T10:00:02Z", 3.0);
        late_seq.seq = 9;
        let rows = [
            row(1, A, "2026-11-21T10:00:01Z", 1.0),
            row(2, B, "2026-11-21T10:00:05Z", 7.0),
            row(3, A, "2026-11-21T10:00:02Z", 2.0),
            late_seq,
            row(4, A, "2026-11-21T10:00:00.5Z", 4.0),
        ];
        let refs: Vec<&DiagRow> = rows.iter().collect();
        let (d, _) = compute(&refs, None, &HistogramBins::default(), &Known::default());
        let v = &d.vehicles;
        assert_eq!(v.vin, vec![A, B]);
        assert_eq!(v.events, vec![4, 1]);
        assert_eq!(v.first_seen[0], t("2026-11-21T10:00:00.5Z"));
        assert_eq!(
            (v.last_seen[0], v.last_seq[0]),
            (t("2026-11-21T10:00:02Z"), 9)
        );
        assert_eq!(v.speed, vec![3.0, 7.0]);
    }

    #[test]
    fn make_models_count_events_per_model_and_make_and_probe_unknown_pairs() {
        let mut other = row(3, B, "2026-11-21T10:00:00Z", 1.0);
        other.model = "XC90".into();
        let rows = [
            row(1, A, "2026-11-21T10:00:00Z", 1.0),
            row(2, A, "2026-11-21T10:00:01Z", 1.0),
            other,
        ];
        let refs: Vec<&DiagRow> = rows.iter().collect();
        let mut known = Known::default();
        let (d, probed) = compute(&refs, None, &HistogramBins::default(), &known);
        let m = &d.make_models;
        assert_eq!(m.make, vec!["Volvo"; 3]);
        assert_eq!(m.model, vec!["", "XC40", "XC90"]);
        assert_eq!(m.events, vec![3, 2, 1]);
        assert_eq!(m.pair_vin, vec![A, B, A, B]);
        assert_eq!(m.pair_model, vec!["", "", "XC40", "XC90"]);

        known.learn(probed);
        let (d, probed) = compute(&refs, None, &HistogramBins::default(), &known);
        assert!(
            d.make_models.pair_vin.is_empty(),
            "known pairs are not probed"
        );
        assert_eq!(d.make_models.events, vec![3, 2, 1], "events still count");
        assert_eq!(probed, Probed::default());
    }

    #[test]
    fn windows_sum_events_and_speeds_and_leave_late_rows_out() {
        let rows = [
            row(1, A, "2026-11-21T10:00:00.2Z", 1.0),
            row(2, A, "2026-11-21T10:00:00.7Z", 2.0),
            row(3, B, "2026-11-21T10:00:59Z", 4.0),
            row(4, B, "2026-11-21T09:00:00Z", 8.0),
            row(5, A, "2026-11-21T10:00:03Z", 16.0),
        ];
        let refs: Vec<&DiagRow> = rows.iter().collect();
        let cutoff = Some(t("2026-11-21T09:30:00Z"));
        let (d, probed) = compute(&refs, cutoff, &HistogramBins::default(), &Known::default());
        assert_eq!(d.late, 1);
        let w = &d.windows;
        assert_eq!(w.granularity, vec!["second", "second", "second", "minute"]);
        assert_eq!(
            w.window_start,
            vec![
                t("2026-11-21T10:00:00Z"),
                t("2026-11-21T10:00:03Z"),
                t("2026-11-21T10:00:59Z"),
                t("2026-11-21T10:00:00Z")
            ]
        );
        assert_eq!(w.events, vec![2, 1, 1, 4]);
        assert_eq!(w.speed_sum, vec![3.0, 16.0, 4.0, 23.0]);
        // One triple per vehicle and second window, each vehicle's in its minute.
        assert_eq!(w.vehicle_vin, vec![A, A, B]);
        assert_eq!(w.vehicle_second, vec![0, 3, 59]);
        assert!(
            w.vehicle_minute_start
                .iter()
                .all(|m| *m == t("2026-11-21T10:00:00Z"))
        );
        let minute_bits: Vec<i64> = probed.windows.iter().map(|(_, b)| *b).collect();
        assert_eq!(
            minute_bits,
            vec![
                windows::MINUTE_BIT | 1 | 1 << 3,
                windows::MINUTE_BIT | 1 << 59
            ]
        );
        // The late row still counts for its vehicle and make.
        assert_eq!(d.vehicles.events, vec![3, 2]);

        let mut known = Known::default();
        known.learn(probed);
        let (d, probed_again) = compute(&refs, cutoff, &HistogramBins::default(), &known);
        assert!(
            d.windows.vehicle_vin.is_empty(),
            "all known: nothing to probe"
        );
        assert_eq!(probed_again.windows, vec![]);
        assert_eq!(d.windows.events, vec![2, 1, 1, 4], "events still count");

        // A new second of a known minute: only that vehicle and minute are probed again.
        let next = [
            row(6, A, "2026-11-21T10:00:04Z", 1.0),
            row(7, B, "2026-11-21T10:00:59.5Z", 1.0),
        ];
        let refs_next: Vec<&DiagRow> = next.iter().collect();
        let (d, _) = compute(&refs_next, cutoff, &HistogramBins::default(), &known);
        assert_eq!(d.windows.vehicle_vin, vec![A]);
        assert_eq!(d.windows.vehicle_second, vec![4]);

        known.forget_windows_before(t("2026-11-21T10:01:00Z"));
        let (d, _) = compute(&refs, cutoff, &HistogramBins::default(), &known);
        assert_eq!(
            d.windows.vehicle_vin.len(),
            3,
            "forgotten windows are probed again"
        );
    }

    #[test]
    fn histograms_bin_like_the_rule_and_skip_missing_readings() {
        let mut a = row(1, A, "2026-11-21T10:00:01Z", 1.0);
        a.temperature_c = Some(21.0);
        let mut b = row(2, B, "2026-11-21T10:00:02Z", 1.0);
        b.temperature_c = Some(-80.0);
        b.humidity_pct = None;
        b.pressure_hpa = None;
        let rows = [a, b];
        let refs: Vec<&DiagRow> = rows.iter().collect();
        let (d, _) = compute(&refs, None, &HistogramBins::default(), &Known::default());
        let h = &d.histograms;
        let mut bins: Vec<(&str, f64, i64)> = (0..h.sensor.len())
            .map(|i| (h.sensor[i].as_str(), h.bin_lower[i], h.count[i]))
            .collect();
        bins.sort_by(|a, b| a.0.cmp(b.0).then(a.1.total_cmp(&b.1)));
        assert_eq!(
            bins,
            vec![
                ("humidity_pct", 40.0, 1),
                ("pressure_hpa", 1010.0, 1),
                ("temperature_c", f64::NEG_INFINITY, 1),
                ("temperature_c", 20.0, 1)
            ]
        );
        assert_eq!(
            h.touched_sensor,
            vec!["temperature_c", "humidity_pct", "pressure_hpa"]
        );
        assert!(
            h.touched_window_start
                .iter()
                .all(|w| *w == t("2026-11-21T10:00:00Z"))
        );
    }
}
