//! Tests of the telemetry event: its JSON form, its validation and its bounds.

use super::*;

fn sample() -> TelemetryEvent {
    TelemetryEvent::example(
        "6f1c7e3a-3f0e-4a55-9b43-1b2f0d6a9e01".parse().unwrap(),
        Vin::parse("1M8GDM9AXKP042788").unwrap(),
        0,
        EventTime("2026-11-21T10:00:00Z".parse().unwrap()),
    )
}

#[test]
fn sample_parses_from_json() {
    let e: TelemetryEvent = serde_json::from_value(serde_json::json!({
        "event_id": "6f1c7e3a-3f0e-4a55-9b43-1b2f0d6a9e01",
        "vin": "1M8GDM9AXKP042788",
        "seq": 0,
        "ts": "2026-11-21T10:00:00Z",
        "make": "Volvo",
        "model": "XC40",
        "position": {"x": 1.0, "y": 2.0, "z": 3.0, "lat": 59.3, "lon": 18.0},
        "speed": 12.5,
        "heading": 90.0,
        "sensors": {"temperature_c": 21.0, "humidity_pct": 40.0, "pressure_hpa": 1013.0}
    }))
    .expect("sample parses");
    assert_eq!(e, sample());
}

fn now() -> DateTime<Utc> {
    "2026-11-21T10:00:10Z".parse().unwrap()
}

#[test]
fn sample_is_valid_and_round_trips() {
    let e = sample();
    e.validate(now()).unwrap();
    let back: TelemetryEvent = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(back, e);
}

#[test]
fn epoch_seconds_are_accepted() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v["ts"] = serde_json::json!(1_700_000_000.25);
    let e: TelemetryEvent = serde_json::from_value(v).unwrap();
    assert_eq!(e.ts.epoch_seconds(), 1_700_000_000.25);
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v["colour"] = serde_json::json!("red");
    let err = serde_json::from_value::<TelemetryEvent>(v).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
}

#[test]
fn rules_name_the_field() {
    type Mutation = fn(&mut TelemetryEvent);
    let cases: Vec<(Mutation, &str)> = vec![
        (|e| e.speed = -1.0, "speed"),
        (|e| e.speed = f64::NAN, "speed"),
        (
            |e| e.sensors.as_mut().unwrap().humidity_pct = 101.0,
            "sensors.humidity_pct",
        ),
        (
            |e| e.sensors.as_mut().unwrap().pressure_hpa = 5.0,
            "sensors.pressure_hpa",
        ),
        (|e| e.sensors = None, "sensors"),
        (|e| e.position.z = 1e9, "position.z"),
        (|e| e.make = "x".repeat(21), "make"),
        (|e| e.model = String::new(), "model"),
        (
            |e| e.vin = Vin::parse_legacy("QWERTYUIOPASDFGH1").unwrap(),
            "vin",
        ),
        (
            |e| e.ts = EventTime("2030-01-01T00:00:00Z".parse().unwrap()),
            "ts",
        ),
        (|e| e.seq = 1 << 63, "seq"),
        (|e| e.make = "Vol\0vo".into(), "make"),
        (|e| e.model = "XC\u{1b}40".into(), "model"),
        (
            |e| e.ts = EventTime::from_epoch_seconds(-1e11).unwrap(),
            "ts",
        ),
        (
            |e| e.ts = EventTime::from_epoch_seconds(-0.5).unwrap(),
            "ts",
        ),
    ];
    for (mutate, field) in cases {
        let mut e = sample();
        mutate(&mut e);
        let err = e.validate(now()).unwrap_err();
        assert_eq!(err.field, field, "{err}");
    }
}

#[test]
fn storage_limits_are_inclusive_and_named() {
    let mut e = sample();
    e.seq = MAX_SEQ;
    e.make = "x".repeat(MAX_NAME_LEN);
    e.model = "Ünïcödé ✓".into();
    e.ts = EventTime::from_epoch_seconds(0.0).unwrap();
    e.validate(now()).unwrap();
    e.seq = MAX_SEQ + 1;
    let err = e.validate(now()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "field `seq`: 9223372036854775808 is larger than 9223372036854775807, the largest PostgreSQL bigint"
    );
    let mut e = sample();
    e.make = "Vol\0vo".into();
    assert_eq!(
        e.validate_legacy(now()).unwrap_err().to_string(),
        "field `make`: contains a NUL character at position 4, which PostgreSQL text cannot hold"
    );
    let mut e = sample();
    e.ts = EventTime::from_epoch_seconds(-1e11).unwrap();
    let err = e.validate_legacy(now()).unwrap_err();
    assert_eq!(err.field, "ts");
    assert!(
        err.rule.contains("before 1970-01-01T00:00:00+00:00"),
        "{err}"
    );
}

#[test]
fn legacy_validation_accepts_vins_without_check_digit() {
    let mut e = sample();
    e.vin = Vin::parse_legacy("QWERTYUIOPASDFGH1").unwrap();
    e.validate_legacy(now()).unwrap();
}

#[test]
fn legacy_validation_accepts_no_sensors_but_checks_present_ones() {
    let mut e = sample();
    e.sensors = None;
    e.validate_legacy(now()).unwrap();
    e.sensors = sample().sensors.map(|s| Sensors {
        humidity_pct: 101.0,
        ..s
    });
    assert_eq!(
        e.validate_legacy(now()).unwrap_err().field,
        "sensors.humidity_pct"
    );
}

#[test]
fn sensors_key_is_required_but_may_be_null() {
    let mut v = serde_json::to_value(sample()).unwrap();
    v["sensors"] = serde_json::Value::Null;
    let e: TelemetryEvent = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(e.sensors, None);
    assert_eq!(serde_json::to_value(&e).unwrap()["sensors"], v["sensors"]);
    v.as_object_mut().unwrap().remove("sensors");
    let err = serde_json::from_value::<TelemetryEvent>(v).unwrap_err();
    assert!(err.to_string().contains("missing field `sensors`"), "{err}");
}
