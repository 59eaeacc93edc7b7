//! The consumer's output messages as the dashboard reads them: the JSON values of
//! `telemetry.summary`, `telemetry.metrics` and `telemetry.histograms`, decoded into the types
//! of [`fleet_common::wire::topics`] that the consumer's `analytics::publish` writes.

use fleet_common::wire::{Histogram, VehicleSummary, WindowMessage};

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

/// A decoded output message.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// From `telemetry.summary`.
    Summary(VehicleSummary),
    /// From `telemetry.metrics`.
    Window(WindowMessage),
    /// From `telemetry.histograms`.
    Histogram(Histogram),
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
    use fleet_common::wire::{Bin, Granularity};

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
            (w.metric.granularity, w.metric.events, w.mean_speed),
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
