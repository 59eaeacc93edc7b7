//! The benchmark's events: a pure function of the run and the index, so that the very same
//! events can be produced to Kafka (for the consumer) and copied into PostgreSQL (the limit).

use chrono::{DateTime, Duration, Utc};
use fleet_common::{EventTime, Position, Sensors, TelemetryEvent, Vin};
use uuid::Uuid;

/// Makes and models the vehicles are spread over, with their WMI.
const CATALOGUE: [(&str, &str, &str); 4] = [
    ("YV1", "Volvo", "XC40"),
    ("YV1", "Volvo", "XC60"),
    ("YS2", "Scania", "R450"),
    ("1FT", "Ford", "Transit"),
];

/// `events` valid events of `vehicles` vehicles reporting once per second, ending about now.
#[derive(Debug, Clone)]
pub struct Events {
    run: u64,
    vehicles: u64,
    events: u64,
    first_ts: DateTime<Utc>,
}

impl Events {
    /// The events of run `run` (keeps event ids and VINs apart from earlier runs).
    pub fn new(run: u64, vehicles: u64, events: u64, now: DateTime<Utc>) -> Self {
        let seconds = events.div_ceil(vehicles.max(1));
        Self {
            run,
            vehicles: vehicles.max(1),
            events,
            first_ts: now - Duration::seconds(seconds as i64),
        }
    }

    /// How many events there are.
    pub fn len(&self) -> u64 {
        self.events
    }

    /// True without events.
    pub fn is_empty(&self) -> bool {
        self.events == 0
    }

    /// Event `i`: vehicle `i % vehicles`, its `seq` is `i / vehicles`.
    pub fn event(&self, i: u64) -> TelemetryEvent {
        let (vehicle, seq) = (i % self.vehicles, i / self.vehicles);
        let (wmi, make, model) = CATALOGUE[(vehicle % CATALOGUE.len() as u64) as usize];
        let serial = (self.run % 1_000) * 10_000 + vehicle;
        let wave = (i % 1_000) as f64 / 1_000.0;
        TelemetryEvent {
            event_id: Uuid::from_u64_pair(self.run, i),
            vin: Vin::from_serial(wmi, serial),
            seq,
            ts: EventTime(self.first_ts + Duration::seconds(seq as i64)),
            make: make.to_owned(),
            model: model.to_owned(),
            position: Position {
                x: 2_000.0 * wave - 1_000.0,
                y: 1_000.0 - 2_000.0 * wave,
                z: 10.0 * wave,
                lat: 59.3 + wave / 100.0,
                lon: 18.0 + wave / 100.0,
            },
            speed: 30.0 * wave,
            heading: 359.0 * wave,
            sensors: Some(Sensors {
                temperature_c: -20.0 + 60.0 * wave,
                humidity_pct: 100.0 * wave,
                pressure_hpa: 950.0 + 100.0 * wave,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_valid_repeatable_and_distinct() {
        let now = Utc::now();
        let events = Events::new(7, 10, 95, now);
        assert_eq!(events.event(42), events.event(42));
        let mut ids = std::collections::BTreeSet::new();
        for i in 0..events.len() {
            let e = events.event(i);
            e.validate(now).expect("a valid event");
            assert!(e.ts.0 <= now);
            ids.insert(e.event_id);
        }
        assert_eq!(ids.len(), 95);
        assert_eq!(events.event(13).seq, 1);
    }
}
