//! Command line and environment: every option is a flag with an environment variable, the
//! contract the orchestrator starts the consumer with.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;

use fleet_common::config::BatchMaxRecords;

use crate::analytics::{DEFAULT_HISTOGRAM_BINS, HistogramBins};

/// Reads the `telemetry` topic in batches and stores them in PostgreSQL, one transaction per
/// batch, rows and offsets together.
#[derive(Debug, Clone, Parser)]
#[command(name = "consumer", version, about)]
pub struct Cli {
    /// Address of the HTTP endpoints (/healthz, /readyz, /metrics).
    #[arg(long, env = "CONSUMER_LISTEN", default_value = "0.0.0.0:8081")]
    pub listen: SocketAddr,

    /// Kafka bootstrap servers, comma separated `host:port`.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: String,

    /// Topic to consume.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "telemetry")]
    pub kafka_topic: String,

    /// Topic that receives records that can never be stored.
    #[arg(long, env = "KAFKA_DLQ_TOPIC", default_value = "telemetry.dlq")]
    pub kafka_dlq_topic: String,

    /// Consumer group id; also the key of this consumer's rows in `consumer_offsets`.
    #[arg(long, env = "CONSUMER_GROUP", default_value = "fleet-consumer")]
    pub group: String,

    /// This replica's id, fixed per replica (client ids). Default: the host name.
    #[arg(long, env = "CONSUMER_INSTANCE_ID")]
    pub instance_id: Option<String>,

    /// Configured number of consumer replicas: with `--replica-index`, the share of the
    /// partitions this replica reads while the registry is not reachable.
    #[arg(long, env = "CONSUMER_REPLICAS", default_value_t = 1,
        value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub replicas: u32,

    /// This replica's index among `--replicas` (0-based).
    #[arg(long, env = "CONSUMER_REPLICA_INDEX", default_value_t = 0)]
    pub replica_index: u32,

    /// PostgreSQL host.
    #[arg(long, env = "PG_HOST")]
    pub pg_host: String,

    /// PostgreSQL port.
    #[arg(long, env = "PG_PORT", default_value_t = 5432)]
    pub pg_port: u16,

    /// PostgreSQL role.
    #[arg(long, env = "PG_USER")]
    pub pg_user: String,

    /// PostgreSQL database.
    #[arg(long, env = "PG_DATABASE", default_value = "av_telemetry")]
    pub pg_database: String,

    /// File holding the PostgreSQL password (a trailing newline is ignored). Without it, no
    /// password is sent.
    #[arg(long, env = "PG_PASSWORD_FILE")]
    pub pg_password_file: Option<PathBuf>,

