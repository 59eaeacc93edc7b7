//! From the local frame (x east, y north, metres) to WGS84 latitude and longitude, with the
//! equirectangular approximation around the origin (good to well under a metre over a city).

/// Mean Earth radius, metres.
const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// The origin of the local frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Origin {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}

impl Origin {
    /// Latitude and longitude, degrees, of the point `x` metres east and `y` metres north.
    pub fn to_lat_lon(self, x: f64, y: f64) -> (f64, f64) {
        let lat = self.lat + (y / EARTH_RADIUS_M).to_degrees();
        let lon = self.lon + (x / (EARTH_RADIUS_M * self.lat.to_radians().cos())).to_degrees();
        // Wrap across the antimeridian; clamp at the poles.
        let lon = if (-180.0..=180.0).contains(&lon) {
            lon
        } else {
            (lon + 180.0).rem_euclid(360.0) - 180.0
        };
        (lat.clamp(-90.0, 90.0), lon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kilometre_north_and_east() {
        let stockholm = Origin {
            lat: 59.3293,
            lon: 18.0686,
        };
        let (lat, lon) = stockholm.to_lat_lon(0.0, 1_000.0);
        assert!((lat - 59.3293 - 0.008_993).abs() < 1e-5, "{lat}");
        assert_eq!(lon, 18.0686);
        let (_, lon) = stockholm.to_lat_lon(1_000.0, 0.0);
        // 1 km east at 59.3° N is about 0.01762° of longitude.
        assert!((lon - 18.0686 - 0.017_62).abs() < 1e-4, "{lon}");
    }

    #[test]
    fn longitude_wraps() {
        let origin = Origin {
            lat: 0.0,
            lon: 179.999,
        };
        let (_, lon) = origin.to_lat_lon(1_000.0, 0.0);
        assert!((-180.0..-179.99).contains(&lon), "{lon}");
    }
}
