//! The shared event validation (`fleet_common`), on events built field by field from the input,
//! so that every value a field's type can hold is reachable (NUL and control characters, `seq`
//! past `bigint`, NaN, infinities, any time chrono can represent), not only what JSON can say.
//! Each field is either a valid sample's or taken from the input, so accepted events are common.
//! Whatever the validation accepts must be storable ([`fleet_fuzz::check_accepted`]).
#![no_main]

use chrono::{TimeZone, Utc};
use fleet_common::{EventTime, Sensors, TelemetryEvent, Vin};
use libfuzzer_sys::arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;

/// `field` replaced by a value from the input when the input says so.
fn maybe<'a, T: Arbitrary<'a>>(u: &mut Unstructured<'a>, field: &mut T) -> Result<()> {
    if u.arbitrary()? {
        *field = u.arbitrary()?;
    }
    Ok(())
}

fn event(u: &mut Unstructured) -> Result<TelemetryEvent> {
    let mut e = TelemetryEvent::example(
        uuid::Uuid::from_u128(u.arbitrary()?),
        Vin::from_serial("YV1", u.arbitrary()?),
        0,
        EventTime(fleet_fuzz::now() - chrono::Duration::seconds(10)),
    );
    if u.arbitrary()? {
        let text: String = u.arbitrary()?;
        // A VIN deserializes from any string, as on the broker; the rules judge it.
        e.vin = serde_json::from_value(serde_json::Value::String(text)).expect("a string");
    }
    maybe(u, &mut e.seq)?;
    if u.arbitrary()? {
        let micros: i64 = u.arbitrary()?;
        if let Some(ts) = Utc.timestamp_micros(micros).single() {
            e.ts = EventTime(ts);
        }
    }
    maybe(u, &mut e.make)?;
    maybe(u, &mut e.model)?;
    maybe(u, &mut e.position.x)?;
    maybe(u, &mut e.position.y)?;
    maybe(u, &mut e.position.z)?;
    maybe(u, &mut e.position.lat)?;
    maybe(u, &mut e.position.lon)?;
    maybe(u, &mut e.speed)?;
    maybe(u, &mut e.heading)?;
    if u.arbitrary()? {
        e.sensors = if u.arbitrary()? {
            Some(Sensors {
                temperature_c: u.arbitrary()?,
                humidity_pct: u.arbitrary()?,
                pressure_hpa: u.arbitrary()?,
            })
        } else {
            None
        };
    }
    Ok(e)
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = event(&mut Unstructured::new(data)) else {
        return;
    };
    let now = fleet_fuzz::now();
    if event.validate(now).is_ok() {
        assert!(
            event.validate_legacy(now).is_ok(),
            "validate accepts more than validate_legacy"
        );
    }
    if event.validate_legacy(now).is_ok() {
        fleet_fuzz::check_accepted(&event);
    }
});
