//! One `diag` row: the mapping from a telemetry event and its Kafka position to the columns,
//! old ones (`timestamp`, `position_x`, ...) and new ones (`event_id`, `ts`, sensors, ...).

use chrono::{DateTime, Utc};
use fleet_common::TelemetryEvent;
use uuid::Uuid;

/// The values of one `diag` row, typed as the columns are.
#[derive(Debug, Clone, PartialEq)]
pub struct DiagRow {
    /// `event_id uuid`, the idempotency key.
    pub event_id: Uuid,
    /// `timestamp float`: event time in epoch seconds, as the old table kept it.
    pub timestamp: f64,
    /// `vin char(17)`.
    pub vin: String,
    /// `make varchar(20)`.
    pub make: String,
    /// `model varchar(20)`.
    pub model: String,
    /// `position_x float`, metres east.
    pub position_x: f64,
    /// `position_y float`, metres north.
    pub position_y: f64,
    /// `position_z float`, metres up.
    pub position_z: f64,
    /// `speed float`, m/s.
    pub speed: f64,
    /// `seq bigint`.
    pub seq: i64,
    /// `ts timestamptz`: event time.
    pub ts: DateTime<Utc>,
    /// `heading float`, degrees.
    pub heading: f64,
    /// `lat float`.
    pub lat: f64,
    /// `lon float`.
    pub lon: f64,
    /// `temperature_c float`, °C; NULL for the old client's readings, which have no sensors.
    pub temperature_c: Option<f64>,
    /// `humidity_pct float`, percent; NULL for the old client's readings, which have no sensors.
    pub humidity_pct: Option<f64>,
    /// `pressure_hpa float`, hPa; NULL for the old client's readings, which have no sensors.
    pub pressure_hpa: Option<f64>,
    /// `kafka_partition integer`.
    pub kafka_partition: i32,
    /// `kafka_offset bigint`.
    pub kafka_offset: i64,
}

/// Why a valid event still cannot become a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// `seq` does not fit the `bigint` column.
    #[error("field `seq`: {0} does not fit a PostgreSQL bigint")]
    SeqTooLarge(u64),
    /// PostgreSQL text cannot hold NUL characters.
    #[error("field `{0}`: contains a NUL character, which PostgreSQL text cannot hold")]
    NulCharacter(&'static str),
}

impl DiagRow {
    /// Maps an event read at `partition`/`offset` to its row.
    pub fn from_event(
        event: &TelemetryEvent,
        partition: i32,
        offset: i64,
    ) -> Result<Self, RowError> {
        let seq = i64::try_from(event.seq).map_err(|_| RowError::SeqTooLarge(event.seq))?;
        for (field, text) in [
            ("vin", event.vin.as_str()),
            ("make", &event.make),
            ("model", &event.model),
        ] {
            if text.contains('\0') {
                return Err(RowError::NulCharacter(field));
            }
        }
        Ok(Self {
            event_id: event.event_id,
            timestamp: event.ts.epoch_seconds(),
            vin: event.vin.as_str().to_owned(),
            make: event.make.clone(),
            model: event.model.clone(),
            position_x: event.position.x,
            position_y: event.position.y,
            position_z: event.position.z,
            speed: event.speed,
            seq,
            ts: event.ts.0,
            heading: event.heading,
            lat: event.position.lat,
            lon: event.position.lon,
            temperature_c: event.sensors.map(|s| s.temperature_c),
            humidity_pct: event.sensors.map(|s| s.humidity_pct),
            pressure_hpa: event.sensors.map(|s| s.pressure_hpa),
            kafka_partition: partition,
            kafka_offset: offset,
        })
    }
}

#[cfg(test)]
mod accepted;

/// Test data shared by the unit tests of several modules.
#[cfg(test)]
pub(crate) mod fixtures {
    use fleet_common::TelemetryEvent;

    /// A valid event as JSON, with a given event id suffix and sequence number.
    pub fn event_json(n: u32) -> serde_json::Value {
        let event = TelemetryEvent::example(
            format!("6f1c7e3a-3f0e-4a55-9b43-{n:012}")
                .parse()
                .expect("a UUID"),
            fleet_common::Vin::parse("1M8GDM9AXKP042788").expect("a valid VIN"),
            u64::from(n),
            fleet_common::EventTime("2026-11-21T10:00:00.5Z".parse().expect("a time")),
        );
        serde_json::to_value(event).expect("an event serializes")
    }

    /// The event of [`event_json`].
    pub fn event(n: u32) -> TelemetryEvent {
        serde_json::from_value(event_json(n)).expect("fixture parses")
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::event;
    use super::*;

    #[test]
    fn maps_old_and_new_columns() {
        let row = DiagRow::from_event(&event(7), 2, 41).unwrap();
        assert_eq!(
            row.event_id.to_string(),
            "6f1c7e3a-3f0e-4a55-9b43-000000000007"
        );
        assert_eq!(row.timestamp, 1_795_255_200.5);
        assert_eq!(row.ts.to_rfc3339(), "2026-11-21T10:00:00.500+00:00");
        assert_eq!(row.vin, "1M8GDM9AXKP042788");
        assert_eq!((row.make.as_str(), row.model.as_str()), ("Volvo", "XC40"));
        assert_eq!(
            (row.position_x, row.position_y, row.position_z),
            (1.0, 2.0, 3.0)
        );
        assert_eq!((row.lat, row.lon), (59.3, 18.0));
        assert_eq!((row.speed, row.heading), (12.5, 90.0));
        assert_eq!(row.seq, 7);
        assert_eq!(
            (row.temperature_c, row.humidity_pct, row.pressure_hpa),
            (Some(21.0), Some(40.0), Some(1013.0))
        );
        assert_eq!((row.kafka_partition, row.kafka_offset), (2, 41));
    }

    #[test]
    fn no_sensors_map_to_null_columns() {
        let mut e = event(3);
        e.sensors = None;
        let row = DiagRow::from_event(&e, 0, 0).unwrap();
        assert_eq!(
            (row.temperature_c, row.humidity_pct, row.pressure_hpa),
            (None, None, None)
        );
        assert_eq!((row.speed, row.position_x), (12.5, 1.0));
    }

    #[test]
    fn seq_beyond_bigint_is_refused() {
        let mut e = event(1);
        e.seq = u64::MAX;
        assert_eq!(
            DiagRow::from_event(&e, 0, 0).unwrap_err(),
            RowError::SeqTooLarge(u64::MAX)
        );
    }

    #[test]
    fn nul_in_text_is_refused_by_field() {
        let mut e = event(1);
        e.model = "XC\u{0}40".into();
        assert_eq!(
            DiagRow::from_event(&e, 0, 0).unwrap_err(),
            RowError::NulCharacter("model")
        );
    }
}
