//! What every fuzz target checks besides "no panic, no crash": the decoders keep the cap on
//! records, and every event they accept keeps the pipeline's rule (anything ingest accepts, the
//! consumer stores): it passes the shared validation again after the trip through the broker's
//! JSON, with a `seq` that fits `bigint`, names without NUL and a time PostgreSQL can hold.
//! And the decoder's fast path (a body read straight into events) answers exactly what the
//! decoder through JSON values answers.

use chrono::{DateTime, Utc};
use fleet_common::TelemetryEvent;
use fleet_common::event::limits::MAX_FUTURE_SECS;
use fleet_common::event::{MAX_NAME_LEN, MAX_SEQ};
use ingest::decode::{self, BodyFormat, DecodeError};

/// The "now" of every target (fixed, so a crash replays).
pub fn now() -> DateTime<Utc> {
    ingest::samples::now()
}

/// The cap on records per request of the targets: small, so the fuzzer reaches it.
pub const MAX_RECORDS: usize = 16;

/// Decodes `body` as `format` under [`MAX_RECORDS`] and checks the outcome, and that it is the
/// outcome of the decoder without its fast path (each record read as a JSON value first).
pub fn decode_and_check(format: BodyFormat, body: &[u8]) {
    let outcome = decode::decode(format, body, MAX_RECORDS, now());
    assert_eq!(
        outcome,
        decode::decode_through_values(format, body, MAX_RECORDS, now()),
        "the fast path and the decoder through JSON values disagree"
    );
    check_decoded(outcome);
}

/// Checks a decoder's outcome: at most [`MAX_RECORDS`] records, every accepted one storable.
pub fn check_decoded(outcome: Result<Vec<decode::Record>, DecodeError>) {
    let Ok(records) = outcome else { return };
    assert!(records.len() <= MAX_RECORDS, "{} records", records.len());
    for event in records.iter().flatten() {
        check_accepted(event);
    }
}

/// Asserts that an accepted event is one the consumer stores: it survives ingest's JSON and the
/// consumer's parse and validation (at a later "now"), and fits the `diag` columns.
pub fn check_accepted(event: &TelemetryEvent) {
    let later = now() + chrono::Duration::seconds(60);
    event
        .validate_legacy(now())
        .expect("an accepted event passes the shared validation");
    let produced = serde_json::to_vec(event).expect("an accepted event serializes");
    let read: TelemetryEvent =
        serde_json::from_slice(&produced).expect("the consumer parses what ingest produced");
    read.validate_legacy(later)
        .expect("the consumer accepts what ingest produced");
    assert!(read.seq <= MAX_SEQ);
    assert_eq!(read.vin.as_str().len(), 17);
    for name in [&read.make, &read.model] {
        assert!(!name.contains('\0') && name.chars().count() <= MAX_NAME_LEN);
    }
    let latest = now() + chrono::Duration::seconds(MAX_FUTURE_SECS);
    assert!(read.ts.0.timestamp() >= 0 && read.ts.0 <= latest);
}
