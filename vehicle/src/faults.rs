//! Sensor faults for the analytics downstream to find: spikes (one reading far off) and stuck
//! sensors (the same value repeated for a while). Each sensor fails on its own, at configured
//! rates per reading, drawn from the vehicle's own fault generator so that enabling faults never
//! shifts its trip or its weather. Faulty readings stay inside the ranges ingest accepts.

use std::time::Duration;

use fleet_common::Sensors;
use fleet_common::event::limits;
use rand::Rng;
use rand::rngs::StdRng;

/// How often sensors fail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaultRates {
    /// Probability that one reading of one sensor is a spike, in `[0, 1]`.
    pub spike_rate: f64,
    /// Probability that one sensor gets stuck at a reading, in `[0, 1]`.
    pub stuck_rate: f64,
    /// How long a stuck sensor repeats its value.
    pub stuck_duration: Duration,
}

#[cfg(test)]
impl FaultRates {
    /// No faults at all.
    pub const NONE: Self = Self {
        spike_rate: 0.0,
        stuck_rate: 0.0,
        stuck_duration: Duration::ZERO,
    };
}

/// The sensors, in the order the fault state is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Temperature,
    Humidity,
    Pressure,
}

const CHANNELS: [Channel; 3] = [Channel::Temperature, Channel::Humidity, Channel::Pressure];

impl Channel {
    /// Accepted range and the size of a spike (its magnitude lies between 1x and 2x this).
    fn range_and_spike(self) -> ((f64, f64), f64) {
        match self {
            Self::Temperature => (limits::TEMPERATURE, 15.0),
            Self::Humidity => ((0.0, 100.0), 30.0),
            Self::Pressure => (limits::PRESSURE, 40.0),
        }
    }

    fn get(self, s: &Sensors) -> f64 {
        match self {
            Self::Temperature => s.temperature_c,
            Self::Humidity => s.humidity_pct,
            Self::Pressure => s.pressure_hpa,
        }
    }

    fn set(self, s: &mut Sensors, value: f64) {
        match self {
            Self::Temperature => s.temperature_c = value,
            Self::Humidity => s.humidity_pct = value,
            Self::Pressure => s.pressure_hpa = value,
        }
    }
}

/// A sensor stuck at `value` for `remaining` more seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Stuck {
    value: f64,
    remaining_s: f64,
}

/// One vehicle's sensor faults.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    rates: FaultRates,
    stuck: [Option<Stuck>; 3],
}

impl Faults {
    /// No sensor failing yet; failures start at `rates`.
    pub fn new(rates: FaultRates) -> Self {
        Self {
            rates,
            stuck: [None; 3],
        }
    }

    /// Time passes: stuck sensors come closer to recovering.
    pub fn advance(&mut self, dt: f64) {
        for slot in &mut self.stuck {
            if let Some(stuck) = slot {
                stuck.remaining_s -= dt;
                if stuck.remaining_s <= 0.0 {
                    *slot = None;
                }
            }
        }
    }

    /// The reading as the faulty sensors report `truth`.
    pub fn apply(&mut self, truth: Sensors, rng: &mut StdRng) -> Sensors {
        let mut out = truth;
        for (i, channel) in CHANNELS.into_iter().enumerate() {
            if let Some(stuck) = self.stuck[i] {
                channel.set(&mut out, stuck.value);
                continue;
            }
            // Both draws are always made, so one rate does not shift the other's faults.
            let (stick, spike) = (rng.random::<f64>(), rng.random::<f64>());
            let magnitude = rng.random_range(1.0..2.0);
            let sign = if rng.random::<bool>() { 1.0 } else { -1.0 };
            if stick < self.rates.stuck_rate && !self.rates.stuck_duration.is_zero() {
                self.stuck[i] = Some(Stuck {
                    value: channel.get(&truth),
                    remaining_s: self.rates.stuck_duration.as_secs_f64(),
                });
            } else if spike < self.rates.spike_rate {
                let ((lo, hi), size) = channel.range_and_spike();
                let mut value = channel.get(&truth) + sign * magnitude * size;
                if !(lo..=hi).contains(&value) {
                    // Spike the other way rather than flatten it against the limit.
                    value = channel.get(&truth) - sign * magnitude * size;
                }
                channel.set(&mut out, ((value * 100.0).round() / 100.0).clamp(lo, hi));
            }
        }
        out
    }

