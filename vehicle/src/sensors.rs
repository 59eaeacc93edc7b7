//! Environment sensors: temperature, humidity and sea-level pressure drift as mean-reverting
//! random walks (Ornstein-Uhlenbeck), read with a little noise. Temperature and pressure follow
//! the altitude. Readings always lie inside the ranges ingest accepts.

use fleet_common::Sensors;
use fleet_common::event::limits;
use rand::rngs::StdRng;

use crate::seeding::normal;

/// A mean-reverting random walk with a given spread around its mean.
#[derive(Debug, Clone, PartialEq)]
struct Drift {
    value: f64,
    mean: f64,
    /// Standard deviation of the value around the mean in the long run.
    spread: f64,
    /// Seconds for a deviation to shrink by a factor e.
    relaxation_s: f64,
}

impl Drift {
    fn new(mean: f64, spread: f64, relaxation_s: f64, rng: &mut StdRng) -> Self {
        Self {
            value: mean + spread * normal(rng),
            mean,
            spread,
            relaxation_s,
        }
    }

    /// Exact update of the process over `dt` seconds.
    fn advance(&mut self, dt: f64, rng: &mut StdRng) {
        let decay = (-dt / self.relaxation_s).exp();
        self.value = self.mean
            + (self.value - self.mean) * decay
            + self.spread * (1.0 - decay * decay).sqrt() * normal(rng);
    }
}

/// One vehicle's sensors.
#[derive(Debug, Clone, PartialEq)]
pub struct SensorModel {
    temperature_c: Drift,
    humidity_pct: Drift,
    sea_level_pressure_hpa: Drift,
}

impl SensorModel {
    /// Sensors with this vehicle's own climate, drawn from `rng`.
    pub fn new(rng: &mut StdRng) -> Self {
        let temperature_mean = 15.0 + 3.0 * normal(rng);
        let humidity_mean = 60.0 + 8.0 * normal(rng);
        let pressure_mean = 1013.0 + 4.0 * normal(rng);
        Self {
            temperature_c: Drift::new(temperature_mean, 2.0, 900.0, rng),
            humidity_pct: Drift::new(humidity_mean, 6.0, 900.0, rng),
            sea_level_pressure_hpa: Drift::new(pressure_mean, 3.0, 3_600.0, rng),
        }
    }

    /// Lets the weather drift for `dt` seconds.
    pub fn advance(&mut self, dt: f64, rng: &mut StdRng) {
        if dt > 0.0 {
            self.temperature_c.advance(dt, rng);
            self.humidity_pct.advance(dt, rng);
            self.sea_level_pressure_hpa.advance(dt, rng);
        }
    }

    /// A reading at `altitude_m` metres, with measurement noise, rounded to 0.01.
    pub fn read(&self, altitude_m: f64, rng: &mut StdRng) -> Sensors {
        let lapse = -0.0065 * altitude_m;
        let barometric = (1.0 - 2.255_77e-5 * altitude_m).max(0.0).powf(5.255_88);
        Sensors {
            temperature_c: reading(
                self.temperature_c.value + lapse + 0.05 * normal(rng),
                limits::TEMPERATURE,
            ),
            humidity_pct: reading(self.humidity_pct.value + 0.3 * normal(rng), (0.0, 100.0)),
            pressure_hpa: reading(
                self.sea_level_pressure_hpa.value * barometric + 0.05 * normal(rng),
                limits::PRESSURE,
            ),
        }
    }
}

/// `value` rounded to 0.01 and kept inside `lo..=hi`.
fn reading(value: f64, (lo, hi): (f64, f64)) -> f64 {
    ((value * 100.0).round() / 100.0).clamp(lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeding::{Stream, rng};

    #[test]
    fn readings_drift_but_stay_plausible() {
        for index in 0..50 {
            let mut rng = rng(9, index, Stream::Sensors);
            let mut sensors = SensorModel::new(&mut rng);
            let first = sensors.read(20.0, &mut rng);
            let mut previous = first;
            for _ in 0..3_600 {
                sensors.advance(1.0, &mut rng);
                let now = sensors.read(20.0, &mut rng);
                assert!((-30.0..=50.0).contains(&now.temperature_c), "{now:?}");
                assert!((0.0..=100.0).contains(&now.humidity_pct), "{now:?}");
                assert!((950.0..=1_060.0).contains(&now.pressure_hpa), "{now:?}");
                // Continuous: no jumps from one second to the next.
                assert!(
                    (now.temperature_c - previous.temperature_c).abs() < 1.0,
                    "{previous:?} -> {now:?}"
                );
                assert!(
                    (now.pressure_hpa - previous.pressure_hpa).abs() < 1.0,
                    "{previous:?} -> {now:?}"
                );
                previous = now;
            }
            assert_ne!(first, previous, "the weather never changed");
        }
    }

    #[test]
    fn pressure_falls_with_altitude() {
        let mut rng = rng(9, 0, Stream::Sensors);
        let sensors = SensorModel::new(&mut rng);
        let low = sensors.read(0.0, &mut rng).pressure_hpa;
        let high = sensors.read(1_000.0, &mut rng).pressure_hpa;
        assert!((low - high - 113.0).abs() < 10.0, "{low} {high}");
    }
}
