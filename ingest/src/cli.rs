//! Command line and environment: ingest's settings are [`IngestSettings`], the contract the
//! orchestrator's plan writes (`fleet_common::settings`); this adds what only a person running
//! ingest by hand sets.

use std::ops::Deref;

use clap::Parser;
use fleet_common::settings::IngestSettings;

/// HTTP front door of the telemetry pipeline: validates events and produces them to Kafka.
#[derive(Debug, Clone, Parser)]
#[command(name = "ingest", version, about)]
pub struct Cli {
    /// The settings the orchestrator gives ingest.
    #[command(flatten)]
    pub settings: IngestSettings,

    /// More log output (`-v` debug, `-vv` trace); `RUST_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Deref for Cli {
    type Target = IngestSettings;

    fn deref(&self) -> &IngestSettings {
        &self.settings
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let cli = Cli::try_parse_from(["ingest", "--kafka-brokers", "b:9092"]).unwrap();
        assert_eq!(cli.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(cli.kafka_topic, "telemetry");
        assert_eq!(cli.max_body_bytes, 1_048_576);
        assert_eq!(cli.max_records_per_request, 1_000);
        assert_eq!(cli.produce_timeout, Duration::from_secs(10));
        assert_eq!(
            cli.producer_linger,
            fleet_common::settings::limits::DEFAULT_PRODUCER_LINGER
        );
        assert_eq!(
            cli.producer_max_in_flight,
            fleet_common::settings::limits::DEFAULT_PRODUCER_MAX_IN_FLIGHT
        );
        assert_eq!(cli.rate_limit_per_vin, 0);
        assert_eq!(cli.tokens_file, None);
        assert_eq!(cli.summary_topic, "telemetry.summary");
        assert_eq!(cli.metrics_topic, "telemetry.metrics");
        assert_eq!(cli.histograms_topic, "telemetry.histograms");
        assert_eq!(cli.map_radius_m, 2000.0);
        assert_eq!(cli.request_timeout, Duration::from_secs(30));
        assert_eq!(cli.max_concurrent_requests, 512);
        assert_eq!(cli.max_connections, 1024);
        assert!(cli.dashboard_requires_token);
        assert_eq!(cli.dashboard_vehicle_ttl, Duration::from_secs(3600));
        assert_eq!(cli.dashboard_map_vehicles, 5_000);
        assert_eq!(cli.dashboard_max_message_bytes, 262_144);
    }

    #[test]
    fn limits_are_read_and_checked() {
        let cli = Cli::try_parse_from([
            "ingest",
            "--kafka-brokers",
            "b:9092",
            "--request-timeout",
            "12s",
            "--max-concurrent-requests",
            "7",
            "--max-connections",
            "9",
            "--dashboard-requires-token",
            "false",
            "--dashboard-vehicle-ttl",
            "10m",
            "--dashboard-map-vehicles",
            "5",
            "--dashboard-max-message-bytes",
            "100000",
        ])
        .unwrap();
        assert_eq!(cli.request_timeout, Duration::from_secs(12));
        assert_eq!(cli.max_concurrent_requests, 7);
        assert_eq!(cli.max_connections, 9);
        assert!(!cli.dashboard_requires_token);
        assert_eq!(cli.dashboard_vehicle_ttl, Duration::from_secs(600));
        assert_eq!(cli.dashboard_map_vehicles, 5);
        assert_eq!(cli.dashboard_max_message_bytes, 100_000);
        for (flag, value) in [
            ("--max-concurrent-requests", "0"),
            ("--max-connections", "0"),
            ("--dashboard-vehicle-ttl", "5s"),
            ("--dashboard-map-vehicles", "0"),
            ("--dashboard-max-message-bytes", "1000"),
            ("--dashboard-requires-token", "maybe"),
            ("--producer-linger", "2s"),
        ] {
            let args = ["ingest", "--kafka-brokers", "b:9092", flag, value];
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn rate_limit_and_tokens_file_are_read() {
        let cli = Cli::try_parse_from([
            "ingest",
            "--kafka-brokers",
            "b:9092",
            "--rate-limit-per-vin",
            "50",
            "--tokens-file",
            "/etc/fleet/tokens",
        ])
        .unwrap();
        assert_eq!(cli.rate_limit_per_vin, 50);
        assert_eq!(
            cli.tokens_file.as_deref(),
            Some(std::path::Path::new("/etc/fleet/tokens"))
        );
        let negative = [
            "ingest",
            "--kafka-brokers",
            "b:9092",
            "--rate-limit-per-vin",
            "-1",
        ];
        assert!(Cli::try_parse_from(negative).is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            [
                "ingest",
                "--kafka-brokers",
                "b:9092",
                "--produce-timeout",
                "1ms",
            ],
            [
                "ingest",
                "--kafka-brokers",
                "b:9092",
                "--produce-timeout",
                "soon",
            ],
            [
                "ingest",
                "--kafka-brokers",
                "b:9092",
                "--max-body-bytes",
                "0",
            ],
            ["ingest", "--kafka-brokers", "b:9092", "--map-radius-m", "0"],
            [
                "ingest",
                "--kafka-brokers",
                "b:9092",
                "--max-records-per-request",
                "0",
            ],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
