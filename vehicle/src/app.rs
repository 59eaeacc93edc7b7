//! The HTTP side of the vehicle process: `GET /stats` and `GET /healthz`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use fleet_common::wire::StatsQuery;

use crate::stats::{self, PhaseCell, StatsReport, VehicleStats};

/// The counters of every vehicle of this process, by index, and the process's phase.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// Every vehicle's counters, by index.
    pub vehicles: Arc<[Arc<VehicleStats>]>,
    /// Whether the vehicles still generate events.
    pub phase: Arc<PhaseCell>,
    /// When the vehicles started (before their first event).
    pub started_at: chrono::DateTime<chrono::Utc>,
}

impl Fleet {
    /// The counters and phase now.
    pub fn report(&self) -> StatsReport {
        stats::report(&self.vehicles, self.started_at, self.phase.get())
    }
}

/// The router.
pub fn app(fleet: Fleet) -> Router {
    Router::new()
        .route("/stats", get(stats))
        .route("/healthz", get(healthz))
        .with_state(fleet)
}

/// `GET /stats`: every vehicle's books and their sums, or (`?vehicles=false`) the sums only.
async fn stats(State(fleet): State<Fleet>, Query(query): Query<StatsQuery>) -> Json<StatsReport> {
    let mut report = fleet.report();
    if !query.vehicles {
        report.vehicles = Vec::new();
    }
    Json(report)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;
    use crate::cli::{DEFAULT_CATALOGUE, parse_catalogue};
    use crate::identity::Identity;

    #[tokio::test]
    async fn stats_lists_vehicles_and_totals() {
        let catalogue = parse_catalogue(DEFAULT_CATALOGUE).unwrap();
        let fleet = Fleet {
            vehicles: (0..2)
                .map(|i| Arc::new(VehicleStats::new(&Identity::of(&catalogue, 1, i))))
                .collect(),
            phase: Arc::default(),
            started_at: chrono::Utc::now(),
        };
        let v = &fleet.vehicles;
        VehicleStats::add(&v[0].generated, 3);
        v[0].acknowledged_seq(0);
        v[0].acknowledged_seq(1);
        VehicleStats::add(&v[1].generated, 1);
        fleet.phase.set(crate::stats::Phase::Delivering);

        let response = app(fleet.clone())
            .oneshot(Request::get("/stats").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(stats["phase"], "delivering");
        assert_eq!(
            stats["started_at"]
                .as_str()
                .unwrap()
                .parse::<chrono::DateTime<chrono::Utc>>()
                .unwrap(),
            fleet.started_at
        );
        assert_eq!(stats["vehicles"][0]["vin"], fleet.vehicles[0].vin.as_str());
        assert_eq!(stats["vehicles"][0]["last_acked_seq"], 1);
        assert_eq!(
            stats["vehicles"][1]["last_acked_seq"],
            serde_json::Value::Null
        );
        assert_eq!(stats["totals"]["generated"], 4);
        assert_eq!(stats["totals"]["acknowledged"], 2);
        for key in [
            "vin",
            "make",
            "model",
            "generated",
            "acknowledged",
            "retried",
            "dropped",
        ] {
            assert!(stats["vehicles"][1].get(key).is_some(), "{key}");
        }

        // Asked for the totals only: the same sums and phase, no vehicle.
        let response = app(fleet.clone())
            .oneshot(
                Request::get(StatsQuery::TOTALS_ONLY.path())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let totals: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(totals["vehicles"], serde_json::json!([]));
        assert_eq!(totals["totals"], stats["totals"]);
        assert_eq!(totals["phase"], "delivering");
        let listed = app(fleet.clone())
            .oneshot(
                Request::get(StatsQuery::EVERY_VEHICLE.path())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let body = axum::body::to_bytes(listed.into_body(), usize::MAX)
            .await
            .unwrap();
        let listed: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(listed["vehicles"].as_array().unwrap().len(), 2);
        let bad = app(fleet.clone())
            .oneshot(
                Request::get("/stats?vehicles=some")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

        let response = app(fleet)
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}
