//! Command line and environment: every option is a flag with an environment variable, which is
//! how the orchestrator configures the container.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// HTTP front door of the telemetry pipeline: validates events and produces them to Kafka.
#[derive(Debug, Clone, Parser)]
#[command(name = "ingest", version, about)]
pub struct Cli {
    /// Address the HTTP server listens on.
    #[arg(long, env = "INGEST_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,

    /// Kafka bootstrap servers, comma-separated `host:port`.
    #[arg(long, env = "KAFKA_BROKERS")]
    pub kafka_brokers: String,

    /// Topic the events are produced to.
    #[arg(long, env = "KAFKA_TOPIC", default_value = "telemetry")]
    pub kafka_topic: String,

    /// Largest accepted request body, bytes; larger bodies get 413.
    #[arg(long, env = "INGEST_MAX_BODY_BYTES", default_value_t = 1_048_576, value_parser = parse_body_limit)]
    pub max_body_bytes: usize,

    /// Most records (events) one request may carry; a body with more is refused with 413 before
    /// any record is checked.
    #[arg(long, env = "INGEST_MAX_RECORDS_PER_REQUEST", default_value_t = 1_000, value_parser = parse_count)]
    pub max_records_per_request: usize,

    /// How long a request waits for the broker to acknowledge its records before it answers 503
    /// (e.g. `10s`, `2500ms`).
    #[arg(long, env = "INGEST_PRODUCE_TIMEOUT", default_value = "10s", value_parser = parse_timeout)]
    pub produce_timeout: Duration,

    /// How long the producer waits for more records before it sends a batch to the broker
    /// (librdkafka's `linger.ms`; e.g. `1ms`, `500us`; `0s` sends at once). At most 1 s.
    #[arg(long, env = "INGEST_PRODUCER_LINGER", default_value = "1ms", value_parser = parse_linger)]
    pub producer_linger: Duration,

    /// Events per second one vehicle (VIN) may send, in bursts of up to as many; records over it
    /// are refused with 429 and `Retry-After`. 0 (the default) turns the limit off. The starting
    /// value: with a registry, ingest follows the live `ingest.rate_limit_per_vin` from then on.
    #[arg(long, env = "INGEST_RATE_LIMIT_PER_VIN", default_value_t = 0)]
    pub rate_limit_per_vin: u32,

    /// File of `VIN TOKEN` lines (`#` comments and blank lines allowed). When set, `POST /events`
    /// needs `Authorization: Bearer TOKEN` (else 401) and may carry only records of the token's
    /// vehicle (else 403). Unset (the default): no authentication.
    #[arg(long, env = "INGEST_TOKENS_FILE")]
    pub tokens_file: Option<PathBuf>,

    /// Longest a request may take from its first byte to the answer, reading the body
    /// included; past it the answer is 408 and the connection is closed. A connection that does
    /// not finish its request headers in this time is closed. Must exceed the produce timeout.
    #[arg(long, env = "INGEST_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_timeout)]
    pub request_timeout: Duration,

    /// Requests served at once (`POST /events`, the dashboard, `/openapi.json`); more are
    /// answered 503 with `Retry-After` at once.
    #[arg(long, env = "INGEST_MAX_CONCURRENT_REQUESTS", default_value_t = 512, value_parser = parse_count)]
    pub max_concurrent_requests: usize,

    /// Connections open at once; as many more are answered 503 with `Retry-After` and closed,
    /// beyond that a connection is closed at once.
    #[arg(long, env = "INGEST_MAX_CONNECTIONS", default_value_t = 1024, value_parser = parse_count)]
    pub max_connections: usize,

    /// With a tokens file: whether `GET /events` and `GET /events/stream` need a `dashboard`
    /// token of the file too (they show every vehicle's VIN, position and speed).
    #[arg(long, env = "INGEST_DASHBOARD_REQUIRES_TOKEN", default_value_t = true, action = clap::ArgAction::Set)]
    pub dashboard_requires_token: bool,

    /// The dashboard forgets a vehicle whose latest event is older than this, and a restarted
    /// ingest reads the output topics from this long ago only.
    #[arg(long, env = "INGEST_DASHBOARD_VEHICLE_TTL", default_value = "1h", value_parser = parse_ttl)]
    pub dashboard_vehicle_ttl: Duration,

    /// Vehicles drawn on the dashboard's map: the positions of this many most recently seen
    /// vehicles go into every update (fewer when they would not fit in the message cap).
    #[arg(long, env = "INGEST_DASHBOARD_MAP_VEHICLES", default_value_t = 5_000, value_parser = parse_count)]
    pub dashboard_map_vehicles: usize,

