//! Tests of the old client's form decoder: both variants, every refusal, the name-based event id.

use super::*;
use crate::samples::now;

/// The old client's reading, current variant, 10 s before [`now`].
const CURRENT: &str = "timestamp=1748779200.25&make=Volvo&model=XC40&position_x=1.5\
                       &position_y=-2.25&position_z=3&speed=12.5&vin=QWERTYUIOPASDFGH1";
/// The same reading in the older variant, fields in another order.
const OLDER: &str = "vin=QWERTYUIOPASDFGH1&speed=12.5&position=1.5&position=-2.25\
                     &position=3&make=Volvo&model=XC40&timestamp=1748779200.25";

fn one(body: &str) -> Record {
    let mut records = decode(body.as_bytes(), now()).expect("well-formed");
    assert_eq!(records.len(), 1, "{body}");
    records.remove(0)
}

fn rejected(body: &str) -> String {
    one(body).expect_err(body)
}

fn malformed(body: &[u8]) -> DecodeError {
    decode(body, now()).expect_err(&String::from_utf8_lossy(body))
}

/// [`CURRENT`] with `name`'s value replaced (or the pair removed when `value` is `None`).
fn with(name: &str, value: Option<&str>) -> String {
    CURRENT
        .split('&')
        .filter_map(|pair| match pair.split_once('=') {
            Some((n, _)) if n == name => value.map(|v| format!("{n}={v}")),
            _ => Some(pair.to_owned()),
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn current_variant_decodes_with_no_sensors() {
    let e = one(CURRENT).unwrap();
    assert_eq!(e.vin.as_str(), "QWERTYUIOPASDFGH1");
    assert_eq!(e.ts.epoch_seconds(), 1_748_779_200.25);
    assert_eq!((e.make.as_str(), e.model.as_str()), ("Volvo", "XC40"));
    assert_eq!(
        (e.position.x, e.position.y, e.position.z),
        (1.5, -2.25, 3.0)
    );
    assert_eq!((e.position.lat, e.position.lon, e.heading), (0.0, 0.0, 0.0));
    assert_eq!(e.speed, 12.5);
    assert_eq!(e.sensors, None);
    assert_eq!(e.seq, 1_748_779_200_250_000);
    let payload = serde_json::to_value(&e).unwrap();
    assert!(payload["sensors"].is_null(), "{payload}");
    assert_eq!(e.event_id.get_version_num(), 8);
}

#[test]
fn older_variant_is_the_same_reading() {
    assert_eq!(one(OLDER).unwrap(), one(CURRENT).unwrap());
}

#[test]
fn ids_are_stable_and_differ_with_the_reading() {
    let first = one(CURRENT).unwrap();
    assert_eq!(one(CURRENT).unwrap().event_id, first.event_id);
    for (name, value) in [
        ("timestamp", "1748779200.26"),
        ("speed", "12.6"),
        ("vin", "QWERTYUIOPASDFGH2"),
        ("make", "Saab"),
        ("position_z", "3.5"),
    ] {
        let other = one(&with(name, Some(value))).unwrap();
        assert_ne!(other.event_id, first.event_id, "{name}");
    }
    // Spelling of the same numbers does not matter.
    let same = one(&with("position_z", Some("3.000"))).unwrap();
    assert_eq!(same.event_id, first.event_id);
}

#[test]
fn percent_escapes_and_plus_are_decoded() {
    let e = one(&with("model", Some("Model+S%C3%A9rie%2B1"))).unwrap();
    assert_eq!(e.model, "Model Série+1");
}

#[test]
fn empty_body_holds_no_events_and_empty_pairs_are_skipped() {
    assert!(decode(b"", now()).unwrap().is_empty());
    assert!(decode(b"&&", now()).unwrap().is_empty());
    assert!(one(&format!("&{CURRENT}&")).is_ok());
}

#[test]
fn malformed_bodies_name_the_pair() {
    let cases: [(&[u8], usize, &str); 6] = [
        (b"timestamp=1&make", 2, "`make` has no `=`"),
        (b"{\"vin\": \"x\"}", 1, "has no `=`"),
        (b"=5", 1, "empty name"),
        (b"make=Vol%zzvo", 1, "`%zz` is not a percent escape"),
        (b"make=Volvo%4", 1, "`%4` is not a percent escape"),
        (
            b"make=Vol%FFvo",
            1,
            "not UTF-8 after percent-decoding (byte 4)",
        ),
    ];
    for (body, pair, reason) in cases {
        match malformed(body) {
            DecodeError::MalformedForm { pair: p, reason: r } => {
                assert_eq!(p, pair, "{r}");
                assert!(r.contains(reason), "{r}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        malformed(b"make=\xff"),
        DecodeError::MalformedForm { .. }
    ));
    assert!(
        malformed(b"make")
            .to_string()
            .starts_with("malformed form body, pair 1: ")
    );
}

#[test]
fn missing_repeated_and_unknown_fields_are_named() {
    for name in FIELDS {
        let error = rejected(&with(name, None));
        assert_eq!(error, format!("field `{name}`: missing"));
    }
    let error = rejected(&format!("{CURRENT}&speed=3"));
    assert_eq!(error, "field `speed`: given 2 times, at most once allowed");
    let error = rejected(&format!("{CURRENT}&colour=red"));
    assert!(
        error.starts_with("field `colour`: unknown field"),
        "{error}"
    );
    let error = rejected(&format!("{CURRENT}&position=1&position=2&position=3"));
    assert!(
        error.starts_with("field `position`: cannot be combined with `position_x`"),
        "{error}"
    );
    let error = rejected(&OLDER.replace("&position=3", ""));
    assert!(
        error.starts_with("field `position`: given 2 times"),
        "{error}"
    );
    let error = rejected(&format!("{OLDER}&position=4"));
    assert!(
        error.starts_with("field `position`: given 4 times"),
        "{error}"
    );
}

#[test]
fn numbers_and_ranges_are_named_as_the_form_calls_them() {
    let cases = [
        (
            with("speed", Some("fast")),
            "field `speed`: `fast` is not a number",
        ),
        (with("speed", Some("")), "field `speed`: `` is not a number"),
        (with("speed", Some("-1")), "field `speed`: -1 is outside"),
        (
            with("speed", Some("NaN")),
            "field `speed`: must be a finite number",
        ),
        (
            with("position_x", Some("1e9")),
            "field `position_x`: 1000000000 is outside",
        ),
        (
            with("position_z", Some("99999")),
            "field `position_z`: 99999 is outside",
        ),
        (
            OLDER.replace("position=3", "position=99999"),
            "field `position`: 3rd value (z): 99999 is outside",
        ),
        (
            OLDER.replace("position=1.5", "position=x"),
            "field `position`: `x` is not a number",
        ),
        (
            with("timestamp", Some("2025-06-01")),
            "field `timestamp`: `2025-06-01` is not a number",
        ),
        (
            with("timestamp", Some("-1")),
            "field `timestamp`: -1 is before 1970",
        ),
        (
            with("timestamp", Some("inf")),
            "field `timestamp`: must be a finite",
        ),
        (
            with("timestamp", Some("1e300")),
            "field `timestamp`: 1e300 epoch seconds is out of range",
        ),
        (
            with("timestamp", Some("4102444800")),
            "field `timestamp`: 2100-01-01T00:00:00+00:00 is more than 300 s in the future",
        ),
        (
            with("vin", Some("QWERTY")),
            "field `vin`: must be 17 characters, got 6",
        ),
        (
            with("vin", Some("qwertyuiopasdfgh1")),
            "field `vin`: character 'q' at position 1 is not allowed (upper-case A-Z and digits)",
        ),
        (with("make", Some("")), "field `make`: must not be empty"),
        (
            with("model", Some(&"x".repeat(21))),
            "field `model`: 21 characters, at most 20 allowed",
        ),
    ];
    for (body, expected) in cases {
        let error = rejected(&body);
        assert!(error.starts_with(expected), "{body}: {error}");
    }
}

#[test]
fn real_vins_are_accepted_too() {
    assert!(one(&with("vin", Some("1M8GDM9AXKP042788"))).is_ok());
}
