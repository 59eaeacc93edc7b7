//! One simulated vehicle: identity, motion, terrain and sensors together, producing telemetry
//! events with `seq` counting from 0.

use chrono::{DateTime, Utc};
use fleet_common::{EventTime, Position, TelemetryEvent};
use rand::rngs::StdRng;
use uuid::Uuid;

use crate::faults::{FaultRates, Faults};
use crate::geo::Origin;
use crate::identity::Identity;
use crate::motion::{Limits, Motion};
use crate::seeding::{Stream, rng};
use crate::sensors::SensorModel;
use crate::terrain::Terrain;

/// Where and how vehicles are simulated; shared by all vehicles of a process.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    /// The simulation seed.
    pub seed: u64,
    /// Origin of the local frame.
    pub origin: Origin,
    /// Vehicles stay within this distance of the origin, metres.
    pub area_radius_m: f64,
    /// The landscape.
    pub terrain: Terrain,
}

impl World {
    /// The world of `seed` around `origin`.
    pub fn new(seed: u64, origin: Origin, area_radius_m: f64) -> Self {
        Self {
            seed,
            origin,
            area_radius_m,
            terrain: Terrain::new(seed),
        }
    }
}

/// One vehicle's simulation state.
#[derive(Debug, Clone)]
pub struct Simulator {
    identity: Identity,
    motion: Motion,
    sensors: SensorModel,
    faults: Faults,
    motion_rng: StdRng,
    sensor_rng: StdRng,
    fault_rng: StdRng,
    next_seq: u64,
}

impl Simulator {
    /// Vehicle `index` of `world`, at rest at its starting place, its sensors failing at
    /// `faults`.
    pub fn new(world: &World, identity: Identity, index: u64, faults: FaultRates) -> Self {
        let mut motion_rng = rng(world.seed, index, Stream::Motion);
        let mut sensor_rng = rng(world.seed, index, Stream::Sensors);
        Self {
            identity,
            motion: Motion::new(Limits::for_area(world.area_radius_m), &mut motion_rng),
            sensors: SensorModel::new(&mut sensor_rng),
            faults: Faults::new(faults),
            motion_rng,
            sensor_rng,
            fault_rng: rng(world.seed, index, Stream::Faults),
            next_seq: 0,
        }
    }

    /// Moves the vehicle and its weather on by `dt` seconds.
    pub fn advance(&mut self, dt: f64) {
        self.motion.advance(dt, &mut self.motion_rng);
        self.sensors.advance(dt, &mut self.sensor_rng);
        self.faults.advance(dt);
    }

    /// The event describing the vehicle now, stamped `ts`, with the next `seq` and a fresh
    /// event id.
    pub fn report(&mut self, world: &World, ts: DateTime<Utc>) -> TelemetryEvent {
        let (x, y) = (self.motion.x(), self.motion.y());
        let z = world.terrain.altitude(x, y);
        let (lat, lon) = world.origin.to_lat_lon(x, y);
        let seq = self.next_seq;
        self.next_seq += 1;
        TelemetryEvent {
            event_id: Uuid::new_v4(),
            vin: self.identity.vin.clone(),
            seq,
            ts: EventTime(ts),
            make: self.identity.make.clone(),
            model: self.identity.model.clone(),
            position: Position {
                x: round(x, 100.0),
                y: round(y, 100.0),
                z: round(z, 100.0),
                lat: round(lat, 1e7),
                lon: round(lon, 1e7),
            },
            speed: round(self.motion.speed(), 100.0),
            heading: crate::motion::normalize_heading(round(self.motion.heading(), 100.0)),
            sensors: Some(self.faults.apply(
                self.sensors.read(z, &mut self.sensor_rng),
                &mut self.fault_rng,
            )),
        }
    }
}

fn round(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{DEFAULT_CATALOGUE, parse_catalogue};

    fn world(radius: f64) -> World {
        World::new(
            42,
            Origin {
                lat: 59.3293,
                lon: 18.0686,
            },
            radius,
        )
    }

    fn simulator(world: &World, index: u64) -> Simulator {
        let catalogue = parse_catalogue(DEFAULT_CATALOGUE).unwrap();
        Simulator::new(
            world,
            Identity::of(&catalogue, world.seed, index),
            index,
            FaultRates {
                spike_rate: 0.01,
                stuck_rate: 0.001,
                stuck_duration: std::time::Duration::from_secs(20),
            },
        )
    }

    #[test]
    fn events_pass_validation_and_count_from_zero() {
        for radius in [10.0, 2_000.0, 400_000.0] {
            let world = world(radius);
            for index in [0, 1, 9_999_999, 123_456_789] {
                let mut sim = simulator(&world, index);
                for expected_seq in 0..2_000 {
                    let now = Utc::now();
                    let event = sim.report(&world, now);
                    assert_eq!(event.seq, expected_seq);
                    event
                        .validate(now)
                        .unwrap_or_else(|e| panic!("r={radius} index={index}: {e}: {event:?}"));
                    let json = serde_json::to_string(&event).unwrap();
                    let back: TelemetryEvent = serde_json::from_str(&json).unwrap();
                    assert_eq!(back.vin, event.vin);
                    sim.advance(1.0);
                }
            }
        }
    }

    #[test]
    fn same_seed_same_readings_fresh_event_ids() {
        let world = world(2_000.0);
        let (mut a, mut b) = (simulator(&world, 5), simulator(&world, 5));
        let ts = Utc::now();
        for _ in 0..300 {
            a.advance(1.0);
            b.advance(1.0);
            let (ea, eb) = (a.report(&world, ts), b.report(&world, ts));
            assert_ne!(ea.event_id, eb.event_id);
            assert_eq!(
                (ea.position, ea.speed, ea.heading, ea.sensors),
                (eb.position, eb.speed, eb.heading, eb.sensors)
            );
        }
    }
}
