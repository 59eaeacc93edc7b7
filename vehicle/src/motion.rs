//! How a vehicle moves: from one random waypoint to the next inside the area, with limits on
//! speed, acceleration, braking, lateral acceleration and yaw rate, so speed and heading change
//! continuously. Some waypoints are stops where the vehicle waits a few seconds.
//!
//! Frame: x east, y north, metres from the origin; heading in degrees, 0 = north, clockwise.
//! Waypoints lie inside a disk smaller than the area by the distance a vehicle needs to brake
//! and turn around at full speed, so the vehicle never leaves the area.

use std::f64::consts::TAU;

use rand::Rng;
use rand::rngs::StdRng;

/// Speed limit, m/s (60 km/h).
pub const SPEED_LIMIT: f64 = 16.7;
/// Strongest acceleration, m/s².
pub const MAX_ACCEL: f64 = 2.5;
/// Strongest braking, m/s².
pub const MAX_DECEL: f64 = 4.0;
/// Strongest lateral (cornering) acceleration, m/s².
pub const MAX_LATERAL: f64 = 3.0;
/// Fastest change of heading, degrees per second (at walking pace; less when faster).
pub const MAX_YAW_RATE: f64 = 30.0;
/// Integration step, seconds: reports further apart are simulated in steps this long.
const SUBSTEP: f64 = 0.1;
/// Speed at which a vehicle passes a waypoint it does not stop at, m/s.
const CORNER_SPEED: f64 = 5.0;
/// Share of waypoints that are stops.
const STOP_PROBABILITY: f64 = 0.25;
/// Shortest and longest wait at a stop, seconds.
const STOP_SECONDS: (f64, f64) = (3.0, 20.0);

/// The limits of one vehicle in one area.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Highest speed, m/s: [`SPEED_LIMIT`], or less in a small area.
    pub max_speed: f64,
    /// Strongest acceleration, m/s².
    pub max_accel: f64,
    /// Strongest braking, m/s².
    pub max_decel: f64,
    /// Fastest change of heading, degrees per second.
    pub max_yaw_rate: f64,
    /// The vehicle stays within this distance of the origin, metres.
    pub area_radius: f64,
}

impl Limits {
    /// Limits for an area of `radius` metres: in small areas the top speed is lowered so that
    /// braking and turning around fit in a quarter of the radius.
    pub fn for_area(radius: f64) -> Self {
        let area_cap = (radius / 4.0 / turn_around_factor()).sqrt();
        Self {
            max_speed: SPEED_LIMIT.min(area_cap),
            max_accel: MAX_ACCEL,
            max_decel: MAX_DECEL,
            max_yaw_rate: MAX_YAW_RATE,
            area_radius: radius,
        }
    }

    /// Distance a vehicle at top speed may need to stop turning away from the edge, with a
    /// factor 2 of safety: braking distance plus turning diameter.
    fn turn_around_distance(&self) -> f64 {
        self.max_speed.powi(2) * turn_around_factor()
    }
}

/// `(braking distance + turning diameter) * 2 / v²`.
fn turn_around_factor() -> f64 {
    2.0 * (1.0 / (2.0 * MAX_DECEL) + 1.0 / MAX_LATERAL)
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Waypoint {
    x: f64,
    y: f64,
    stop: bool,
}

/// The motion state of one vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct Motion {
    limits: Limits,
    /// Waypoints lie within this radius.
    inner_radius: f64,
    /// A waypoint is reached within this distance.
    arrive_radius: f64,
    /// This vehicle's preferred speed, m/s.
    cruise: f64,
    x: f64,
    y: f64,
    speed: f64,
    heading: f64,
    waypoint: Waypoint,
    /// Seconds still to wait at a stop; 0 when driving.
    dwell: f64,
}

impl Motion {
    /// A vehicle at rest at a random place of the area, facing a random direction.
    pub fn new(limits: Limits, rng: &mut StdRng) -> Self {
        let arrive_radius = (limits.area_radius / 20.0).min(10.0);
        let inner_radius = limits.area_radius - limits.turn_around_distance() - arrive_radius;
        let (x, y) = random_point(inner_radius, rng);
        let mut motion = Self {
            limits,
            inner_radius,
            arrive_radius,
            cruise: limits.max_speed * rng.random_range(0.6..=1.0),
            x,
            y,
            speed: 0.0,
            heading: rng.random_range(0.0..360.0),
            waypoint: Waypoint { x, y, stop: false },
            dwell: 0.0,
        };
        motion.next_waypoint(rng);
        motion
    }