    /// Largest dashboard update, bytes of JSON: the map shows fewer vehicles, the table fewer
    /// trails or rows, rather than exceed it.
    #[arg(long, env = "INGEST_DASHBOARD_MAX_MESSAGE_BYTES", default_value_t = 262_144, value_parser = parse_message_cap)]
    pub dashboard_max_message_bytes: usize,

    /// Output topic of the consumer's per-vehicle summaries, read by the dashboard.
    #[arg(
        long,
        env = "INGEST_SUMMARY_TOPIC",
        default_value = "telemetry.summary"
    )]
    pub summary_topic: String,

    /// Output topic of the consumer's window metrics, read by the dashboard.
    #[arg(
        long,
        env = "INGEST_METRICS_TOPIC",
        default_value = "telemetry.metrics"
    )]
    pub metrics_topic: String,

    /// Output topic of the consumer's sensor histograms, read by the dashboard.
    #[arg(
        long,
        env = "INGEST_HISTOGRAMS_TOPIC",
        default_value = "telemetry.histograms"
    )]
    pub histograms_topic: String,

    /// Latitude of the simulated area's origin, shown on the dashboard's map.
    #[arg(long, env = "INGEST_MAP_ORIGIN_LAT", default_value_t = 59.3293)]
    pub map_origin_lat: f64,

    /// Longitude of the simulated area's origin.
    #[arg(long, env = "INGEST_MAP_ORIGIN_LON", default_value_t = 18.0686)]
    pub map_origin_lon: f64,

    /// Radius of the simulated area in metres: the extent of the dashboard's map.
    #[arg(long, env = "INGEST_MAP_RADIUS_M", default_value_t = 2000.0, value_parser = parse_radius)]
    pub map_radius_m: f64,

    /// More log output (`-v` debug, `-vv` trace); `RUST_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

fn parse_body_limit(text: &str) -> Result<usize, String> {
    let bytes: usize = text.parse().map_err(|e| format!("not a byte count: {e}"))?;
    if bytes == 0 {
        return Err("must be at least 1 byte".into());
    }
    Ok(bytes)
}

/// A count of at least 1.
fn parse_count(text: &str) -> Result<usize, String> {
    let count: usize = text.parse().map_err(|e| format!("not a count: {e}"))?;
    if count == 0 {
        return Err("must be at least 1".into());
    }
    Ok(count)
}

/// A dashboard message cap of at least 64 KiB (the fleet figures alone need some room).
fn parse_message_cap(text: &str) -> Result<usize, String> {
    let bytes: usize = text.parse().map_err(|e| format!("not a byte count: {e}"))?;
    if bytes < MIN_MESSAGE_BYTES {
        return Err(format!("must be at least {MIN_MESSAGE_BYTES} bytes"));
    }
    Ok(bytes)
}

/// Smallest dashboard message cap.
pub const MIN_MESSAGE_BYTES: usize = 65_536;

/// A vehicle time-to-live between 1 minute and 30 days.
fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let (min, max) = (Duration::from_secs(60), Duration::from_secs(30 * 86_400));
    if ttl < min || ttl > max {
        return Err(format!(
            "must lie between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(ttl)
}

/// A map radius: a positive number of metres.
fn parse_radius(text: &str) -> Result<f64, String> {
    let radius: f64 = text.parse().map_err(|e| format!("not a number: {e}"))?;
    if !(radius.is_finite() && radius > 0.0) {
        return Err("must be a positive number of metres".into());
    }
    Ok(radius)
}

/// A produce timeout between 100 ms and 1 h.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let timeout = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    let (min, max) = (Duration::from_millis(100), Duration::from_secs(3_600));
    if timeout < min || timeout > max {
        return Err(format!(
            "must lie between {} and {}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(timeout)
}

fn parse_linger(text: &str) -> Result<Duration, String> {
    let linger = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if linger > Duration::from_secs(1) {
        return Err("must be at most 1s".to_owned());
    }
    Ok(linger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let cli = Cli::try_parse_from(["ingest", "--kafka-brokers", "b:9092"]).unwrap();
        assert_eq!(cli.listen, "0.0.0.0:8080".parse().unwrap());
        assert_eq!(cli.kafka_topic, "telemetry");
        assert_eq!(cli.max_body_bytes, 1_048_576);
        assert_eq!(cli.max_records_per_request, 1_000);
        assert_eq!(cli.produce_timeout, Duration::from_secs(10));
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
