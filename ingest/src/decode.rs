//! Turning a request body into records: which formats are accepted (by `Content-Type`), how a
//! body splits into records, and why a single record is refused.
//!
//! A body that is not well-formed is refused as a whole ([`DecodeError`]); a well-formed body
//! yields one [`Record`] per event, each either an event or the reason it is rejected, so one bad
//! record does not sink its neighbours. The old vehicle client's form body is read by
//! [`legacy_form`].
//!
//! A body holding more records than the request's cap is refused as a whole
//! ([`DecodeError::TooManyRecords`]) as soon as the decoder counts one too many, before any
//! record is checked: a small body of many tiny elements (`[0,0,...]`, which gzip shrinks a
//! thousandfold) must not turn into as many records, rejections and answer entries.
//!
//! A JSON or NDJSON body is first read straight into events (the fast path, about 3.4 times
//! cheaper than the slow one for a batch of 100 in a release build). Only when that fails
//! anywhere is it read again, each record as a JSON value first, so that a refusal can name the
//! path of the field at fault. A hostile body therefore costs at most the fast path up to its
//! first bad record plus the slow path.

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use fleet_common::TelemetryEvent;
use serde::Deserializer as _;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

pub mod legacy_form;

/// The body formats ingest accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`: one event object or an array of event objects.
    Json,
    /// `application/x-ndjson`: one event object per line.
    Ndjson,
    /// `application/x-www-form-urlencoded`: the old vehicle client's one reading per request
    /// ([`legacy_form`]).
    LegacyForm,
}

/// Why a body cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The `Content-Type` is missing or not one ingest reads (HTTP 415).
    #[error(
        "unsupported Content-Type {found}: send application/json (one event or an array), application/x-ndjson, or the old client's application/x-www-form-urlencoded"
    )]
    UnsupportedMediaType {
        /// The header as received, or `(none)`.
        found: String,
    },
    /// The body is not well-formed JSON (HTTP 400).
    #[error("malformed JSON at line {line} column {column}: {reason}")]
    Malformed {
        /// 1-based line in the body.
        line: usize,
        /// 1-based column in that line.
        column: usize,
        /// What the parser expected.
        reason: String,
    },
    /// Well-formed JSON of the wrong shape (HTTP 400).
    #[error("expected an event object or an array of event objects, got {0}")]
    Shape(&'static str),
    /// A form body that is not `name=value` pairs joined by `&`, percent-encoded UTF-8 (HTTP 400).
    #[error("malformed form body, pair {pair}: {reason}")]
    MalformedForm {
        /// 1-based position of the pair among the `&`-separated pieces.
        pair: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The body holds more records than one request may carry (HTTP 413).
    #[error(
        "the body holds more than {max} records, the most one request may carry \
         (ingest.max_records_per_request, INGEST_MAX_RECORDS_PER_REQUEST); send them in smaller requests"
    )]
    TooManyRecords {
        /// The cap.
        max: usize,
    },
}

/// One record of a body: the event, or why it is rejected (`field `x`: rule`).
pub type Record = Result<TelemetryEvent, String>;

impl BodyFormat {
    /// The format named by a `Content-Type` header value; parameters other than a UTF-8 charset
    /// are ignored.
    pub fn from_content_type(header: Option<&str>) -> Result<Self, DecodeError> {
        let unsupported = || DecodeError::UnsupportedMediaType {
            found: header.map_or_else(|| "(none)".to_owned(), |h| format!("`{h}`")),
        };
        let header = header.ok_or_else(unsupported)?;
        let mut parts = header.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let foreign_charset = parts
            .filter_map(|p| p.split_once('='))
            .any(|(name, value)| {
                name.trim().eq_ignore_ascii_case("charset")
                    && !value.trim().trim_matches('"').eq_ignore_ascii_case("utf-8")
            });
        if foreign_charset {
            return Err(unsupported());
        }
        match essence.as_str() {
            "application/json" => Ok(Self::Json),
            "application/x-ndjson" | "application/ndjson" => Ok(Self::Ndjson),
            "application/x-www-form-urlencoded" => Ok(Self::LegacyForm),
            _ => Err(unsupported()),
        }
    }
}

