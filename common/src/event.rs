//! The telemetry event: one reading of one vehicle, as vehicles send it, ingest validates it,
//! the broker carries it (JSON, key = VIN) and the consumer stores it.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::vin::{Vin, VinError};

/// Longest `make` or `model`, the width of the old `diag` columns (`varchar(20)`).
pub const MAX_NAME_LEN: usize = 20;

/// Largest `seq`: the `diag.seq` column is a PostgreSQL `bigint` (`i64`).
pub const MAX_SEQ: u64 = i64::MAX as u64;

/// The fields of the old vehicle client's `application/x-www-form-urlencoded` reading, in the
/// order it sends them; an older form of it sent `position` 3 times (x, y, z) instead of
/// `position_x`, `position_y`, `position_z`. It sends no event id, sequence number, heading or
/// sensors.
pub const LEGACY_FORM_FIELDS: [&str; 8] = [
    "timestamp",
    "make",
    "model",
    "position_x",
    "position_y",
    "position_z",
    "speed",
    "vin",
];

/// One telemetry reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryEvent {
    /// Unique id set by the vehicle; the idempotency key downstream.
    pub event_id: Uuid,
    /// The vehicle's VIN (17 characters, valid check digit).
    pub vin: Vin,
    /// Per-vehicle counter from 0, without gaps.
    pub seq: u64,
    /// Event time: RFC 3339 text or epoch seconds on input, RFC 3339 on output.
    pub ts: EventTime,
    /// Manufacturer, at most 20 characters.
    pub make: String,
    /// Model, at most 20 characters.
    pub model: String,
    /// Where the vehicle is.
    pub position: Position,
    /// Speed over ground in m/s.
    pub speed: f64,
    /// Heading in degrees, 0 = north, clockwise, in `[0, 360)`.
    #[serde(default)]
    pub heading: f64,
    /// Environment sensor readings; `null` for a reading of the old vehicle client, which has no
    /// sensors (ingest's form body). The key is required either way, so a JSON client that
    /// forgets it is told so; [`validate`](Self::validate) also refuses `null`, only
    /// [`validate_legacy`](Self::validate_legacy) accepts it. Stored as NULL sensor columns.
    #[serde(deserialize_with = "required_nullable")]
    pub sensors: Option<Sensors>,
}

/// Deserializes an `Option` whose key must be present (serde's default for `Option` would treat
/// a missing key as `None`); `null` is `None`.
fn required_nullable<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d)
}

/// A position: metres in the simulation's local frame (x east, y north, z up) and WGS84.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Position {
    /// Metres east of the origin.
    pub x: f64,
    /// Metres north of the origin.
    pub y: f64,
    /// Metres above the origin.
    pub z: f64,
    /// Latitude in degrees.
    #[serde(default)]
    pub lat: f64,
    /// Longitude in degrees.
    #[serde(default)]
    pub lon: f64,
}

/// Environment sensor readings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sensors {
    /// Air temperature in °C.
    pub temperature_c: f64,
    /// Relative humidity in percent.
    pub humidity_pct: f64,
    /// Air pressure in hPa.
    pub pressure_hpa: f64,
}

/// Event time in UTC. Deserializes from RFC 3339 text or epoch seconds (integer or float).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventTime(pub DateTime<Utc>);

impl EventTime {
    /// Seconds since the Unix epoch, with fractions, as the old `diag.timestamp` column holds it.
    pub fn epoch_seconds(&self) -> f64 {
        self.0.timestamp_micros() as f64 / 1e6
    }

    /// The time from epoch seconds; `None` when out of range or not finite.
    pub fn from_epoch_seconds(secs: f64) -> Option<Self> {
        if !secs.is_finite() {
            return None;
        }
        let micros = (secs * 1e6).round();
        if micros.abs() > i64::MAX as f64 {
            return None;
        }
        Utc.timestamp_micros(micros as i64).single().map(Self)
    }
}

impl Serialize for EventTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
    }
}