    /// Metres east of the origin.
    pub fn x(&self) -> f64 {
        self.x
    }

    /// Metres north of the origin.
    pub fn y(&self) -> f64 {
        self.y
    }

    /// Speed, m/s.
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Heading, degrees in `[0, 360)`, 0 = north, clockwise.
    pub fn heading(&self) -> f64 {
        self.heading
    }

    /// Advances the vehicle by `dt` seconds.
    pub fn advance(&mut self, dt: f64, rng: &mut StdRng) {
        if dt <= 0.0 {
            return;
        }
        let steps = (dt / SUBSTEP).ceil().max(1.0);
        let h = dt / steps;
        for _ in 0..steps as u64 {
            self.substep(h, rng);
        }
    }

    fn next_waypoint(&mut self, rng: &mut StdRng) {
        let (x, y) = random_point(self.inner_radius, rng);
        self.waypoint = Waypoint {
            x,
            y,
            stop: rng.random_bool(STOP_PROBABILITY),
        };
    }

    fn substep(&mut self, h: f64, rng: &mut StdRng) {
        let limits = self.limits;
        if self.dwell > 0.0 {
            // Stopping, then waiting.
            if self.speed > 0.0 {
                self.speed = (self.speed - limits.max_decel * h).max(0.0);
            } else {
                self.dwell -= h;
                if self.dwell <= 0.0 {
                    self.dwell = 0.0;
                    self.next_waypoint(rng);
                }
            }
            self.move_ahead(h);
            return;
        }

        let mut dist = (self.waypoint.x - self.x).hypot(self.waypoint.y - self.y);
        if dist < self.arrive_radius {
            if self.waypoint.stop {
                self.dwell = rng.random_range(STOP_SECONDS.0..=STOP_SECONDS.1);
                self.speed = (self.speed - limits.max_decel * h).max(0.0);
                self.move_ahead(h);
                return;
            }
            self.next_waypoint(rng);
            dist = (self.waypoint.x - self.x).hypot(self.waypoint.y - self.y);
        }
        let bearing = (self.waypoint.x - self.x)
            .atan2(self.waypoint.y - self.y)
            .to_degrees();
        let error = wrap_180(bearing - self.heading);

        // Target speed: cruise, but slow enough to turn towards the waypoint and to arrive at
        // it at corner speed (or standing, at a stop).
        let mut target = self.cruise * error.to_radians().cos().max(0.15);
        let sin = if error.abs() >= 90.0 {
            1.0
        } else {
            error.to_radians().sin().abs()
        };
        if sin > 1e-3 {
            let radius = dist / (2.0 * sin);
            target = target
                .min((MAX_LATERAL * radius).sqrt())
                .min(limits.max_yaw_rate.to_radians() * radius);
        }
        let braking = 2.0 * limits.max_decel * 0.7;
        target = if self.waypoint.stop {
            target.min((braking * (dist - self.arrive_radius * 0.5).max(0.0)).sqrt())
        } else {
            target.min((CORNER_SPEED.powi(2) + braking * dist).sqrt())
        };

        let change = (target - self.speed).clamp(-limits.max_decel * h, limits.max_accel * h);
        self.speed = (self.speed + change).clamp(0.0, limits.max_speed);

        let yaw_rate = limits
            .max_yaw_rate
            .min((MAX_LATERAL / self.speed.max(0.1)).to_degrees());
        let turn = error.clamp(-yaw_rate * h, yaw_rate * h);
        self.heading = normalize_heading(self.heading + turn);
        self.move_ahead(h);
    }

    fn move_ahead(&mut self, h: f64) {
        let heading = self.heading.to_radians();
        self.x += self.speed * heading.sin() * h;
        self.y += self.speed * heading.cos() * h;
    }
}

/// A uniformly random point of the disk of `radius` around the origin.
fn random_point(radius: f64, rng: &mut StdRng) -> (f64, f64) {
    let r = radius.max(0.0) * rng.random::<f64>().sqrt();
    let angle = rng.random_range(0.0..TAU);
    (r * angle.cos(), r * angle.sin())
}

