//! Property test of the pipeline's one rule, "anything ingest accepts, the consumer stores":
//! over generated events, hostile values mixed in (NUL and control characters, long and blank
//! names, `seq` past `bigint`, NaN, infinities, times before 1970 and far in the future, bad
//! VINs), every event that [`TelemetryEvent::validate_legacy`] accepts (ingest's rule for both
//! body kinds; [`TelemetryEvent::validate`] accepts a subset) travels the real way: serialized
//! as ingest produces it, then [`classify`] (parse, the same validation, [`DiagRow::from_event`])
//! yields a row, and the row fits the `diag` columns.

use chrono::{DateTime, TimeZone, Utc};
use fleet_common::event::{MAX_NAME_LEN, MAX_SEQ, limits};
use fleet_common::{EventTime, Position, Sensors, TelemetryEvent, Vin};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use uuid::Uuid;

use crate::batch::Record;
use crate::dlq::classify;
use crate::row::DiagRow;

/// The "now" of ingest's check; the consumer checks later, at [`consumer_now`].
fn ingest_now() -> DateTime<Utc> {
    "2026-12-03T12:00:00Z".parse().expect("a time")
}

/// When the consumer reads the record: a while after ingest accepted it.
fn consumer_now() -> DateTime<Utc> {
    ingest_now() + chrono::Duration::seconds(90)
}

/// PostgreSQL `timestamptz` bounds, microseconds since 1970: 4713-11-24 BC and 294276-12-31 AD.
const PG_TIMESTAMPTZ_MICROS: (i64, i64) = (-210_866_803_200_000_000, 9_214_646_400_000_000_000);

/// A value from `valid` nine times in ten, else from `hostile`.
fn mostly<T: std::fmt::Debug + Clone + 'static>(
    valid: impl Strategy<Value = T> + 'static,
    hostile: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<T> {
    prop_oneof![9 => valid, 1 => hostile].boxed()
}

/// Any `f64`, with NaN, infinities, extremes and negative zero likely.
fn any_float() -> BoxedStrategy<f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(-0.0),
    ]
    .boxed()
}

/// A number in `lo..=hi` (edges likely) or, now and then, anything.
fn float_in(lo: f64, hi: f64) -> BoxedStrategy<f64> {
    mostly(prop_oneof![lo..=hi, Just(lo), Just(hi)], any_float())
}

/// Any text: arbitrary Unicode (control characters and NUL included), up to 24 characters.
fn any_text() -> BoxedStrategy<String> {
    prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f} ]{0,24}",
        "[A-Za-z]{0,10}\\x00[A-Za-z]{0,10}",
        "\\PC{18,24}",
    ]
    .boxed()
}

fn name() -> BoxedStrategy<String> {
    mostly("[A-Za-z0-9][A-Za-z0-9 \\-éüß✓]{0,19}", any_text())
}

fn vin() -> BoxedStrategy<Vin> {
    let text = mostly(
        prop_oneof![
            (0..10_000_000u64).prop_map(|n| Vin::from_serial("YV1", n).as_str().to_owned()),
            "[A-Z0-9]{17}",
        ],
        prop_oneof![any_text(), "[A-Za-z0-9]{16,18}"],
    );
    // A Vin deserializes from any string, as from the broker; the rules judge it.
    text.prop_map(|s| serde_json::from_value(serde_json::Value::String(s)).expect("a string"))
        .boxed()
}

fn seq() -> BoxedStrategy<u64> {
    mostly(
        prop_oneof![0..1_000_000u64, 0..=MAX_SEQ, Just(MAX_SEQ)],
        prop_oneof![any::<u64>(), Just(MAX_SEQ + 1), Just(u64::MAX)],
    )
}

fn ts() -> BoxedStrategy<EventTime> {
    let now = ingest_now().timestamp_micros();
    let future = limits::MAX_FUTURE_SECS * 1_000_000;
    let micros = mostly(
        prop_oneof![
            0..=now + future,
            now - 86_400_000_000..=now + future,
            Just(0)
        ],
        prop_oneof![
            any::<i64>(),
            -1_000_000_000_000_000i64..0,
            now + future + 1..i64::MAX,
            Just(-100_000_000_000_000_000),
        ],
    );
    (micros, 0..1_000u32)
        .prop_filter_map("inside chrono's range", |(micros, nanos)| {
            let t = Utc.timestamp_micros(micros).single()?;
            Some(EventTime(
                t + chrono::Duration::nanoseconds(i64::from(nanos)),
            ))
        })
        .boxed()
}

fn sensors() -> BoxedStrategy<Option<Sensors>> {
    let (t, p) = (limits::TEMPERATURE, limits::PRESSURE);
    let some = (float_in(t.0, t.1), float_in(0.0, 100.0), float_in(p.0, p.1)).prop_map(
        |(temperature_c, humidity_pct, pressure_hpa)| {
            Some(Sensors {
                temperature_c,
                humidity_pct,
                pressure_hpa,
            })
        },
    );
    prop_oneof![4 => some, 1 => Just(None)].boxed()
}

