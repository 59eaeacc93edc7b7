//! Who a vehicle is: VIN, make and model, fixed by the seed and its index.

use fleet_common::Vin;
use rand::Rng;

use crate::cli::Catalogue;
use crate::seeding::{Stream, rng};

/// A simulated vehicle's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its VIN: the make's WMI, serial number = global index (modulo 10^7), valid check digit.
    pub vin: Vin,
    /// Manufacturer.
    pub make: String,
    /// Model.
    pub model: String,
}

impl Identity {
    /// Like [`Identity::of`], but with the old client's VIN (17 random upper-case letters and
    /// digits, no check digit): the identity of a `--legacy-form` vehicle.
    pub fn legacy(catalogue: &Catalogue, seed: u64, index: u64) -> Self {
        Self {
            vin: crate::legacy::vin(seed, index),
            ..Self::of(catalogue, seed, index)
        }
    }

    /// The identity of vehicle `index`: make and model drawn from `catalogue` with the seed.
    pub fn of(catalogue: &Catalogue, seed: u64, index: u64) -> Self {
        let mut rng = rng(seed, index, Stream::Identity);
        let entry = &catalogue.0[rng.random_range(0..catalogue.0.len())];
        let model = &entry.models[rng.random_range(0..entry.models.len())];
        Self {
            vin: Vin::from_serial(&entry.wmi, index),
            make: entry.make.clone(),
            model: model.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::cli::{DEFAULT_CATALOGUE, parse_catalogue};

    #[test]
    fn vins_are_valid_distinct_and_reproducible() {
        let catalogue = parse_catalogue(DEFAULT_CATALOGUE).unwrap();
        let mut seen = HashSet::new();
        let mut makes = HashSet::new();
        for index in 0..2_000 {
            let id = Identity::of(&catalogue, 42, index);
            Vin::parse(id.vin.as_str()).unwrap_or_else(|e| panic!("{}: {e}", id.vin));
            assert!(seen.insert(id.vin.clone()), "duplicate {}", id.vin);
            let entry = catalogue.0.iter().find(|e| e.make == id.make).unwrap();
            assert!(id.vin.as_str().starts_with(&entry.wmi));
            assert!(entry.models.contains(&id.model));
            assert_eq!(Identity::of(&catalogue, 42, index), id);
            makes.insert(id.make);
        }
        assert_eq!(makes.len(), catalogue.0.len(), "every make is drawn");
    }
}
