//! The consumer's output topics, as the consumer publishes them after a batch's commit and as
//! ingest's dashboard reads them: per-vehicle summaries (`telemetry.summary`, key = VIN),
//! per-second and per-minute windows (`telemetry.metrics`, key = `granularity|window_start`)
//! and sensor histograms of a minute window (`telemetry.histograms`, key =
//! `sensor|window_start`), each value one JSON object. The latest value of a key is the
//! current one. Unknown fields are ignored when reading.

use std::fmt;

use chrono::{DateTime, DurationRound as _, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// Where a vehicle was at its latest event.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LastPosition {
    /// Metres east in the local frame (of the area's origin).
    pub x: f64,
    /// Metres north in the local frame (of the area's origin).
    pub y: f64,
    /// Latitude.
    pub lat: f64,
    /// Longitude.
    pub lon: f64,
}

/// A vehicle's summary after a committed batch (a row of `vehicle_summary`): the value of
/// `telemetry.summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VehicleSummary {
    /// The VIN.
    pub vin: String,
    /// Make of its latest event.
    pub make: String,
    /// Model of its latest event.
    pub model: String,
    /// Earliest event time.
    pub first_seen: DateTime<Utc>,
    /// Greatest event time.
    pub last_seen: DateTime<Utc>,
    /// Sequence number of the event at `last_seen` (ties broken by the greater one).
    pub last_seq: i64,
    /// Events stored.
    pub events: i64,
    /// Position at the latest event.
    pub last_position: LastPosition,
    /// Speed at the latest event, m/s.
    pub last_speed: f64,
}

/// Width of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One second.
    Second,
    /// One minute.
    Minute,
}

impl Granularity {
    /// Both, in the order the tables list them.
    pub const ALL: [Self; 2] = [Self::Second, Self::Minute];

    /// The name on the wire and in `window_metrics.granularity`, as `date_trunc` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Second => "second",
            Self::Minute => "minute",
        }
    }

    /// The granularity named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == name)
    }

    fn width(self) -> TimeDelta {
        match self {
            Self::Second => TimeDelta::seconds(1),
            Self::Minute => TimeDelta::minutes(1),
        }
    }

    /// Start of the window holding `ts` (what `window_start` means), like PostgreSQL's
    /// `date_trunc(name, ts, 'UTC')`.
    pub fn window_start(self, ts: DateTime<Utc>) -> DateTime<Utc> {
        // Truncation towards the past also before 1970; `duration_trunc` only fails for
        // times beyond chrono's range, which event times never are.
        ts.duration_trunc(self.width()).unwrap_or(ts)
    }
}

/// A window's figures after a committed batch (a row of `window_metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowMetric {
    /// `second` or `minute`.
    pub granularity: Granularity,
    /// Start of the window (event time, UTC).
    pub window_start: DateTime<Utc>,
    /// Events counted in the window.
    pub events: i64,
    /// Distinct vehicles among them.
    pub vehicles: i64,
    /// Sum of their speeds, m/s.
    pub speed_sum: f64,
}

impl WindowMetric {
    /// Mean speed of the window's events, m/s; 0 without events.
    pub fn mean_speed(&self) -> f64 {
        if self.events == 0 {
            0.0
        } else {
            self.speed_sum / self.events as f64
        }
    }
}

/// The value of `telemetry.metrics`: a window's figures plus their mean speed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowMessage {
    /// The stored figures (inline in the JSON).
    #[serde(flatten)]
    pub metric: WindowMetric,
    /// Their mean speed, m/s; `null` when it is not finite.
    #[serde(default)]
    pub mean_speed: Option<f64>,
}

impl WindowMessage {
    /// The message of `metric`, with its [`WindowMetric::mean_speed`].
    pub fn of(metric: WindowMetric) -> Self {
        Self {
            metric,
            mean_speed: Some(metric.mean_speed()),
        }
    }
}

/// A sensor with a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensor {
    /// `temperature_c`, °C.
    TemperatureC,
    /// `humidity_pct`, percent.
    HumidityPct,
    /// `pressure_hpa`, hPa.
    PressureHpa,
}

impl Sensor {
    /// Every sensor, in the order of the consumer's SQL parameters.
    pub const ALL: [Self; 3] = [Self::TemperatureC, Self::HumidityPct, Self::PressureHpa];

    /// The name on the wire: the `diag` column, also the value of `sensor_histograms.sensor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TemperatureC => "temperature_c",
            Self::HumidityPct => "humidity_pct",
            Self::PressureHpa => "pressure_hpa",
        }
    }

    /// The sensor named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Sensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One bin of a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    /// Lower bound; `None` for the bin below the configured range.
    pub lower: Option<f64>,
    /// Events in the bin.
    pub count: i64,
}

