//! Test helpers.

use chrono::Utc;
use fleet_common::{EventTime, TelemetryEvent, Vin};

/// A valid event of one vehicle with sequence number `seq`.
pub fn event(seq: u64) -> TelemetryEvent {
    TelemetryEvent::example(
        uuid::Uuid::new_v4(),
        Vin::from_serial("YV1", 1),
        seq,
        EventTime(Utc::now()),
    )
}
