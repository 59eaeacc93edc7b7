//! The old vehicle client's body: `application/x-www-form-urlencoded`, one reading per request.
//!
//! Two variants are accepted unchanged:
//! - the current one: `timestamp` (epoch seconds, float), `make`, `model`, `position_x`,
//!   `position_y`, `position_z`, `speed`, `vin`, each exactly once;
//! - the older one: the same, but the position as `position` given exactly 3 times, in the order
//!   x, y, z (`position=1&position=2&position=3`).
//!
//! The client sends exactly these fields, so the decoder is strict: an unknown field, a field
//! given more than once (other than the older variant's 3 `position` values), a mix of both
//! position variants, a missing field, a value that is not a number, or a value out of range is
//! a rejected record (HTTP 422, naming the field as the form calls it). A body that is not
//! `name=value` pairs joined by `&` with valid percent escapes and UTF-8 is malformed (HTTP 400).
//! Empty pairs (`a=1&&b=2`, a trailing `&`) are skipped; a body without any pair holds no events.
//!
//! The old client's VINs are 17 random upper-case letters and digits without a check digit
//! ([`Vin::parse_legacy`]); it sends no heading, no latitude/longitude (both 0, as for a JSON
//! client leaving them out) and no sensors (`sensors: null`, stored as NULL columns). It sends no
//! `event_id` and no `seq` either; ingest derives both from the reading itself so that they are
//! the same on every replica, across restarts and for a retried identical POST:
//! - `event_id` ([`event_id`]): a name-based UUID (version 8, RFC 9562 appendix B.2: SHA-256 over
//!   a namespace and the name, first 128 bits) over the decoded reading (VIN, timestamp in
//!   microseconds, make, model, position, speed). A retried POST of the same reading gets the same
//!   id, so the consumer stores it once (`ON CONFLICT (event_id) DO NOTHING`); the field order
//!   and the position variant do not matter. Two readings identical in every field, timestamp
//!   included, are one reading.
//! - `seq`: the timestamp in microseconds since the epoch. It is stable on retry, needs no state
//!   shared between replicas or kept across restarts, and grows with the client's clock, so a
//!   vehicle's readings sort by it; unlike a vehicle's own `seq` it does not start at 0 and has
//!   gaps.

use chrono::{DateTime, Utc};
// The current variant's fields, each required exactly once.
use fleet_common::event::{LEGACY_FORM_FIELDS as FIELDS, ValidationError};
use fleet_common::{EventTime, Position, TelemetryEvent, Vin};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{DecodeError, Record};

/// The older variant's position field: given [`POSITION_VALUES`] times (x, y, z) instead of
/// `position_x`, `position_y`, `position_z`.
pub const POSITION: &str = "position";

/// How many `position` values the older variant sends.
pub const POSITION_VALUES: usize = 3;

/// Namespace of [`event_id`]: makes these ids distinct from any other name-based UUID.
pub const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x1c0e_9f57_3a4d_4b8e_9d21_6f0a_2b7c_58e3);

/// Longest excerpt of a malformed pair quoted in an error.
const EXCERPT_CHARS: usize = 40;

/// Splits a form body into records: none for a body without pairs, else the one reading it
/// holds (or why it is rejected), checked against `now`.
pub fn decode(body: &[u8], now: DateTime<Utc>) -> Result<Vec<Record>, DecodeError> {
    let pairs = parse_pairs(body)?;
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![reading(&pairs, now)])
}

/// The `(name, value)` pairs of `body`, percent-decoded (`+` is a space), in body order.
fn parse_pairs(body: &[u8]) -> Result<Vec<(String, String)>, DecodeError> {
    let mut pairs = Vec::new();
    for (index, raw) in body.split(|b| *b == b'&').enumerate() {
        if raw.is_empty() {
            continue;
        }
        let malformed = |reason: String| DecodeError::MalformedForm {
            pair: index + 1,
            reason,
        };
        let Some(eq) = raw.iter().position(|b| *b == b'=') else {
            return Err(malformed(format!("`{}` has no `=`", excerpt(raw))));
        };
        let name = unescape(&raw[..eq]).map_err(malformed)?;
        if name.is_empty() {
            return Err(malformed(format!("`{}` has an empty name", excerpt(raw))));
        }
        let value = unescape(&raw[eq + 1..]).map_err(malformed)?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// Percent-decodes one name or value; `+` is a space. Refuses a `%` not followed by two hex
/// digits and text that is not UTF-8.
fn unescape(raw: &[u8]) -> Result<String, String> {
    let mut out = Vec::with_capacity(raw.len());
    let mut rest = raw;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let digit = |i: usize| char::from(*tail.get(i)?).to_digit(16);
                let (Some(high), Some(low)) = (digit(0), digit(1)) else {
                    let shown = &tail[..tail.len().min(2)];
                    return Err(format!(
                        "`%{}` is not a percent escape (two hex digits)",
                        String::from_utf8_lossy(shown)
                    ));
                };
                out.push(u8::try_from(high * 16 + low).expect("two hex digits fit a byte"));
                rest = &tail[2..];
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).map_err(|e| {
        format!(
            "not UTF-8 after percent-decoding (byte {})",
            e.utf8_error().valid_up_to() + 1
        )
    })
}

/// The start of a raw pair for an error message.
fn excerpt(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() {
        format!("{head}...")
    } else {
        head
    }
}

/// A record's rejection: the field as the form names it and the rule it breaks.
fn rejection(field: &str, rule: impl std::fmt::Display) -> String {
    format!("field `{field}`: {rule}")
}

/// How the body sends the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    /// `position_x`, `position_y`, `position_z`.
    Fields,
    /// `position` 3 times.
    Repeated,
}

