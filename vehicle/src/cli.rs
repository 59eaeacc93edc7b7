//! Command line and environment: a vehicle container's settings are [`VehicleSettings`], the
//! contract the orchestrator's plan writes (`fleet_common::settings`); this adds the delivery
//! options only a person running vehicles by hand sets (their variables are named in
//! `fleet_common::settings::env` too).

use std::ops::Deref;
use std::time::Duration;

use clap::Parser;
use fleet_common::settings::VehicleSettings;
use fleet_common::settings::env::{
    VEHICLE_BATCH_MAX, VEHICLE_BATCH_WAIT, VEHICLE_MAX_IN_FLIGHT, VEHICLE_OUTBOX_CAPACITY,
};

pub use fleet_common::settings::Catalogue;
#[cfg(test)]
pub use fleet_common::settings::{DEFAULT_CATALOGUE, parse_catalogue};

/// Simulates vehicles that report telemetry to ingest.
#[derive(Debug, Clone, Parser)]
#[command(name = "vehicle", version, about)]
pub struct Cli {
    /// The settings the orchestrator gives a vehicle container.
    #[command(flatten)]
    pub settings: VehicleSettings,

    /// Most events in one request; the events of all vehicles of the process are coalesced.
    #[arg(long, env = VEHICLE_BATCH_MAX, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_max: u64,

    /// Longest time an event waits for its batch to fill (e.g. `200ms`).
    #[arg(long, env = VEHICLE_BATCH_WAIT, default_value = "200ms", value_parser = humantime::parse_duration)]
    pub batch_wait: Duration,

    /// Most requests in flight at once.
    #[arg(long, env = VEHICLE_MAX_IN_FLIGHT, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub max_in_flight: u64,

    /// Most events kept per vehicle while ingest does not acknowledge (the oldest are dropped).
    #[arg(long, env = VEHICLE_OUTBOX_CAPACITY, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub outbox_capacity: u64,

    /// More log output (`-v` debug, `-vv` trace); `RUST_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Deref for Cli {
    type Target = VehicleSettings;

    fn deref(&self) -> &VehicleSettings {
        &self.settings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let cli = Cli::try_parse_from(["vehicle", "--ingest-url", "http://i:8080/events"]).unwrap();
        assert_eq!(cli.count, 1);
        assert_eq!(cli.first_index, 0);
        assert_eq!(cli.report_interval, Duration::from_secs(1));
        assert_eq!(cli.listen, "0.0.0.0:8090".parse().unwrap());
        assert_eq!(cli.catalogue.0.len(), 3);
        assert_eq!(cli.report_jitter, 0.05);
        assert_eq!((cli.fault_spike_rate, cli.fault_stuck_rate), (0.0, 0.0));
        assert!(!cli.legacy_form);
        assert_eq!(cli.batch_max, 500);
        assert_eq!(cli.duration, None, "report until stopped");
    }

    #[test]
    fn a_duration_parses_and_zero_is_refused() {
        let cli = Cli::try_parse_from([
            "vehicle",
            "--ingest-url",
            "http://i:8080/events",
            "--duration",
            "1m 30s",
        ])
        .unwrap();
        assert_eq!(cli.duration, Some(Duration::from_secs(90)));
        for bad in ["0s", "soon"] {
            assert!(
                Cli::try_parse_from(["vehicle", "--ingest-url", "http://i", "--duration", bad])
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn faults_jitter_and_legacy_mode_parse_and_are_checked() {
        let cli = Cli::try_parse_from([
            "vehicle",
            "--ingest-url",
            "http://i:8080/events",
            "--report-jitter",
            "0.2",
            "--fault-spike-rate",
            "0.01",
            "--fault-stuck-rate",
            "0.001",
            "--fault-stuck-duration",
            "45s",
            "--legacy-form",
        ])
        .unwrap();
        assert_eq!(cli.report_jitter, 0.2);
        assert_eq!(cli.fault_spike_rate, 0.01);
        assert_eq!(cli.fault_stuck_rate, 0.001);
        assert_eq!(cli.fault_stuck_duration, Duration::from_secs(45));
        assert!(cli.legacy_form);
        for (flag, value) in [
            ("--report-jitter", "0.9"),
            ("--fault-spike-rate", "1.5"),
            ("--fault-stuck-rate", "-0.1"),
        ] {
            assert!(
                Cli::try_parse_from(["vehicle", "--ingest-url", "http://i", flag, value]).is_err(),
                "{flag} {value}"
            );
        }
    }

    #[test]
    fn negative_coordinates_parse() {
        let cli = Cli::try_parse_from([
            "vehicle",
            "--ingest-url",
            "http://i:8080/events",
            "--origin-lat",
            "-33.9",
            "--origin-lon",
            "-70.6",
        ])
        .unwrap();
        assert_eq!((cli.origin_lat, cli.origin_lon), (-33.9, -70.6));
    }

    #[test]
    fn bad_catalogues_are_refused_with_a_reason() {
        for (text, needle) in [
            ("[]", "empty"),
            ("{}", "JSON array"),
            (
                r#"[{"make":"A","wmi":"YV","models":["m"]}]"#,
                "3 characters",
            ),
            (
                r#"[{"make":"A","wmi":"Y-1","models":["m"]}]"#,
                "cannot start a VIN",
            ),
            (
                r#"[{"make":"A","wmi":"yv1","models":["m"]}]"#,
                "cannot start a VIN",
            ),
            (r#"[{"make":"A","wmi":"YV1","models":[]}]"#, "no models"),
            (r#"[{"make":"","wmi":"YV1","models":["m"]}]"#, "make"),
        ] {
            let err = parse_catalogue(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