/// Splits `body` into at most `max_records` records and checks each: shape (serde, unknown
/// fields refused) and rules ([`TelemetryEvent::validate`] at `now`; for the old client's form
/// [`legacy_form::decode`]). More records than `max_records` is [`DecodeError::TooManyRecords`].
pub fn decode(
    format: BodyFormat,
    body: &[u8],
    max_records: usize,
    now: DateTime<Utc>,
) -> Result<Vec<Record>, DecodeError> {
    let typed = match format {
        BodyFormat::Json => typed_json(body, max_records),
        BodyFormat::Ndjson => typed_ndjson(body, max_records),
        BodyFormat::LegacyForm => None,
    };
    match typed {
        Some(events) => Ok(events.into_iter().map(|e| validated(e, now)).collect()),
        None => decode_through_values(format, body, max_records, now),
    }
}

/// [`decode`] without its fast path: each JSON record is read as a JSON value first, so that a
/// refusal names the path of the field at fault. What `decode` answers for a body is always
/// what this answers; the tests and the fuzz targets hold the fast path to it.
pub fn decode_through_values(
    format: BodyFormat,
    body: &[u8],
    max_records: usize,
    now: DateTime<Utc>,
) -> Result<Vec<Record>, DecodeError> {
    let values = match format {
        BodyFormat::Json => split_json(body, max_records)?,
        BodyFormat::Ndjson => split_ndjson(body, max_records)?,
        BodyFormat::LegacyForm => {
            let records = legacy_form::decode(body, now)?;
            if records.len() > max_records {
                return Err(DecodeError::TooManyRecords { max: max_records });
            }
            return Ok(records);
        }
    };
    Ok(values.into_iter().map(|v| check(v, now)).collect())
}

/// The fast path for a JSON body whose every record has the event's shape, the common case:
/// each record is read straight into a [`TelemetryEvent`], without first building a JSON value
/// of it. `None` for any other body (malformed, too many records, a record of the wrong shape,
/// a repeated key), which [`split_json`] and [`check`] then read again to say exactly what is
/// wrong where. A body this accepts, the slow path accepts too, as the same events (a test
/// holds the two to that).
fn typed_json(body: &[u8], max_records: usize) -> Option<Vec<TelemetryEvent>> {
    top_level::<TelemetryEvent>(body, max_records).ok()
}

/// A JSON body: one object, or an array of at most `max_records` values (counted while parsing,
/// so an oversized array is never held in memory as a whole).
fn split_json(body: &[u8], max_records: usize) -> Result<Vec<Value>, DecodeError> {
    top_level::<Value>(body, max_records)
}

/// Reads a JSON body's top level, one object or an array of at most `max_records` elements,
/// each element as a `T`.
fn top_level<T: de::DeserializeOwned>(
    body: &[u8],
    max_records: usize,
) -> Result<Vec<T>, DecodeError> {
    let too_many = Cell::new(false);
    let mut parser = serde_json::Deserializer::from_slice(body);
    let top = parser
        .deserialize_any(TopLevel {
            max_records,
            too_many: &too_many,
            element: PhantomData,
        })
        .and_then(|top| parser.end().map(|()| top));
    match top {
        Err(_) if too_many.get() => Err(DecodeError::TooManyRecords { max: max_records }),
        Err(e) => Err(malformed(&e, 0)),
        Ok(TopLevelValue::Records(values)) => Ok(values),
        Ok(TopLevelValue::Other(shape)) => Err(DecodeError::Shape(shape)),
    }
}

/// What a JSON body holds at its top level.
enum TopLevelValue<T> {
    /// An object (one record) or an array (one record per element).
    Records(Vec<T>),
    /// Anything else, named.
    Other(&'static str),
}

/// Reads the top level of a JSON body, counting an array's elements; sets `too_many` and stops
/// at the first element past `max_records`. Each element is read as a `T`.
struct TopLevel<'a, T> {
    max_records: usize,
    too_many: &'a Cell<bool>,
    element: PhantomData<T>,
}

