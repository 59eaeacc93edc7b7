//! A vehicle container's delivery bookkeeping, `GET /stats`.

use std::net::SocketAddr;

use serde::Deserialize;

use super::ProbeError;

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

#[derive(Deserialize)]
struct Stats {
    vehicles: Vec<VehicleStats>,
}

/// The vehicles of the container whose stats port is published at `addr`.
pub async fn vehicle_stats(
    client: &reqwest::Client,
    addr: SocketAddr,
) -> Result<Vec<VehicleStats>, ProbeError> {
    let url = format!("http://{addr}/stats");
    let stats: Stats = client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| ProbeError::new(format!("GET {url}: {e}")))?
        .json()
        .await
        .map_err(|e| ProbeError::new(format!("GET {url}: {e}")))?;
    Ok(stats.vehicles)
}
