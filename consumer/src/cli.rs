//! Command line and environment: a consumer replica's settings are [`ConsumerSettings`], the
//! contract the orchestrator's plan writes (`fleet_common::settings`); this adds the options
//! only a person running the consumer by hand sets (their variables are named in
//! `fleet_common::settings::env` too).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use fleet_common::settings::env::{
    CONSUMER_ALLOWED_LATENESS, CONSUMER_CHECK_ANALYTICS, CONSUMER_HISTOGRAM_BINS,
    CONSUMER_INSTANCE_ID, CONSUMER_PUBLISH_ANALYTICS, CONSUMER_PUBLISH_TIMEOUT, KAFKA_DEBUG,
};
use fleet_common::settings::{ConsumerSettings, SettingsError};

use crate::analytics::{DEFAULT_HISTOGRAM_BINS, HistogramBins};

/// Reads the `telemetry` topic in batches and stores them in PostgreSQL, one transaction per
/// batch, rows and offsets together.
#[derive(Debug, Clone, Parser)]
#[command(name = "consumer", version, about)]
pub struct Cli {
    /// The settings the orchestrator gives a consumer replica.
    #[command(flatten)]
    pub settings: ConsumerSettings,

    /// How far behind the greatest stored event time an event may be and still count in its
    /// second and minute windows and histograms; later events are stored and counted
    /// everywhere else (and in `late_events_dropped_from_windows_total`).
    #[arg(long, env = CONSUMER_ALLOWED_LATENESS, default_value = "1h",
          value_parser = humantime::parse_duration)]
    pub allowed_lateness: Duration,

    /// Histogram bins per sensor, `sensor=lower:upper:width` separated by commas (sensors:
    /// temperature_c, humidity_pct, pressure_hpa); sensors not named keep their default.
    /// Values below `lower` share one bin, values at or above `upper` another.
    #[arg(long, env = CONSUMER_HISTOGRAM_BINS, default_value = DEFAULT_HISTOGRAM_BINS)]
    pub histogram_bins: HistogramBins,

    /// Publish each committed batch's aggregates to the output topics.
    #[arg(long, env = CONSUMER_PUBLISH_ANALYTICS, default_value_t = true,
          action = clap::ArgAction::Set)]
    pub publish_analytics: bool,

    /// How long one batch's published aggregates are waited for before they count as failed
    /// (they may still arrive later).
    #[arg(long, env = CONSUMER_PUBLISH_TIMEOUT, default_value = "5s",
          value_parser = humantime::parse_duration)]
    pub publish_timeout: Duration,

    /// Do not consume: compare the aggregate tables with a recomputation from `diag`, print
    /// the differences and exit (status 1 when any). `KAFKA_BROKERS` is still required but
    /// not used.
    #[arg(long, env = CONSUMER_CHECK_ANALYTICS)]
    pub check_analytics: bool,

    /// librdkafka debug contexts (its `debug` setting), e.g. `cgrp,fetch`; logged at debug
    /// level.
    #[arg(long, env = KAFKA_DEBUG)]
    pub kafka_debug: Option<String>,

    /// More log output: -v debug, -vv trace. `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Deref for Cli {
    type Target = ConsumerSettings;

    fn deref(&self) -> &ConsumerSettings {
        &self.settings
    }
}

/// Why an option could not be turned into a setting.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The password file could not be read.
    #[error("reading the PostgreSQL password from {path}: {source}")]
    PasswordFile {
        /// The file named by `PG_PASSWORD_FILE`.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// No instance id was given and the host name is unknown.
    #[error("{CONSUMER_INSTANCE_ID} is not set and the host name could not be read")]
    NoInstanceId,
    /// A setting is refused by the settings' check.
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

impl Cli {
    /// The PostgreSQL password from `PG_PASSWORD_FILE`, without trailing line breaks; `None`
    /// when no file is configured.
    pub fn pg_password(&self) -> Result<Option<String>, CliError> {
        self.pg_password_file
            .as_deref()
            .map(read_password)
            .transpose()
    }

    /// The replica index, checked against the replica count.
    pub fn replica_index(&self) -> Result<u32, CliError> {
        Ok(self.settings.check_replica_index()?)
    }

    /// The replica's id: `CONSUMER_INSTANCE_ID`, else the host name.
    pub fn instance_id(&self) -> Result<String, CliError> {
        match self.settings.instance_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            _ => host_name().ok_or(CliError::NoInstanceId),
        }
    }
}

