//! Sample events: valid ones for the unit tests of the decoders and the router, and the seeds of
//! the fuzz corpus.

use chrono::{DateTime, Utc};
use fleet_common::{EventTime, TelemetryEvent, Vin};

/// The fixed "now" of decode tests and fuzz targets.
pub fn now() -> DateTime<Utc> {
    "2025-06-01T12:00:10Z"
        .parse()
        .expect("a valid RFC 3339 time")
}

/// A valid event (against [`now`] and the real clock) for vehicle `serial`, with a random id.
pub fn event_json(serial: u64) -> serde_json::Value {
    let event = TelemetryEvent::example(
        uuid::Uuid::new_v4(),
        Vin::from_serial("YV1", serial),
        serial,
        EventTime(
            "2025-06-01T12:00:00Z"
                .parse()
                .expect("a valid RFC 3339 time"),
        ),
    );
    serde_json::to_value(event).expect("an event serializes")
}
