//! Output-topic messages for the dashboard's tests: a vehicle's summary and a window, with
//! only what a test varies as arguments.

use chrono::{DateTime, TimeDelta, Utc};
use fleet_common::wire::{Granularity, LastPosition, VehicleSummary, WindowMessage, WindowMetric};

use super::messages::Incoming;

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// A summary of `vin` with `events` events, last seen `sec` s after 10:00:00.
pub fn summary(vin: &str, make: &str, model: &str, events: i64, sec: u32) -> Incoming {
    Incoming::Summary(VehicleSummary {
        vin: vin.into(),
        make: make.into(),
        model: model.into(),
        first_seen: t("2026-11-21T10:00:00Z"),
        last_seen: t("2026-11-21T10:00:00Z") + TimeDelta::seconds(sec.into()),
        last_seq: events - 1,
        events,
        last_position: LastPosition {
            x: f64::from(sec),
            y: -f64::from(sec),
            lat: 59.3,
            lon: 18.0,
        },
        last_speed: 3.0,
    })
}

/// A window message: `events` events of `vehicles` vehicles at `mean_speed`.
pub fn window(
    granularity: Granularity,
    window_start: DateTime<Utc>,
    events: i64,
    vehicles: i64,
    mean_speed: Option<f64>,
) -> Incoming {
    Incoming::Window(WindowMessage {
        metric: WindowMetric {
            granularity,
            window_start,
            events,
            vehicles,
            speed_sum: mean_speed.unwrap_or(0.0) * events as f64,
        },
        mean_speed,
    })
}
