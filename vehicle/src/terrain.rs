//! The ground's altitude: a smooth landscape fixed by the seed, the same for every vehicle.

use rand::Rng;

use crate::seeding::{Stream, rng};

/// Altitude above the origin's datum as a smooth function of position.
#[derive(Debug, Clone, PartialEq)]
pub struct Terrain {
    base: f64,
    waves: [(f64, f64, f64, f64); 3], // amplitude m, wavelength x m, wavelength y m, phase rad
}

impl Terrain {
    /// The landscape of `seed`.
    pub fn new(seed: u64) -> Self {
        let mut rng = rng(seed, 0, Stream::Terrain);
        let mut wave = |amplitude: f64, wavelength: f64| {
            (
                amplitude * rng.random_range(0.5..1.0),
                wavelength * rng.random_range(0.7..1.3),
                wavelength * rng.random_range(0.7..1.3),
                rng.random_range(0.0..std::f64::consts::TAU),
            )
        };
        let waves = [wave(25.0, 3_000.0), wave(8.0, 700.0), wave(2.0, 150.0)];
        Self {
            base: rng.random_range(0.0..200.0),
            waves,
        }
    }

    /// Altitude at (`x`, `y`), metres; between `base - 35` and `base + 35`.
    pub fn altitude(&self, x: f64, y: f64) -> f64 {
        use std::f64::consts::TAU;
        self.base
            + self
                .waves
                .iter()
                .map(|(a, lx, ly, phase)| a * (TAU * x / lx + phase).sin() * (TAU * y / ly).cos())
                .sum::<f64>()
    }
}