    /// Largest number of records in one batch (one PostgreSQL transaction), 1 to 100,000.
    #[arg(long, env = "CONSUMER_BATCH_MAX_RECORDS", default_value_t = BatchMaxRecords::DEFAULT,
          value_parser = clap::value_parser!(BatchMaxRecords))]
    pub batch_max_records: BatchMaxRecords,

    /// How long a batch lingers for more records after its first one before it is written
    /// when no write is in flight (while one is, records gather anyway), e.g. `1ms`.
    #[arg(long, env = "CONSUMER_BATCH_MAX_WAIT", default_value = "1ms",
          value_parser = humantime::parse_duration)]
    pub batch_max_wait: Duration,

    /// Longest time the broker holds a fetch that found nothing (`fetch.wait.max.ms`), 10ms to
    /// 10s. Nisshi also stops assembling a storage read's records at this budget, so a value
    /// below its read time makes a backlog drain one record per fetch.
    #[arg(long, env = "CONSUMER_FETCH_WAIT", default_value = "100ms",
          value_parser = parse_fetch_wait)]
    pub fetch_wait: Duration,

    /// How far behind the greatest stored event time an event may be and still count in its
    /// second and minute windows and histograms; later events are stored and counted
    /// everywhere else (and in `late_events_dropped_from_windows_total`).
    #[arg(long, env = "CONSUMER_ALLOWED_LATENESS", default_value = "1h",
          value_parser = humantime::parse_duration)]
    pub allowed_lateness: Duration,

    /// Histogram bins per sensor, `sensor=lower:upper:width` separated by commas (sensors:
    /// temperature_c, humidity_pct, pressure_hpa); sensors not named keep their default.
    /// Values below `lower` share one bin, values at or above `upper` another.
    #[arg(long, env = "CONSUMER_HISTOGRAM_BINS", default_value = DEFAULT_HISTOGRAM_BINS)]
    pub histogram_bins: HistogramBins,

    /// Publish each committed batch's aggregates to the output topics.
    #[arg(long, env = "CONSUMER_PUBLISH_ANALYTICS", default_value_t = true,
          action = clap::ArgAction::Set)]
    pub publish_analytics: bool,

    /// Output topic of the per-vehicle summaries (key = VIN).
    #[arg(
        long,
        env = "CONSUMER_SUMMARY_TOPIC",
        default_value = "telemetry.summary"
    )]
    pub summary_topic: String,

    /// Output topic of the per-second and per-minute window metrics
    /// (key = `granularity|window_start`).
    #[arg(
        long,
        env = "CONSUMER_METRICS_TOPIC",
        default_value = "telemetry.metrics"
    )]
    pub metrics_topic: String,

    /// Output topic of the per-minute sensor histograms (key = `sensor|window_start`).
    #[arg(
        long,
        env = "CONSUMER_HISTOGRAMS_TOPIC",
        default_value = "telemetry.histograms"
    )]
    pub histograms_topic: String,

    /// How long one batch's published aggregates are waited for before they count as failed
    /// (they may still arrive later).
    #[arg(long, env = "CONSUMER_PUBLISH_TIMEOUT", default_value = "5s",
          value_parser = humantime::parse_duration)]
    pub publish_timeout: Duration,

    /// Do not consume: compare the aggregate tables with a recomputation from `diag`, print
    /// the differences and exit (status 1 when any). `KAFKA_BROKERS` is still required but
    /// not used.
    #[arg(long, env = "CONSUMER_CHECK_ANALYTICS")]
    pub check_analytics: bool,

    /// librdkafka debug contexts (its `debug` setting), e.g. `cgrp,fetch`; logged at debug
    /// level.
    #[arg(long, env = "KAFKA_DEBUG")]
    pub kafka_debug: Option<String>,

    /// More log output: -v debug, -vv trace. `RUST_LOG` overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
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
    #[error("CONSUMER_INSTANCE_ID is not set and the host name could not be read")]
    NoInstanceId,
    /// The replica index is not below the replica count.
    #[error(
        "CONSUMER_REPLICA_INDEX (--replica-index) is {index}, but CONSUMER_REPLICAS (--replicas) is {replicas}: the index must be below the count"
    )]
    ReplicaIndex {
        /// The index given.
        index: u32,
        /// The count given.
        replicas: u32,
    },
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
        if self.replica_index < self.replicas {
            Ok(self.replica_index)
        } else {
            Err(CliError::ReplicaIndex {
                index: self.replica_index,
                replicas: self.replicas,
            })
        }
    }

    /// The replica's id: `CONSUMER_INSTANCE_ID`, else the host name.
    pub fn instance_id(&self) -> Result<String, CliError> {
        match self.instance_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => Ok(id.to_owned()),
            _ => host_name().ok_or(CliError::NoInstanceId),
        }
    }

    /// `host:port/database` of PostgreSQL, for messages.
    pub fn pg_target(&self) -> String {
        format!("{}:{}/{}", self.pg_host, self.pg_port, self.pg_database)
    }
}

/// `--fetch-wait`: a duration from 10ms to 10s.
fn parse_fetch_wait(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if !fleet_common::config::FETCH_WAIT_RANGE.contains(&d) {
        return Err(format!("{text} is outside 10ms..10s"));
    }
    Ok(d)
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
        assert_eq!(cli.batch_max_records.get(), 5000);
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