/// The one reading of a form body, or why it is rejected.
fn reading(pairs: &[(String, String)], now: DateTime<Utc>) -> Record {
    let values = |name: &str| -> Vec<&str> {
        pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    if let Some((name, _)) = pairs
        .iter()
        .find(|(n, _)| n != POSITION && !FIELDS.contains(&n.as_str()))
    {
        return Err(rejection(
            name,
            format!(
                "unknown field; the form has exactly {} (or `{POSITION}` {POSITION_VALUES} times instead of position_x/y/z)",
                FIELDS.join(", ")
            ),
        ));
    }
    for name in FIELDS {
        let count = values(name).len();
        if count > 1 {
            return Err(rejection(
                name,
                format!("given {count} times, at most once allowed"),
            ));
        }
    }
    let positions = values(POSITION);
    let variant = if positions.is_empty() {
        Variant::Fields
    } else {
        Variant::Repeated
    };
    if variant == Variant::Repeated {
        if let Some(name) = ["position_x", "position_y", "position_z"]
            .into_iter()
            .find(|name| !values(name).is_empty())
        {
            return Err(rejection(
                POSITION,
                format!(
                    "cannot be combined with `{name}`: send either position_x/y/z or `{POSITION}` {POSITION_VALUES} times"
                ),
            ));
        }
        if positions.len() != POSITION_VALUES {
            return Err(rejection(
                POSITION,
                format!(
                    "given {} times, the older form sends it exactly {POSITION_VALUES} times (x, y, z)",
                    positions.len()
                ),
            ));
        }
    }
    let required = FIELDS
        .into_iter()
        .filter(|name| variant == Variant::Fields || !name.starts_with("position_"));
    for name in required {
        if values(name).is_empty() {
            return Err(rejection(name, "missing"));
        }
    }
    let one = |name: &str| values(name).first().copied().unwrap_or_default();
    let (x, y, z) = match variant {
        Variant::Fields => (
            number("position_x", one("position_x"))?,
            number("position_y", one("position_y"))?,
            number("position_z", one("position_z"))?,
        ),
        Variant::Repeated => (
            number(POSITION, positions[0])?,
            number(POSITION, positions[1])?,
            number(POSITION, positions[2])?,
        ),
    };
    let speed = number("speed", one("speed"))?;
    let ts = timestamp(one("timestamp"))?;
    let vin = Vin::parse_legacy(one("vin")).map_err(|e| rejection("vin", e))?;
    let seq = u64::try_from(ts.0.timestamp_micros())
        .map_err(|_| rejection("timestamp", "must not be before 1970"))?;
    let position = Position {
        x,
        y,
        z,
        lat: 0.0,
        lon: 0.0,
    };
    let (make, model) = (one("make").to_owned(), one("model").to_owned());
    let event = TelemetryEvent {
        event_id: event_id(&vin, ts, &make, &model, position, speed),
        vin,
        seq,
        ts,
        make,
        model,
        position,
        speed,
        heading: 0.0,
        sensors: None,
    };
    event
        .validate_legacy(now)
        .map_err(|e| form_rejection(&e, variant))?;
    Ok(event)
}

/// A numeric field's value; infinities and NaN parse and are refused by the range rules.
fn number(field: &str, text: &str) -> Result<f64, String> {
    text.parse().map_err(|_| {
        rejection(
            field,
            format!("`{}` is not a number", excerpt(text.as_bytes())),
        )
    })
}

/// The `timestamp` field: epoch seconds, not negative.
fn timestamp(text: &str) -> Result<EventTime, String> {
    const FIELD: &str = "timestamp";
    let secs = number(FIELD, text)?;
    if !secs.is_finite() {
        return Err(rejection(FIELD, "must be a finite number of epoch seconds"));
    }
    if secs < 0.0 {
        return Err(rejection(
            FIELD,
            format!(
                "{} is before 1970; epoch seconds must not be negative",
                excerpt(text.as_bytes())
            ),
        ));
    }
    EventTime::from_epoch_seconds(secs).ok_or_else(|| {
        rejection(
            FIELD,
            format!("{} epoch seconds is out of range", excerpt(text.as_bytes())),
        )
    })
}

/// A rule broken by the decoded event, named as the form names the field.
fn form_rejection(error: &ValidationError, variant: Variant) -> String {
    let axis = match error.field {
        "position.x" => Some(("position_x", "1st value (x)")),
        "position.y" => Some(("position_y", "2nd value (y)")),
        "position.z" => Some(("position_z", "3rd value (z)")),
        _ => None,
    };
    match (axis, variant) {
        (Some((field, _)), Variant::Fields) => rejection(field, &error.rule),
        (Some((_, which)), Variant::Repeated) => {
            rejection(POSITION, format!("{which}: {}", error.rule))
        }
        (None, _) if error.field == "ts" => rejection("timestamp", &error.rule),
        (None, _) => error.to_string(),
    }
}

/// The event id of a reading: a name-based UUID, version 8 (RFC 9562 appendix B.2): the first
/// 128 bits of SHA-256 over [`EVENT_ID_NAMESPACE`] and the reading as a JSON array
/// `[vin, timestamp in microseconds, make, model, x, y, z, speed]`, with the version and variant
/// bits set. The same reading always gets the same id.
pub fn event_id(
    vin: &Vin,
    ts: EventTime,
    make: &str,
    model: &str,
    position: Position,
    speed: f64,
) -> Uuid {
    let name = serde_json::json!([
        vin.as_str(),
        ts.0.timestamp_micros(),
        make,
        model,
        position.x,
        position.y,
        position.z,
        speed
    ]);
    let digest = Sha256::new()
        .chain_update(EVENT_ID_NAMESPACE.as_bytes())
        .chain_update(name.to_string())
        .finalize();
    let mut bytes = [0; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests;
