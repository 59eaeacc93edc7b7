//! One row of the dashboard's vehicle table, also the vehicle's dot on the map: the part of the
//! consumer's latest summary ([`VehicleSummary`]) that the page is sent (the `Vehicle` schema
//! of the dashboard's OpenAPI document). Kept per vehicle instead of the whole summary.

use chrono::{DateTime, Utc};
use fleet_common::wire::VehicleSummary;
use serde::Serialize;

/// Where a vehicle was at its latest event, on the map's plane.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PlanePosition {
    /// Metres east of the area's origin.
    pub x: f64,
    /// Metres north of the area's origin.
    pub y: f64,
}

/// A vehicle as the page shows it: its latest summary without what the page does not use.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VehicleRow {
    /// The VIN.
    pub vin: String,
    /// Make of its latest event.
    pub make: String,
    /// Model of its latest event.
    pub model: String,
    /// Earliest event time.
    pub first_seen: DateTime<Utc>,
    /// Greatest event time.
    pub last_seen: DateTime<Utc>,
    /// Events stored for it.
    pub events: i64,
    /// Position at the latest event.
    pub last_position: PlanePosition,
    /// Speed at the latest event, m/s.
    pub last_speed: f64,
}

impl From<VehicleSummary> for VehicleRow {
    fn from(s: VehicleSummary) -> Self {
        Self {
            vin: s.vin,
            make: s.make,
            model: s.model,
            first_seen: s.first_seen,
            last_seen: s.last_seen,
            events: s.events,
            last_position: PlanePosition {
                x: s.last_position.x,
                y: s.last_position.y,
            },
            last_speed: s.last_speed,
        }
    }
}