impl<'de, T: de::DeserializeOwned> Visitor<'de> for TopLevel<'_, T> {
    type Value = TopLevelValue<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an event object or an array of event objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element::<T>()? {
            if values.len() == self.max_records {
                self.too_many.set(true);
                return Err(de::Error::custom("too many records"));
            }
            values.push(value);
        }
        Ok(TopLevelValue::Records(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let record = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(TopLevelValue::Records(vec![record]))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(TopLevelValue::Other("null"))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(TopLevelValue::Other("a boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(TopLevelValue::Other("a number"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(TopLevelValue::Other("a number"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(TopLevelValue::Other("a number"))
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(TopLevelValue::Other("a string"))
    }
}

/// The fast path for an NDJSON body, as [`typed_json`] is for a JSON one: `None` unless every
/// line reads straight into a [`TelemetryEvent`] and there are at most `max_records` of them.
fn typed_ndjson(body: &[u8], max_records: usize) -> Option<Vec<TelemetryEvent>> {
    split_ndjson(body, max_records).ok()
}

/// An NDJSON body: its non-blank lines, at most `max_records` of them (counted before any line
/// is parsed), each read as a `T`.
fn split_ndjson<T: de::DeserializeOwned>(
    body: &[u8],
    max_records: usize,
) -> Result<Vec<T>, DecodeError> {
    let lines = || {
        body.split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
    };
    if lines().nth(max_records).is_some() {
        return Err(DecodeError::TooManyRecords { max: max_records });
    }
    lines()
        .map(|(index, line)| serde_json::from_slice(line).map_err(|e| malformed(&e, index)))
        .collect()
}

/// A parse error as [`DecodeError::Malformed`]; `line_offset` shifts the line for NDJSON, where
/// each line is parsed on its own.
fn malformed(error: &serde_json::Error, line_offset: usize) -> DecodeError {
    let text = error.to_string();
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    DecodeError::Malformed {
        line: error.line() + line_offset,
        column: error.column(),
        reason: text.strip_suffix(&suffix).unwrap_or(&text).to_owned(),
    }
}

/// A record read as an event, checked against the rules at `now`.
fn validated(event: TelemetryEvent, now: DateTime<Utc>) -> Record {
    event.validate(now).map_err(|e| e.to_string())?;
    Ok(event)
}

/// A record read as a JSON value: its shape (naming the path of the field that is wrong), then
/// its rules.
fn check(value: Value, now: DateTime<Utc>) -> Record {
    let event: TelemetryEvent = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.into_inner().to_string()
        } else {
            format!("field `{path}`: {}", e.into_inner())
        }
    })?;
    validated(event, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::{event_json, now};

    /// The cap on records per request in these tests.
    const MAX: usize = 1000;

    #[test]
    fn content_types() {
        let ok = [
            ("application/json", BodyFormat::Json),
            ("Application/JSON; charset=utf-8", BodyFormat::Json),
            ("application/x-ndjson", BodyFormat::Ndjson),
            ("application/x-www-form-urlencoded", BodyFormat::LegacyForm),
            (
                "Application/X-WWW-Form-Urlencoded; charset=UTF-8",
                BodyFormat::LegacyForm,
            ),
        ];
        for (header, format) in ok {
            assert_eq!(
                BodyFormat::from_content_type(Some(header)),
                Ok(format),
                "{header}"
            );
        }
        for header in [
            None,
            Some("text/plain"),
            Some("application/json; charset=latin1"),
            Some("application/x-www-form-urlencoded; charset=iso-8859-1"),
            Some("multipart/form-data"),
        ] {
            assert!(BodyFormat::from_content_type(header).is_err(), "{header:?}");
        }
    }

    #[test]
    fn object_and_array() {
        let one = event_json(0).to_string();
        assert_eq!(
            decode(BodyFormat::Json, one.as_bytes(), MAX, now())
                .unwrap()
                .len(),
            1
        );
        let two = serde_json::json!([event_json(0), event_json(1)]).to_string();
        let records = decode(BodyFormat::Json, two.as_bytes(), MAX, now()).unwrap();
        assert_eq!(records.len(), 2);
        assert!(records.iter().all(Result::is_ok));
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = decode(BodyFormat::Json, b"[\n  {\"vin\": }\n]", MAX, now()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Malformed {
                    line: 2,
                    column: 11,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "malformed JSON at line 2 column 11: expected value"
        );
    }

    #[test]
    fn wrong_shape_is_named() {
        let err = decode(BodyFormat::Json, b"42", MAX, now()).unwrap_err();
        assert_eq!(err, DecodeError::Shape("a number"));
    }

    #[test]
    fn ndjson_lines_and_errors() {
        let body = format!("{}\n\n{}\n", event_json(0), event_json(1));
        assert_eq!(
            decode(BodyFormat::Ndjson, body.as_bytes(), MAX, now())
                .unwrap()
                .len(),
            2
        );
        let body = format!("{}\n{{oops\n", event_json(0));
        let err = decode(BodyFormat::Ndjson, body.as_bytes(), MAX, now()).unwrap_err();
        assert!(
            matches!(
                err,
                DecodeError::Malformed {
                    line: 2,
                    column: 2,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn record_errors_name_the_field() {
        let mut bad_type = event_json(0);
        bad_type["speed"] = "fast".into();
        let mut unknown = event_json(1);
        unknown["colour"] = "red".into();
        let mut out_of_range = event_json(2);
        out_of_range["sensors"]["humidity_pct"] = 140.0.into();
        let mut missing = event_json(3);
        missing.as_object_mut().unwrap().remove("vin");
        let body = serde_json::json!([bad_type, unknown, out_of_range, missing, 7]).to_string();
        let errors: Vec<String> = decode(BodyFormat::Json, body.as_bytes(), MAX, now())
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap_err())
            .collect();
        assert!(
            errors[0].starts_with("field `speed`: invalid type"),
            "{}",
            errors[0]
        );
        assert!(
            errors[1].contains("unknown field `colour`"),
            "{}",
            errors[1]
        );
        assert!(
            errors[2].starts_with("field `sensors.humidity_pct`: 140"),
            "{}",
            errors[2]
        );
        assert!(errors[3].contains("missing field `vin`"), "{}", errors[3]);
        assert!(errors[4].contains("invalid type: integer"), "{}", errors[4]);
    }

    #[test]
    fn records_past_the_cap_refuse_the_body() {
        let at_cap = serde_json::json!([event_json(0), event_json(1), event_json(2)]).to_string();
        assert_eq!(
            decode(BodyFormat::Json, at_cap.as_bytes(), 3, now())
                .unwrap()
                .len(),
            3
        );
        let too_many = DecodeError::TooManyRecords { max: 2 };
        assert_eq!(
            decode(BodyFormat::Json, at_cap.as_bytes(), 2, now()).unwrap_err(),
            too_many
        );
        // The amplification body: many tiny elements, refused without a record each.
        let zeros = format!("[{}0]", "0,".repeat(524_286));
        let err = decode(BodyFormat::Json, zeros.as_bytes(), MAX, now()).unwrap_err();
        assert_eq!(err, DecodeError::TooManyRecords { max: MAX });
        assert!(
            err.to_string()
                .contains("more than 1000 records, the most one request may carry (ingest.max_records_per_request"),
            "{err}"
        );
        let lines = format!(
            "{}\n\n{}\n{}\n",
            event_json(0),
            event_json(1),
            event_json(2)
        );
        assert_eq!(
            decode(BodyFormat::Ndjson, lines.as_bytes(), 3, now())
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            decode(BodyFormat::Ndjson, lines.as_bytes(), 2, now()).unwrap_err(),
            too_many
        );
        // A single object is one record, a form body at most one.
        let one = event_json(0).to_string();
        assert_eq!(
            decode(BodyFormat::Json, one.as_bytes(), 1, now())
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_cut_off_array_is_malformed_not_too_many() {
        let body = format!("[{},", event_json(0));
        let err = decode(BodyFormat::Json, body.as_bytes(), MAX, now()).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed { .. }), "{err:?}");
        let err = decode(BodyFormat::Json, b"[1, 2] 3", MAX, now()).unwrap_err();
        assert!(matches!(err, DecodeError::Malformed { .. }), "{err:?}");
        for (body, shape) in [
            (&b"null"[..], "null"),
            (b"true", "a boolean"),
            (b"-1.5", "a number"),
            (b"\"x\"", "a string"),
        ] {
            assert_eq!(
                decode(BodyFormat::Json, body, MAX, now()).unwrap_err(),
                DecodeError::Shape(shape)
            );
        }
    }

    /// The records of `body` as the slow path reads them.
    fn slow_path(format: BodyFormat, body: &[u8]) -> Result<Vec<Record>, DecodeError> {
        decode_through_values(format, body, MAX, now())
    }

    #[test]
    fn the_fast_path_accepts_only_what_the_slow_path_accepts_alike() {
        let good = event_json(0).to_string();
        let tail = &good[1..];
        let variants = [
            good.clone(),
            // Repeated keys: the slow path keeps the last, the fast path refuses and defers.
            format!(r#"{{"speed":-3,{tail}"#),
            format!(r#"{{"make":"Saab",{tail}"#),
            format!(r#"{{"colour":"red",{tail}"#),
            good.replace(r#""heading":"#, r#""ignored":"#),
            good.replace(r#""seq":0"#, r#""seq":0.0"#),
            good.replace(r#""seq":0"#, r#""seq":1e2"#),
            good.replace(r#""seq":0"#, r#""seq":-1"#),
            good.replace(r#""seq":0"#, r#""seq":18446744073709551616"#),
            good.replace(r#""speed":"#, r#""speed":1e400,"x":"#),
            good.replace(r#""speed":"#, r#""speed":-0.0,"x":"#),
            good.replace(r#""speed":"#, r#""speed":12,"x":"#),
            good.replace(r#""make":"#, r#""make":"V\u00f6lvo","x":"#),
            good.replace(r#""make":"#, r#""make":"Vol\u0000vo","x":"#),
            good.replace(r#""make":"#, r#""make":"\ud800","x":"#),
            good.replace(
                r#""ts":"2025-06-01T12:00:00.000000Z""#,
                r#""ts":1748779200"#,
            ),
            good.replace(
                r#""ts":"2025-06-01T12:00:00.000000Z""#,
                r#""ts":1748779200.25"#,
            ),
            good.replace(r#""ts":"2025-06-01T12:00:00.000000Z""#, r#""ts":[1]"#),
            good.replace(r#""sensors":{"#, r#""sensors":null,"s":{"#),
            good.replace(r#""sensors":{"#, r#""sensors":[1,2,3],"s":{"#),
            good.replace(r#""lat":"#, r#""lat":null,"l":"#),
            good.replace(r#""position":{"#, r#""position":{"x":1,"#),
            good.replace(r#""vin":""#, r#""vin":"X"#),
            good.replace('{', " {\n "),
        ];
        assert!(
            variants[1..].iter().all(|v| *v != good),
            "every variant changes the body"
        );
        let mut fast_taken = 0;
        for variant in &variants {
            let array = format!("[{good},{variant}]");
            let ndjson = format!("{good}\n{}\n", variant.replace('\n', " "));
            for (format, body) in [
                (BodyFormat::Json, variant.as_str()),
                (BodyFormat::Json, &array),
                (BodyFormat::Ndjson, &ndjson),
            ] {
                let fast = match format {
                    BodyFormat::Json => typed_json(body.as_bytes(), MAX),
                    _ => typed_ndjson(body.as_bytes(), MAX),
                };
                let slow = slow_path(format, body.as_bytes());
                if let Some(events) = fast {
                    fast_taken += 1;
                    let fast: Vec<Record> =
                        events.into_iter().map(|e| validated(e, now())).collect();
                    assert_eq!(Ok(fast), slow, "{body}");
                }
                assert_eq!(
                    decode(format, body.as_bytes(), MAX, now()),
                    slow_path(format, body.as_bytes()),
                    "{body}"
                );
            }
        }
        assert!(fast_taken >= 3, "the common body takes the fast path");
    }

    #[test]
    fn hostile_values_are_rejected_naming_the_field() {
        let mut seq = event_json(0);
        seq["seq"] = serde_json::json!(1_u64 << 63);
        let mut nul = event_json(1);
        nul["make"] = "Vol\u{0}vo".into();
        let mut ancient = event_json(2);
        ancient["ts"] = serde_json::json!(-1e11);
        let body = serde_json::json!([seq, nul, ancient]).to_string();
        let errors: Vec<String> = decode(BodyFormat::Json, body.as_bytes(), MAX, now())
            .unwrap()
            .into_iter()
            .map(|r| r.unwrap_err())
            .collect();
        assert!(errors[0].starts_with("field `seq`: "), "{}", errors[0]);
        assert!(
            errors[1].starts_with("field `make`: contains a NUL"),
            "{}",
            errors[1]
        );
        assert!(errors[2].starts_with("field `ts`: "), "{}", errors[2]);
    }
}