    /// Whether any sensor is stuck now.
    #[cfg(test)]
    pub fn any_stuck(&self) -> bool {
        self.stuck.iter().any(Option::is_some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeding::{Stream, rng};

    fn truth(t: f64) -> Sensors {
        Sensors {
            temperature_c: 15.0 + t,
            humidity_pct: 60.0,
            pressure_hpa: 1_000.0 - t,
        }
    }

    #[test]
    fn spikes_appear_at_the_configured_rate_and_stay_in_range() {
        let rates = FaultRates {
            spike_rate: 0.02,
            ..FaultRates::NONE
        };
        let mut faults = Faults::new(rates);
        let mut r = rng(3, 1, Stream::Faults);
        let n = 50_000;
        let mut spikes = 0;
        for i in 0..n {
            let t = truth(f64::from(i % 10) * 0.01);
            let seen = faults.apply(t, &mut r);
            assert!((-60.0..=70.0).contains(&seen.temperature_c), "{seen:?}");
            assert!((0.0..=100.0).contains(&seen.humidity_pct), "{seen:?}");
            assert!((300.0..=1_100.0).contains(&seen.pressure_hpa), "{seen:?}");
            for channel in CHANNELS {
                let off = (channel.get(&seen) - channel.get(&t)).abs();
                if off > 0.0 {
                    assert!(off >= channel.range_and_spike().1 * 0.99, "{off}");
                    spikes += 1;
                }
            }
        }
        let rate = f64::from(spikes) / f64::from(n * 3);
        assert!((rate - 0.02).abs() < 0.002, "spike rate {rate}");
    }

    #[test]
    fn stuck_sensors_repeat_their_value_for_the_duration() {
        let rates = FaultRates {
            spike_rate: 0.0,
            stuck_rate: 0.01,
            stuck_duration: Duration::from_secs(30),
        };
        let mut faults = Faults::new(rates);
        let mut r = rng(3, 2, Stream::Faults);
        let mut previous: Option<Sensors> = None;
        let (mut repeats, mut episodes, mut longest, mut run) = (0, 0, 0, 0);
        for i in 0..20_000 {
            // The truth changes every second, so only a stuck sensor repeats.
            let seen = faults.apply(truth(f64::from(i) * 0.001), &mut r);
            if let Some(p) = previous {
                if seen.temperature_c == p.temperature_c {
                    repeats += 1;
                    run += 1;
                    longest = longest.max(run);
                } else {
                    if run > 0 {
                        episodes += 1;
                        assert!(run >= 29, "stuck for {run} readings only");
                    }
                    run = 0;
                }
            }
            previous = Some(seen);
            faults.advance(1.0);
        }
        assert!(episodes > 0, "never stuck");
        assert!(longest <= 30, "stuck for {longest} s with a 30 s duration");
        assert!(repeats > 1_000, "{repeats}");
        let _ = faults.any_stuck();
    }

    #[test]
    fn zero_rates_change_nothing_and_the_seed_fixes_the_faults() {
        let mut none = Faults::new(FaultRates::NONE);
        let mut r = rng(3, 3, Stream::Faults);
        for i in 0..1_000 {
            let t = truth(f64::from(i));
            assert_eq!(none.apply(t, &mut r), t);
        }
        let rates = FaultRates {
            spike_rate: 0.05,
            stuck_rate: 0.01,
            stuck_duration: Duration::from_secs(5),
        };
        let run = || {
            let mut faults = Faults::new(rates);
            let mut r = rng(3, 4, Stream::Faults);
            (0..2_000)
                .map(|i| {
                    faults.advance(1.0);
                    faults.apply(truth(f64::from(i) * 0.01), &mut r)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
    }
}