impl<'de> Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(f64),
        }
        match Raw::deserialize(d)? {
            Raw::Text(s) => DateTime::parse_from_rfc3339(&s)
                .map(|t| Self(t.with_timezone(&Utc)))
                .map_err(|e| serde::de::Error::custom(format!("not an RFC 3339 time: {e}"))),
            Raw::Number(n) => Self::from_epoch_seconds(n)
                .ok_or_else(|| serde::de::Error::custom("epoch seconds out of range")),
        }
    }
}

/// Why a well-formed event is rejected: the field and the rule it breaks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field `{field}`: {rule}")]
pub struct ValidationError {
    /// Dotted path of the field, e.g. `sensors.humidity_pct`.
    pub field: &'static str,
    /// The rule, in words.
    pub rule: String,
}

impl ValidationError {
    /// The error for `field` breaking `rule`.
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }
}

/// Accepted ranges of the numeric fields: wide enough for any real vehicle, narrow enough to
/// catch unit mix-ups and garbage.
pub mod limits {
    /// Highest accepted speed, m/s (about 360 km/h).
    pub const MAX_SPEED: f64 = 100.0;
    /// Largest accepted |x|, |y| in the local frame, metres.
    pub const MAX_HORIZONTAL: f64 = 1_000_000.0;
    /// Accepted altitude range, metres.
    pub const ALTITUDE: (f64, f64) = (-500.0, 9_000.0);
    /// Accepted temperature range, °C.
    pub const TEMPERATURE: (f64, f64) = (-60.0, 70.0);
    /// Accepted pressure range, hPa.
    pub const PRESSURE: (f64, f64) = (300.0, 1_100.0);
    /// How far in the future an event time may lie, seconds (clock skew allowance).
    pub const MAX_FUTURE_SECS: i64 = 300;
    /// Earliest accepted event time, epoch seconds: 1970-01-01T00:00:00Z. No vehicle reported
    /// before it, the old client's epoch seconds cannot be negative, and everything from it to
    /// [`MAX_FUTURE_SECS`] past now lies inside both what RFC 3339 can write (years 0000-9999,
    /// the form the event travels in on the broker) and PostgreSQL's `timestamptz` (4713 BC to
    /// 294276 AD).
    pub const EARLIEST_TS_SECS: i64 = 0;
}

fn check_range(
    field: &'static str,
    value: f64,
    (lo, hi): (f64, f64),
) -> Result<(), ValidationError> {
    if !value.is_finite() {
        return Err(ValidationError::new(field, "must be a finite number"));
    }
    if value < lo || value > hi {
        return Err(ValidationError::new(
            field,
            format!("{value} is outside [{lo}, {hi}]"),
        ));
    }
    Ok(())
}

/// A name for a `varchar(MAX_NAME_LEN)` column: not blank, at most [`MAX_NAME_LEN`] characters
/// (PostgreSQL counts characters, as `chars()` does for the UTF-8 database), and no control
/// characters: NUL cannot be stored in PostgreSQL text at all, and the others are garbage in a
/// name.
fn check_name(field: &'static str, value: &str) -> Result<(), ValidationError> {
    if let Some((position, ch)) = value.chars().enumerate().find(|(_, ch)| ch.is_control()) {
        let rule = if ch == '\0' {
            format!(
                "contains a NUL character at position {}, which PostgreSQL text cannot hold",
                position + 1
            )
        } else {
            format!(
                "contains the control character U+{:04X} at position {}",
                u32::from(ch),
                position + 1
            )
        };
        return Err(ValidationError::new(field, rule));
    }
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    let len = value.chars().count();
    if len > MAX_NAME_LEN {
        return Err(ValidationError::new(
            field,
            format!("{len} characters, at most {MAX_NAME_LEN} allowed"),
        ));
    }
    Ok(())
}

