//! A vehicle's delivery bookkeeping as a vehicle container's `GET /stats` lists it.

use serde::Deserialize;

/// One simulated vehicle's counters (the fields fleet reads).
#[derive(Debug, Clone, Deserialize)]
pub struct VehicleStats {
    /// The vehicle's VIN.
    pub vin: String,
    /// Events ingest acknowledged.
    pub acknowledged: u64,
    /// The highest seq ingest acknowledged, if any.
    pub last_acked_seq: Option<i64>,
}
