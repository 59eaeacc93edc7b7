//! Test helpers.

use chrono::Utc;
use fleet_common::{EventTime, Position, Sensors, TelemetryEvent, Vin};

/// A valid event of one vehicle with sequence number `seq`.
pub fn event(seq: u64) -> TelemetryEvent {
    TelemetryEvent {
        event_id: uuid::Uuid::new_v4(),
        vin: Vin::from_serial("YV1", 1),
        seq,
        ts: EventTime(Utc::now()),
        make: "Volvo".into(),
        model: "XC40".into(),
        position: Position {
            x: 0.0,
            y: 0.0,
            z: 0.0,
            lat: 59.3,
            lon: 18.0,
        },
        speed: 0.0,
        heading: 0.0,
        sensors: Sensors {
            temperature_c: 10.0,
            humidity_pct: 50.0,
            pressure_hpa: 1000.0,
        },
    }
}