impl TelemetryEvent {
    /// A plausible valid event (a car in Stockholm on a mild day), for examples and tests.
    pub fn example(event_id: Uuid, vin: Vin, seq: u64, ts: EventTime) -> Self {
        Self {
            event_id,
            vin,
            seq,
            ts,
            make: "Volvo".into(),
            model: "XC40".into(),
            position: Position {
                x: 1.0,
                y: 2.0,
                z: 3.0,
                lat: 59.3,
                lon: 18.0,
            },
            speed: 12.5,
            heading: 90.0,
            sensors: Some(Sensors {
                temperature_c: 21.0,
                humidity_pct: 40.0,
                pressure_hpa: 1013.0,
            }),
        }
    }

    /// Checks every rule that the JSON shape alone does not: VIN check digit, names (length,
    /// no control characters, NUL included), ranges of speed, position and sensors (finite
    /// numbers), heading, `seq` within [`MAX_SEQ`] and an event time from
    /// [`limits::EARLIEST_TS_SECS`] to not too far past `now`. The sensors must be there (only
    /// the old client's readings have none).
    ///
    /// This is the one validation of the pipeline: ingest accepts what passes it, and the
    /// consumer stores what passes it (every such event maps to a `diag` row), so nothing ingest
    /// acknowledges ends up in the dead-letter topic.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), ValidationError> {
        Vin::parse(self.vin.as_str())
            .map_err(|e: VinError| ValidationError::new("vin", e.to_string()))?;
        if self.sensors.is_none() {
            return Err(ValidationError::new(
                "sensors",
                "must be an object with temperature_c, humidity_pct and pressure_hpa \
                 (only the old client's form body may leave the sensors out)",
            ));
        }
        self.validate_fields(now)
    }

    /// Like [`validate`](Self::validate) but accepts the old client's readings: VINs of 17
    /// upper-case letters or digits without check digit, and no sensors (`null`).
    pub fn validate_legacy(&self, now: DateTime<Utc>) -> Result<(), ValidationError> {
        Vin::parse_legacy(self.vin.as_str())
            .map_err(|e| ValidationError::new("vin", e.to_string()))?;
        self.validate_fields(now)
    }

    fn validate_fields(&self, now: DateTime<Utc>) -> Result<(), ValidationError> {
        use limits::*;
        if self.seq > MAX_SEQ {
            return Err(ValidationError::new(
                "seq",
                format!(
                    "{} is larger than {MAX_SEQ}, the largest PostgreSQL bigint",
                    self.seq
                ),
            ));
        }
        check_name("make", &self.make)?;
        check_name("model", &self.model)?;
        check_range("speed", self.speed, (0.0, MAX_SPEED))?;
        check_range("heading", self.heading, (0.0, 360.0))?;
        let horizontal = (-MAX_HORIZONTAL, MAX_HORIZONTAL);
        check_range("position.x", self.position.x, horizontal)?;
        check_range("position.y", self.position.y, horizontal)?;
        check_range("position.z", self.position.z, ALTITUDE)?;
        check_range("position.lat", self.position.lat, (-90.0, 90.0))?;
        check_range("position.lon", self.position.lon, (-180.0, 180.0))?;
        if let Some(sensors) = &self.sensors {
            check_range("sensors.temperature_c", sensors.temperature_c, TEMPERATURE)?;
            check_range("sensors.humidity_pct", sensors.humidity_pct, (0.0, 100.0))?;
            check_range("sensors.pressure_hpa", sensors.pressure_hpa, PRESSURE)?;
        }
        if self.ts.0.timestamp() < EARLIEST_TS_SECS {
            return Err(ValidationError::new(
                "ts",
                format!(
                    "{} is before {}, the earliest accepted event time",
                    self.ts.0.to_rfc3339(),
                    DateTime::from_timestamp(EARLIEST_TS_SECS, 0)
                        .expect("a representable constant")
                        .to_rfc3339()
                ),
            ));
        }
        if self.ts.0 > now + Duration::seconds(MAX_FUTURE_SECS) {
            return Err(ValidationError::new(
                "ts",
                format!(
                    "{} is more than {MAX_FUTURE_SECS} s in the future",
                    self.ts.0.to_rfc3339()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
