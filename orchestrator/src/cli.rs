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
    /// Check the pipeline end to end: probes through ingest into Kafka and diag, no seq gap
    /// per vehicle, POST-to-row latency. Exit 1 if a check fails.
    Verify {
        /// Probe events to send.
        #[arg(long, default_value_t = 20)]
        probes: u32,
        /// How long rows may take to appear.
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