/// `degrees` in `(-180, 180]`.
pub fn wrap_180(degrees: f64) -> f64 {
    let d = degrees.rem_euclid(360.0);
    if d > 180.0 { d - 360.0 } else { d }
}

/// `degrees` in `[0, 360)`.
pub fn normalize_heading(degrees: f64) -> f64 {
    let d = degrees.rem_euclid(360.0);
    if d >= 360.0 { 0.0 } else { d }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeding::{Stream, rng};

    /// Drives vehicle `index` for `steps` reports `dt` apart; returns (x, y, speed, heading).
    fn trip(
        seed: u64,
        index: u64,
        radius: f64,
        dt: f64,
        steps: usize,
    ) -> Vec<(f64, f64, f64, f64)> {
        let mut rng = rng(seed, index, Stream::Motion);
        let mut motion = Motion::new(Limits::for_area(radius), &mut rng);
        (0..steps)
            .map(|_| {
                motion.advance(dt, &mut rng);
                (motion.x(), motion.y(), motion.speed(), motion.heading())
            })
            .collect()
    }

    #[test]
    fn limits_hold_and_vehicles_stay_in_the_area() {
        const EPS: f64 = 1e-9;
        for radius in [10.0, 60.0, 300.0, 2_000.0, 50_000.0] {
            let limits = Limits::for_area(radius);
            assert!(limits.max_speed <= SPEED_LIMIT);
            assert!(limits.max_speed <= fleet_common::event::limits::MAX_SPEED);
            for dt in [0.05, 1.0, 3.7] {
                for index in 0..8 {
                    let points = trip(index * 31 + 5, index, radius, dt, (4_000.0 / dt) as usize);
                    let mut moved = 0.0;
                    for pair in points.windows(2) {
                        let ((x0, y0, v0, h0), (x1, y1, v1, h1)) = (pair[0], pair[1]);
                        assert!(
                            x1.hypot(y1) <= radius,
                            "r={radius}: left the area at ({x1}, {y1})"
                        );
                        assert!((0.0..=limits.max_speed + EPS).contains(&v1), "speed {v1}");
                        assert!(
                            v1 - v0 <= limits.max_accel * dt + EPS,
                            "accel {} in {dt}",
                            v1 - v0
                        );
                        assert!(
                            v0 - v1 <= limits.max_decel * dt + EPS,
                            "decel {} in {dt}",
                            v0 - v1
                        );
                        assert!((0.0..360.0).contains(&h1), "heading {h1}");
                        let turn = wrap_180(h1 - h0).abs();
                        assert!(
                            turn <= limits.max_yaw_rate * dt + EPS,
                            "turn {turn} in {dt}"
                        );
                        let step = (x1 - x0).hypot(y1 - y0);
                        assert!(step <= limits.max_speed * dt + EPS, "jump {step} in {dt}");
                        moved += step;
                    }
                    assert!(
                        moved > radius.min(5_000.0),
                        "r={radius} dt={dt}: vehicle hardly moved ({moved} m)"
                    );
                }
            }
        }
    }

    #[test]
    fn same_seed_same_trajectory() {
        let a = trip(42, 3, 2_000.0, 1.0, 600);
        assert_eq!(a, trip(42, 3, 2_000.0, 1.0, 600));
        assert_ne!(a, trip(42, 4, 2_000.0, 1.0, 600));
        assert_ne!(a, trip(43, 3, 2_000.0, 1.0, 600));
    }

    #[test]
    fn vehicles_reach_cruising_speed_and_stop() {
        let points = trip(42, 0, 2_000.0, 1.0, 3_600);
        let top = points.iter().map(|p| p.2).fold(0.0, f64::max);
        assert!(top > SPEED_LIMIT * 0.5, "top speed {top}");
        assert!(points.iter().any(|p| p.2 == 0.0), "never stopped");
    }

    #[test]
    fn angles_wrap() {
        assert_eq!(wrap_180(270.0), -90.0);
        assert_eq!(wrap_180(-190.0), 170.0);
        assert_eq!(normalize_heading(-10.0), 350.0);
        assert_eq!(normalize_heading(360.0), 0.0);
        assert_eq!(normalize_heading(-1e-18), 0.0);
    }
}
