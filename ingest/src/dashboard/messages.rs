//! The consumer's output messages as the dashboard reads them: the JSON values of
//! `telemetry.summary`, `telemetry.metrics` and `telemetry.histograms` (written by the
//! consumer's `analytics::publish`). Fields the dashboard does not use are ignored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Which output topic a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Per-vehicle summaries, keyed by VIN.
    Summary,
    /// Per-second and per-minute windows, keyed by `granularity|window_start`.
    Metrics,
    /// Per-sensor histograms of a minute window, keyed by `sensor|window_start`.
    Histograms,
}

/// Where a vehicle was at its latest event.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
pub struct LastPosition {
    /// Metres east of the area's origin.
    pub x: f64,
    /// Metres north of the area's origin.
    pub y: f64,
}

/// A vehicle's summary after a committed batch; also its row in the dashboard's table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SummaryMessage {
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
    /// Events stored for it.
    pub events: i64,
    /// Position at the latest event.
    pub last_position: LastPosition,
    /// Speed at the latest event, m/s.
    pub last_speed: f64,
}

/// Width of a metrics window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// One second.
    Second,
    /// One minute.
    Minute,
}

/// A window's figures after a committed batch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WindowMessage {
    /// Its width.
    pub granularity: Granularity,
    /// Its start (event time, UTC).
    pub window_start: DateTime<Utc>,
    /// Events counted in it.
    pub events: i64,
    /// Distinct vehicles among them.
    pub vehicles: i64,
    /// Their mean speed, m/s (`null` when not finite).
    #[serde(default)]
    pub mean_speed: Option<f64>,
}

/// One bin of a histogram.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
pub struct Bin {
    /// Lower bound; `None` for the bin below the configured range.
    pub lower: Option<f64>,
    /// Events in the bin.
    pub count: i64,
}

/// A sensor's whole histogram of one minute window after a committed batch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HistogramMessage {
    /// The sensor (`temperature_c`, `humidity_pct`, `pressure_hpa`).
    pub sensor: String,
    /// Start of the minute window.
    pub window_start: DateTime<Utc>,
    /// Bins with at least one event, lowest first.
    pub bins: Vec<Bin>,
}

/// A decoded output message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// From `telemetry.summary`.
    Summary(SummaryMessage),
    /// From `telemetry.metrics`.
    Window(WindowMessage),
    /// From `telemetry.histograms`.
    Histogram(HistogramMessage),
}

impl Incoming {
    /// Decodes the JSON `payload` of a message from `source`.
    pub fn decode(source: Source, payload: &[u8]) -> Result<Self, serde_json::Error> {
        Ok(match source {
            Source::Summary => Self::Summary(serde_json::from_slice(payload)?),
            Source::Metrics => Self::Window(serde_json::from_slice(payload)?),
            Source::Histograms => Self::Histogram(serde_json::from_slice(payload)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_consumers_json_decodes() {
        let summary = br#"{"vin":"1M8GDM9AXKP042788","make":"Volvo","model":"XC40",
            "first_seen":"2026-11-21T10:00:00Z","last_seen":"2026-11-21T10:00:01Z","last_seq":1,
            "events":2,"last_position":{"x":1.0,"y":2.0,"lat":59.3,"lon":18.0},"last_speed":12.5}"#;
        let Incoming::Summary(s) = Incoming::decode(Source::Summary, summary).unwrap() else {
            panic!("not a summary");
        };
        assert_eq!(
            (s.make.as_str(), s.events, s.last_position.y),
            ("Volvo", 2, 2.0)
        );

        let window = br#"{"granularity":"second","window_start":"2026-11-21T10:00:01Z",
            "events":4,"vehicles":2,"speed_sum":10.0,"mean_speed":2.5}"#;
        let Incoming::Window(w) = Incoming::decode(Source::Metrics, window).unwrap() else {
            panic!("not a window");
        };
        assert_eq!(
            (w.granularity, w.events, w.mean_speed),
            (Granularity::Second, 4, Some(2.5))
        );

        let histogram = br#"{"sensor":"temperature_c","window_start":"2026-11-21T10:00:00Z",
            "bins":[{"lower":null,"count":1},{"lower":20.0,"count":3}]}"#;
        let Incoming::Histogram(h) = Incoming::decode(Source::Histograms, histogram).unwrap()
        else {
            panic!("not a histogram");
        };
        assert_eq!(
            h.bins[1],
            Bin {
                lower: Some(20.0),
                count: 3
            }
        );

        assert!(Incoming::decode(Source::Summary, window).is_err());
    }
}
