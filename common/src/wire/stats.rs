//! A vehicle container's `GET /stats`, as the vehicle process answers it and as `fleet` reads
//! it (`launch-fleet`, `verify`, `status`): the run's phase, every vehicle's books and their
//! sums ([`Totals`]).
//!
//! For every vehicle, `generated = acknowledged + rejected + dropped + pending` once its batch
//! in flight is answered.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::totals::Totals;

/// Where a vehicle process is in its run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The vehicles report (until stopped, or until the run's duration is over); also what an
    /// answer without `phase` (an older vehicle, which reports until stopped) means.
    #[default]
    Generating,
    /// The duration is over: no new event, the pending ones are still being delivered.
    Delivering,
    /// The duration is over and every event has its fate: the counters no longer move.
    Done,
}

/// One vehicle in `GET /stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VehicleReport {
    /// VIN.
    pub vin: String,
    /// Manufacturer.
    pub make: String,
    /// Model.
    pub model: String,
    /// The vehicle's books (`generated`, `acknowledged`, ... inline in the JSON).
    #[serde(flatten)]
    pub books: Totals,
    /// Highest acknowledged `seq`, `null` before the first acknowledgement and in
    /// `--legacy-form` mode (where ingest assigns `seq`).
    pub last_acked_seq: Option<u64>,
}

/// How much of the books `GET /stats` answers with: every vehicle (the default), or the sums
/// and the phase only (`?vehicles=false`, with `vehicles` empty), which is what a poll of a
/// large fleet's progress needs: a container of 2,500 vehicles answers a few hundred bytes
/// instead of about 400 KB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsQuery {
    /// Whether the answer lists every vehicle.
    #[serde(default = "listed")]
    pub vehicles: bool,
}

fn listed() -> bool {
    true
}

impl Default for StatsQuery {
    fn default() -> Self {
        Self { vehicles: true }
    }
}

impl StatsQuery {
    /// Every vehicle's books.
    pub const EVERY_VEHICLE: Self = Self { vehicles: true };
    /// The sums and the phase only.
    pub const TOTALS_ONLY: Self = Self { vehicles: false };

    /// The path and query of the request, e.g. `/stats?vehicles=false`.
    pub fn path(self) -> String {
        format!("/stats?vehicles={}", self.vehicles)
    }
}

/// The body of `GET /stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsReport {
    /// When the vehicles started: every event of this process has a `ts` at or after it (rows
    /// of earlier runs with the same VINs have earlier ones). Always written; absent from the
    /// answers of older vehicles.
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    /// Where the process is in its run ([`Phase::Generating`] when absent).
    #[serde(default)]
    pub phase: Phase,
    /// Every vehicle of this process, by index (empty when asked for the totals only).
    pub vehicles: Vec<VehicleReport>,
    /// Sums over `vehicles`.
    pub totals: Totals,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn report() -> StatsReport {
        let books = Totals {
            generated: 3,
            acknowledged: 3,
            retried: 1,
            dropped: 0,
            rejected: 0,
            pending: 0,
        };
        StatsReport {
            started_at: Some("2026-11-21T18:00:00.500Z".parse().unwrap()),
            phase: Phase::Done,
            vehicles: vec![VehicleReport {
                vin: "YV1AAAAAA00000001".into(),
                make: "Volvo".into(),
                model: "XC40".into(),
                books,
                last_acked_seq: Some(2),
            }],
            totals: books,
        }
    }

    #[test]
    fn stats_round_trip_with_their_field_names() {
        let report = report();
        let expected = json!({
            "started_at": "2026-11-21T18:00:00.500Z",
            "phase": "done",
            "vehicles": [{"vin": "YV1AAAAAA00000001", "make": "Volvo", "model": "XC40",
                "generated": 3, "acknowledged": 3, "retried": 1, "dropped": 0, "rejected": 0,
                "pending": 0, "last_acked_seq": 2}],
            "totals": {"generated": 3, "acknowledged": 3, "retried": 1, "dropped": 0,
                "rejected": 0, "pending": 0}
        });
        assert_eq!(serde_json::to_value(&report).unwrap(), expected);
        let text = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<StatsReport>(&text).unwrap(), report);
        assert_eq!(
            serde_json::from_value::<StatsReport>(expected).unwrap(),
            report
        );
    }

    #[test]
    fn an_older_vehicles_answer_reads_as_generating_since_unknown() {
        let mut value = serde_json::to_value(report()).unwrap();
        let object = value.as_object_mut().unwrap();
        object.remove("started_at");
        object.remove("phase");
        let read: StatsReport = serde_json::from_value(value).unwrap();
        assert_eq!((read.started_at, read.phase), (None, Phase::Generating));
        assert_eq!(
            serde_json::to_value(Phase::Delivering).unwrap(),
            json!("delivering")
        );
    }
}