/// The whole histogram of one sensor in one minute window after a committed batch: the value
/// of `telemetry.histograms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// The sensor.
    pub sensor: Sensor,
    /// Start of the minute window (UTC).
    pub window_start: DateTime<Utc>,
    /// Bins with at least one event, lowest first.
    pub bins: Vec<Bin>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// `value` serializes to exactly `expected` (names and shape pinned) and reads back from it.
    fn pinned<T>(value: &T, expected: serde_json::Value)
    where
        T: Serialize + for<'de> Deserialize<'de> + PartialEq + fmt::Debug,
    {
        assert_eq!(serde_json::to_value(value).unwrap(), expected);
        let text = serde_json::to_string(value).unwrap();
        assert_eq!(&serde_json::from_str::<T>(&text).unwrap(), value);
        assert_eq!(&serde_json::from_value::<T>(expected).unwrap(), value);
    }

    fn summary() -> VehicleSummary {
        VehicleSummary {
            vin: "1M8GDM9AXKP042788".into(),
            make: "Volvo".into(),
            model: "XC40".into(),
            first_seen: t("2026-11-21T10:00:00Z"),
            last_seen: t("2026-11-21T10:00:05Z"),
            last_seq: 5,
            events: 6,
            last_position: LastPosition {
                x: 1.0,
                y: 2.0,
                lat: 59.3,
                lon: 18.0,
            },
            last_speed: 12.5,
        }
    }

    #[test]
    fn summary_serializes_with_nested_position() {
        let v = serde_json::to_value(summary()).unwrap();
        assert_eq!(v["last_position"]["lat"], 59.3);
        assert_eq!(v["events"], 6);
        assert_eq!(v["last_seen"], "2026-11-21T10:00:05Z");
    }

    #[test]
    fn a_summary_round_trips_with_its_field_names() {
        pinned(
            &summary(),
            json!({"vin": "1M8GDM9AXKP042788", "make": "Volvo", "model": "XC40",
                "first_seen": "2026-11-21T10:00:00Z", "last_seen": "2026-11-21T10:00:05Z",
                "last_seq": 5, "events": 6,
                "last_position": {"x": 1.0, "y": 2.0, "lat": 59.3, "lon": 18.0},
                "last_speed": 12.5}),
        );
    }

    #[test]
    fn a_window_round_trips_flat_with_its_mean_speed() {
        let message = WindowMessage::of(WindowMetric {
            granularity: Granularity::Second,
            window_start: t("2026-11-21T10:00:01Z"),
            events: 4,
            vehicles: 2,
            speed_sum: 10.0,
        });
        assert_eq!(message.mean_speed, Some(2.5));
        pinned(
            &message,
            json!({"granularity": "second", "window_start": "2026-11-21T10:00:01Z",
                "events": 4, "vehicles": 2, "speed_sum": 10.0, "mean_speed": 2.5}),
        );
        // A mean speed that is not finite travels as `null` and reads back as none.
        let odd = WindowMessage {
            mean_speed: Some(f64::NAN),
            ..message
        };
        let text = serde_json::to_string(&odd).unwrap();
        assert!(text.contains(r#""mean_speed":null"#), "{text}");
        let read: WindowMessage = serde_json::from_str(&text).unwrap();
        assert_eq!(read.mean_speed, None);
        assert_eq!(read.metric, message.metric);
        assert_eq!(
            serde_json::to_value(Granularity::Minute).unwrap(),
            json!("minute")
        );
    }

    #[test]
    fn a_histogram_round_trips_with_its_field_names() {
        let histogram = Histogram {
            sensor: Sensor::TemperatureC,
            window_start: t("2026-11-21T10:00:00Z"),
            bins: vec![
                Bin {
                    lower: None,
                    count: 1,
                },
                Bin {
                    lower: Some(20.0),
                    count: 3,
                },
            ],
        };
        pinned(
            &histogram,
            json!({"sensor": "temperature_c", "window_start": "2026-11-21T10:00:00Z",
                "bins": [{"lower": null, "count": 1}, {"lower": 20.0, "count": 3}]}),
        );
    }

    #[test]
    fn granularity_names_round_trip() {
        for g in Granularity::ALL {
            assert_eq!(Granularity::from_name(g.as_str()), Some(g));
            assert_eq!(serde_json::to_value(g).unwrap(), json!(g.as_str()));
        }
        assert_eq!(Granularity::from_name("hour"), None);
    }

    #[test]
    fn sensor_names_round_trip() {
        for s in Sensor::ALL {
            assert_eq!(Sensor::from_name(s.as_str()), Some(s));
            assert_eq!(s.to_string(), s.as_str());
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert_eq!(Sensor::from_name("wind"), None);
    }

    #[test]
    fn windows_truncate_towards_the_past() {
        let ts = t("2026-11-21T10:17:42.987654Z");
        assert_eq!(
            Granularity::Second.window_start(ts),
            t("2026-11-21T10:17:42Z")
        );
        assert_eq!(
            Granularity::Minute.window_start(ts),
            t("2026-11-21T10:17:00Z")
        );
        let before_epoch = t("1969-12-31T23:59:59.5Z");
        assert_eq!(
            Granularity::Second.window_start(before_epoch),
            t("1969-12-31T23:59:59Z")
        );
        let on_boundary = t("2026-11-21T10:18:00Z");
        assert_eq!(Granularity::Minute.window_start(on_boundary), on_boundary);
    }

    #[test]
    fn mean_speed_of_an_empty_window_is_zero() {
        let mut w = WindowMetric {
            granularity: Granularity::Second,
            window_start: t("2026-11-21T10:00:00Z"),
            events: 0,
            vehicles: 0,
            speed_sum: 0.0,
        };
        assert_eq!(w.mean_speed(), 0.0);
        w.events = 4;
        w.speed_sum = 10.0;
        assert_eq!(w.mean_speed(), 2.5);
    }
}