fn read_password(path: &Path) -> Result<String, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::PasswordFile {
        path: path.to_owned(),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

fn host_name() -> Option<String> {
    let from_env = std::env::var("HOSTNAME").ok();
    let from_kernel = || std::fs::read_to_string("/proc/sys/kernel/hostname").ok();
    from_env
        .or_else(from_kernel)
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use fleet_common::config::BatchMaxRecords;

    use super::*;

    /// The required options and `args`, parsed.
    fn try_parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let base = [
            "consumer",
            "--kafka-brokers",
            "b:9092",
            "--pg-host",
            "db",
            "--pg-user",
            "u",
        ];
        Cli::try_parse_from(base.iter().chain(args))
    }

    fn parse(args: &[&str]) -> Cli {
        try_parse(args).expect("arguments parse")
    }

    #[test]
    fn defaults_match_the_contract() {
        let cli = parse(&[]);
        assert_eq!(cli.listen, "0.0.0.0:8081".parse().unwrap());
        assert_eq!(cli.kafka_topic, "telemetry");
        assert_eq!(cli.kafka_dlq_topic, "telemetry.dlq");
        assert_eq!(cli.group, "fleet-consumer");
        assert_eq!(cli.pg_port, 5432);
        assert_eq!(cli.pg_database, "av_telemetry");
        assert_eq!(cli.batch_max_records.get(), 20_000);
        assert_eq!(cli.batch_max_wait, Duration::from_millis(1));
        assert_eq!(cli.fetch_wait, Duration::from_millis(100));
        assert!(try_parse(&["--fetch-wait", "5ms"]).is_err());
        assert!(try_parse(&["--fetch-wait", "11s"]).is_err());
        assert_eq!(cli.pg_target(), "db:5432/av_telemetry");
        assert_eq!(cli.allowed_lateness, Duration::from_secs(3600));
        assert_eq!(cli.histogram_bins, HistogramBins::default());
        assert!(cli.publish_analytics);
        assert_eq!(cli.summary_topic, "telemetry.summary");
        assert_eq!(cli.metrics_topic, "telemetry.metrics");
        assert_eq!(cli.histograms_topic, "telemetry.histograms");
        assert_eq!(cli.publish_timeout, Duration::from_secs(5));
        assert!(!cli.check_analytics);
    }

    #[test]
    fn analytics_options_parse() {
        let cli = parse(&[
            "--allowed-lateness",
            "90s",
            "--histogram-bins",
            "humidity_pct=0:100:5",
            "--publish-analytics",
            "false",
        ]);
        assert_eq!(cli.allowed_lateness, Duration::from_secs(90));
        assert_eq!(
            cli.histogram_bins,
            "humidity_pct=0:100:5".parse::<HistogramBins>().unwrap()
        );
        assert_ne!(cli.histogram_bins, HistogramBins::default());
        assert!(!cli.publish_analytics);
        let err = try_parse(&["--histogram-bins", "wind=0:1:1"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("wind=0:1:1"), "{err}");
    }

    #[test]
    fn batch_max_records_above_the_limit_is_refused_with_the_shared_message() {
        assert_eq!(
            parse(&["--batch-max-records", "100000"]).batch_max_records,
            BatchMaxRecords::new(100_000).unwrap()
        );
        let err = try_parse(&["--batch-max-records", "200000"])
            .unwrap_err()
            .to_string();
        let expected = BatchMaxRecords::new(200_000).unwrap_err().to_string();
        assert!(
            err.contains("--batch-max-records") && err.contains(&expected),
            "{err}"
        );
    }

    #[test]
    fn durations_are_humantime() {
        let cli = parse(&["--batch-max-wait", "1s 500ms"]);
        assert_eq!(cli.batch_max_wait, Duration::from_millis(1500));
    }

    #[test]
    fn password_file_loses_its_trailing_newline_only() {
        let path = std::env::temp_dir().join(format!("consumer-pw-{}", std::process::id()));
        std::fs::write(&path, " s3cret \n").unwrap();
        let cli = parse(&["--pg-password-file", path.to_str().unwrap()]);
        assert_eq!(cli.pg_password().unwrap().as_deref(), Some(" s3cret "));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn missing_password_file_names_the_path() {
        let cli = parse(&["--pg-password-file", "/nonexistent/pw"]);
        let err = cli.pg_password().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/pw"), "{err}");
    }

    #[test]
    fn replica_index_must_be_below_the_count() {
        let cli = parse(&["--replicas", "2", "--replica-index", "1"]);
        assert_eq!(cli.replica_index().unwrap(), 1);
        let cli = parse(&["--replicas", "2", "--replica-index", "2"]);
        let message = cli.replica_index().unwrap_err().to_string();
        assert!(message.contains("CONSUMER_REPLICA_INDEX"), "{message}");
        assert_eq!(parse(&[]).replica_index().unwrap(), 0);
    }

    #[test]
    fn explicit_instance_id_wins() {
        let cli = parse(&["--instance-id", "consumer-1"]);
        assert_eq!(cli.instance_id().unwrap(), "consumer-1");
    }
}