/// Events, most fields valid most of the time, so that both verdicts are common.
fn event() -> impl Strategy<Value = TelemetryEvent> {
    let h = limits::MAX_HORIZONTAL;
    let position = (
        float_in(-h, h),
        float_in(-h, h),
        float_in(limits::ALTITUDE.0, limits::ALTITUDE.1),
        float_in(-90.0, 90.0),
        float_in(-180.0, 180.0),
    )
        .prop_map(|(x, y, z, lat, lon)| Position { x, y, z, lat, lon });
    (
        (any::<u128>(), vin(), seq(), ts(), name(), name()),
        (
            position,
            float_in(0.0, limits::MAX_SPEED),
            float_in(0.0, 360.0),
            sensors(),
        ),
    )
        .prop_map(
            |((id, vin, seq, ts, make, model), (position, speed, heading, sensors))| {
                TelemetryEvent {
                    event_id: Uuid::from_u128(id),
                    vin,
                    seq,
                    ts,
                    make,
                    model,
                    position,
                    speed,
                    heading,
                    sensors,
                }
            },
        )
}

/// The record ingest would produce for `event`: its JSON, keyed by VIN.
fn produced(event: &TelemetryEvent) -> Record {
    Record {
        partition: 3,
        offset: 77,
        key: Some(event.vin.as_str().as_bytes().to_vec()),
        payload: Some(serde_json::to_vec(event).expect("an accepted event serializes")),
        timestamp_ms: None,
    }
}

/// Whether `row` fits the `diag` columns as PostgreSQL declares them.
fn fits_the_columns(row: &DiagRow) -> Result<(), String> {
    let vin_ok = row.vin.chars().count() == 17 && row.vin.is_ascii();
    let names_ok = [&row.make, &row.model]
        .iter()
        .all(|n| n.chars().count() <= MAX_NAME_LEN && !n.trim().is_empty());
    let no_nul = [&row.vin, &row.make, &row.model]
        .iter()
        .all(|t| !t.contains('\0'));
    let micros = row.ts.timestamp_micros();
    let ts_ok = (PG_TIMESTAMPTZ_MICROS.0..=PG_TIMESTAMPTZ_MICROS.1).contains(&micros);
    let floats = [
        row.timestamp,
        row.position_x,
        row.position_y,
        row.position_z,
        row.speed,
        row.heading,
        row.lat,
        row.lon,
    ];
    let sensors = [row.temperature_c, row.humidity_pct, row.pressure_hpa];
    let finite = floats
        .iter()
        .chain(sensors.iter().flatten())
        .all(|f| f.is_finite());
    match (vin_ok, names_ok, no_nul, ts_ok, finite, row.seq >= 0) {
        (true, true, true, true, true, true) => Ok(()),
        verdicts => Err(format!(
            "(char(17) vin, varchar(20) names, no NUL, timestamptz, finite, bigint seq) = {verdicts:?}"
        )),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    #[test]
    fn every_accepted_event_is_stored(event in event()) {
        let accepted = event.validate_legacy(ingest_now()).is_ok();
        if event.validate(ingest_now()).is_ok() {
            prop_assert!(accepted, "validate accepts what validate_legacy refuses");
        }
        if accepted {
            // The consumer's own mapping, directly ...
            let direct = DiagRow::from_event(&event, 3, 77);
            prop_assert!(direct.is_ok(), "{:?}", direct);
            // ... and the way the record really travels: ingest's JSON, parsed and checked again.
            let row = classify(&produced(&event), consumer_now());
            prop_assert!(row.is_ok(), "{:?} for {:?}", row, event);
            let row = row.expect("checked above");
            prop_assert_eq!(fits_the_columns(&row), Ok(()));
            prop_assert_eq!(&row.make, &event.make);
            prop_assert_eq!(row.seq as u64, event.seq);
            prop_assert_eq!(row.ts.timestamp_micros(), event.ts.0.timestamp_micros());
        }
    }
}

/// The property is not vacuous: the generator yields plenty of accepted and of refused events,
/// and among the refused ones every hostile kind the rule names.
#[test]
fn the_generator_covers_both_verdicts() {
    let mut runner = TestRunner::deterministic();
    let strategy = event();
    let (mut accepted, mut refused) = (0, std::collections::BTreeMap::new());
    for _ in 0..4_000 {
        let event = strategy.new_tree(&mut runner).expect("a value").current();
        match event.validate_legacy(ingest_now()) {
            Ok(()) => accepted += 1,
            Err(e) => *refused.entry(e.field).or_insert(0) += 1,
        }
    }
    assert!(accepted > 400, "only {accepted} of 4000 accepted");
    for field in ["seq", "make", "model", "ts", "vin", "speed", "position.x"] {
        assert!(
            refused.get(field).copied().unwrap_or(0) > 10,
            "{field}: {refused:?}"
        );
    }
}
