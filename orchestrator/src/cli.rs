//! The command line: global options and one variant per subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::output::ProgressMode;

/// fleet: provisions the streaming-telemetry stack on Docker, simulates a vehicle fleet, and
/// checks the pipeline end to end.
#[derive(Debug, Parser)]
#[command(name = "fleet", version, about)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        short,
        long,
        global = true,
        env = "FLEET_CONFIG",
        default_value = "config.master.toml"
    )]
    pub config: PathBuf,
    /// More log output (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How progress is shown.
    #[arg(long, global = true, value_enum, default_value = "auto")]
    pub progress: ProgressMode,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Launch the infrastructure, then N vehicles; prints the events URL.
    Up {
        /// Vehicles to simulate.
        #[arg(long, default_value_t = 3)]
        num_vehicles: u32,
        /// Vehicles per container (default: vehicles.per_container).
        #[arg(long)]
        per_container: Option<u32>,
        /// Keep what a failed launch created, for debugging.
        #[arg(long)]
        keep_on_failure: bool,
    },
    /// Build (or reuse) every image without starting anything.
    Build,
    /// Build images, start ZooKeeper, broker, PostgreSQL, ingest and consumer, wait until ready.
    LaunchInfra {
        /// Keep what a failed launch created, for debugging.
        #[arg(long)]
        keep_on_failure: bool,
    },
    /// Run N simulated vehicles (scales an existing fleet to N).
    LaunchFleet {
        /// Vehicles to simulate.
        #[arg(long)]
        num_vehicles: u32,
        /// Vehicles per container (default: vehicles.per_container).
        #[arg(long)]
        per_container: Option<u32>,
        /// Post the old client's format (form-encoded, one event per request, VINs without
        /// check digit), for compatibility tests.
        #[arg(long)]
        legacy_form: bool,
        /// Vehicles report only this long (e.g. `60s`); the command then waits until they
        /// delivered every event and prints the totals. The containers keep serving their
        /// books (`GET /stats`) for `fleet verify` until `fleet teardown --fleet-only`.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<std::time::Duration>,
    },
    /// Remove every container, network and volume of the stack.
    Teardown {
        /// Remove only the vehicles.
        #[arg(long)]
        fleet_only: bool,
    },
    /// Show each service's state and readiness.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the pipeline end to end: probes through ingest into Kafka and diag, every
    /// acknowledged vehicle event stored with no seq gap per vehicle, POST-to-row latency.
    /// Exit 1 if a check fails.
    Verify {
        /// Probe events to send.
        #[arg(long, default_value_t = 20)]
        probes: u32,
        /// How long the rows (the probes' and every acknowledged vehicle event's) may take to
        /// appear in diag: with a consumer backlog, the time it may take to drain (e.g. `30m`).
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Show or change the live configuration in ZooKeeper; members apply changes within
    /// seconds, without a restart.
    Config {
        /// What to do.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Show a service's container output (e.g. `ingest`, `consumer`, `vehicle-0`).
    Logs {
        /// Service or container suffix.
        service: String,
        /// Keep following.
        #[arg(short, long)]
        follow: bool,
        /// Lines from the end.
        #[arg(long, default_value_t = 100)]
        tail: usize,
    },
}

/// `fleet config` actions.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print every live setting and its value.
    Get {
        /// Print the stored JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Change live settings, e.g. `vehicles.report_interval=500ms`.
    Set {
        /// `KEY=VALUE` assignments, applied together.
        #[arg(required = true, value_name = "KEY=VALUE")]
        assignments: Vec<String>,
    },
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn launch_fleet_takes_an_optional_duration() {
        let cli = Cli::try_parse_from(["fleet", "launch-fleet", "--num-vehicles", "10"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::LaunchFleet {
                num_vehicles: 10,
                duration: None,
                ..
            }
        ));
        let cli = Cli::try_parse_from([
            "fleet",
            "launch-fleet",
            "--num-vehicles",
            "10000",
            "--per-container",
            "2500",
            "--duration",
            "60s",
        ])
        .unwrap();
        let Command::LaunchFleet {
            per_container,
            duration,
            legacy_form,
            ..
        } = cli.command
        else {
            panic!("launch-fleet");
        };
        assert_eq!(per_container, Some(2500));
        assert_eq!(duration, Some(Duration::from_secs(60)));
        assert!(!legacy_form);
        assert!(
            Cli::try_parse_from([
                "fleet",
                "launch-fleet",
                "--num-vehicles",
                "1",
                "--duration",
                "x"
            ])
            .is_err()
        );
    }

    #[test]
    fn verify_waits_60s_by_default_and_takes_a_longer_timeout() {
        let cli = Cli::try_parse_from(["fleet", "verify"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Verify { probes: 20, timeout } if timeout == Duration::from_secs(60)
        ));
        let cli = Cli::try_parse_from(["fleet", "verify", "--timeout", "30m"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Verify { timeout, .. } if timeout == Duration::from_secs(1_800)
        ));
    }
}
