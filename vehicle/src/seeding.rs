//! Reproducible randomness: every vehicle draws from its own generators, derived from the
//! simulation seed, its index and the purpose, so one vehicle's draws never shift another's and
//! network timing never shifts the trajectory.

use rand::SeedableRng;
use rand::rngs::StdRng;

/// What a generator is used for; each purpose gets an independent stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Make and model.
    Identity = 1,
    /// Waypoints, speeds, stops.
    Motion = 2,
    /// Sensor drift and noise.
    Sensors = 3,
    /// Report jitter, start offset and retry backoff.
    Timing = 4,
    /// The landscape, shared by every vehicle of a seed (index ignored).
    Terrain = 5,
    /// Sensor faults (spikes, stuck values).
    Faults = 6,
    /// The old client's random VINs (`--legacy-form`).
    LegacyVin = 7,
}

/// SplitMix64's finaliser: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator for `stream` of vehicle `index` under `seed`.
pub fn rng(seed: u64, index: u64, stream: Stream) -> StdRng {
    StdRng::seed_from_u64(mix(mix(mix(seed) ^ index) ^ stream as u64))
}

/// A standard normal sample (Box-Muller).
pub fn normal(rng: &mut impl rand::Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1], so ln is finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |seed, index, stream| rng(seed, index, stream).random::<u64>();
        assert_eq!(draw(1, 2, Stream::Motion), draw(1, 2, Stream::Motion));
        assert_ne!(draw(1, 2, Stream::Motion), draw(1, 3, Stream::Motion));
        assert_ne!(draw(1, 2, Stream::Motion), draw(2, 2, Stream::Motion));
        assert_ne!(draw(1, 2, Stream::Motion), draw(1, 2, Stream::Sensors));
    }

    #[test]
    fn normal_samples_look_standard() {
        let mut r = rng(7, 0, Stream::Sensors);
        let samples: Vec<f64> = (0..20_000).map(|_| normal(&mut r)).collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / samples.len() as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
