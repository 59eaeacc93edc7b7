//! The old vehicle client's wire format (`--legacy-form`), for compatibility tests: one event per
//! request as `application/x-www-form-urlencoded` with the fields `timestamp` (epoch seconds,
//! float), `make`, `model`, `position_x`, `position_y`, `position_z`, `speed` and `vin`, and VINs
//! that are 17 random upper-case letters and digits without a check digit.

use fleet_common::{TelemetryEvent, Vin};
use rand::Rng;

use crate::seeding::{Stream, rng};

/// The content type of a legacy request.
pub const CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The characters of an old client's VIN.
const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The old client's VIN for vehicle `index`: 17 random upper-case letters and digits, fixed by
/// the seed.
pub fn vin(seed: u64, index: u64) -> Vin {
    let mut rng = rng(seed, index, Stream::LegacyVin);
    let text: String = (0..17)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    Vin::parse_legacy(&text).expect("17 upper-case letters and digits")
}

/// The form body the old client sent for `event` (its other fields are not part of the format).
pub fn form_body(event: &TelemetryEvent) -> String {
    let ts = event.ts.0;
    let timestamp = ts.timestamp() as f64 + f64::from(ts.timestamp_subsec_micros()) / 1e6;
    form_urlencoded::Serializer::new(String::new())
        .append_pair("timestamp", &format!("{timestamp:.6}"))
        .append_pair("make", &event.make)
        .append_pair("model", &event.model)
        .append_pair("position_x", &event.position.x.to_string())
        .append_pair("position_y", &event.position.y.to_string())
        .append_pair("position_z", &event.position.z.to_string())
        .append_pair("speed", &event.speed.to_string())
        .append_pair("vin", event.vin.as_str())
        .finish()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use fleet_common::EventTime;
    use fleet_common::event::LEGACY_FORM_FIELDS;

    use super::*;

    #[test]
    fn the_body_has_exactly_the_old_fields_in_order() {
        let mut event = TelemetryEvent::example(
            uuid::Uuid::nil(),
            vin(42, 7),
            3,
            EventTime(chrono::Utc.timestamp_micros(1_732_200_000_250_000).unwrap()),
        );
        event.make = "Land Rover".into();
        event.model = "F-150&Co".into();
        event.position.x = -12.5;
        event.position.y = 3.25;
        event.position.z = 17.0;
        event.speed = 8.75;
        let body = form_body(&event);
        assert_eq!(
            body,
            format!(
                "timestamp=1732200000.250000&make=Land+Rover&model=F-150%26Co&position_x=-12.5\
                 &position_y=3.25&position_z=17&speed=8.75&vin={}",
                event.vin
            )
        );
        let fields: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let names: Vec<&str> = fields.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, LEGACY_FORM_FIELDS);
        assert_eq!(fields[1].1, "Land Rover");
        assert_eq!(fields[2].1, "F-150&Co");
        assert_eq!(fields[0].1.parse::<f64>().unwrap(), 1_732_200_000.25);
    }

    #[test]
    fn vins_are_random_letters_and_digits_reproducible_and_distinct() {
        let mut seen = std::collections::HashSet::new();
        let mut without_check_digit = 0;
        for index in 0..1_000 {
            let v = vin(42, index);
            assert_eq!(v.as_str().len(), 17);
            assert!(
                v.as_str()
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
            );
            assert_eq!(vin(42, index), v);
            assert!(seen.insert(v.clone()));
            if Vin::parse(v.as_str()).is_err() {
                without_check_digit += 1;
            }
        }
        assert_ne!(vin(43, 0), vin(42, 0));
        // Random characters: almost none happen to carry a valid check digit.
        assert!(without_check_digit > 900, "{without_check_digit}");
    }
}
