//! [`IngestSettings`]: what the orchestrator starts ingest with, the HTTP front door that
//! validates events and produces them to Kafka.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::SettingsError;
use super::env::*;
use super::limits;
use super::limits::duration_text;
use super::ports::{INGEST_PORT, listen_on};
use crate::config::Config;

/// ingest's settings: every field is a flag and an environment variable.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct IngestSettings {
    /// Address the HTTP server listens on.
    #[arg(long, env = INGEST_LISTEN, default_value_t = listen_on(INGEST_PORT))]
    pub listen: SocketAddr,

    /// Kafka bootstrap servers, comma-separated `host:port`.
    #[arg(long, env = KAFKA_BROKERS)]
    pub kafka_brokers: String,

    /// Topic the events are produced to.
    #[arg(long, env = KAFKA_TOPIC, default_value = "telemetry")]
    pub kafka_topic: String,

    /// Largest accepted request body, bytes; larger bodies get 413. At least 1 KiB.
    #[arg(long, env = INGEST_MAX_BODY_BYTES, default_value_t = 1_048_576,
          value_parser = limits::MAX_BODY_BYTES.parser())]
    pub max_body_bytes: usize,

    /// Most records (events) one request may carry; a body with more is refused with 413 before
    /// any record is checked.
    #[arg(long, env = INGEST_MAX_RECORDS_PER_REQUEST, default_value_t = 1_000,
          value_parser = limits::MAX_RECORDS_PER_REQUEST.parser())]
    pub max_records_per_request: usize,

    /// How long a request waits for the broker to acknowledge its records before it answers 503
    /// (e.g. `10s`, `2500ms`).
    #[arg(long, env = INGEST_PRODUCE_TIMEOUT, default_value = "10s",
          value_parser = limits::PRODUCE_TIMEOUT.parser())]
    pub produce_timeout: Duration,

    /// How long a record that arrives while no produce request is in flight waits for more
    /// before it is sent (records arriving during a flight always leave together right after
    /// it, see `fleet_common::rounds`; e.g. `1ms`, `500us`; `0s` sends at once). At most 1 s.
    /// The default is [`limits::DEFAULT_PRODUCER_LINGER`].
    #[arg(long, env = INGEST_PRODUCER_LINGER, default_value = "0s",
          value_parser = limits::PRODUCER_LINGER.parser())]
    pub producer_linger: Duration,

    /// Produce requests the producer keeps in flight to one broker connection (librdkafka's
    /// `max.in.flight.requests.per.connection`), 1 to 5.
    #[arg(long, env = INGEST_PRODUCER_MAX_IN_FLIGHT, default_value_t = limits::DEFAULT_PRODUCER_MAX_IN_FLIGHT,
          value_parser = limits::PRODUCER_MAX_IN_FLIGHT.parser())]
    pub producer_max_in_flight: u32,

    /// Events per second one vehicle (VIN) may send, in bursts of up to as many; records over it
    /// are refused with 429 and `Retry-After`. 0 (the default) turns the limit off. The starting
    /// value: with a registry, ingest follows the live `ingest.rate_limit_per_vin` from then on.
    #[arg(long, env = INGEST_RATE_LIMIT_PER_VIN, default_value_t = 0)]
    pub rate_limit_per_vin: u32,

    /// File of `VIN TOKEN` lines (`#` comments and blank lines allowed). When set, `POST /events`
    /// needs `Authorization: Bearer TOKEN` (else 401) and may carry only records of the token's
    /// vehicle (else 403). Unset (the default): no authentication.
    #[arg(long, env = INGEST_TOKENS_FILE)]
    pub tokens_file: Option<PathBuf>,

    /// Longest a request may take from its first byte to the answer, reading the body
    /// included; past it the answer is 408 and the connection is closed. A connection that does
    /// not finish its request headers in this time is closed. Must exceed the produce timeout.
    #[arg(long, env = INGEST_REQUEST_TIMEOUT, default_value = "30s",
          value_parser = limits::REQUEST_TIMEOUT.parser())]
    pub request_timeout: Duration,

    /// Requests served at once (`POST /events`, the dashboard, `/openapi.json`); more are
    /// answered 503 with `Retry-After` at once.
    #[arg(long, env = INGEST_MAX_CONCURRENT_REQUESTS, default_value_t = 512,
          value_parser = limits::MAX_CONCURRENT_REQUESTS.parser())]
    pub max_concurrent_requests: usize,

    /// Connections open at once; as many more are answered 503 with `Retry-After` and closed,
    /// beyond that a connection is closed at once.
    #[arg(long, env = INGEST_MAX_CONNECTIONS, default_value_t = 1024,
          value_parser = limits::MAX_CONNECTIONS.parser())]
    pub max_connections: usize,

    /// With a tokens file: whether `GET /events` and `GET /events/stream` need a `dashboard`
    /// token of the file too (they show every vehicle's VIN, position and speed).
    #[arg(long, env = INGEST_DASHBOARD_REQUIRES_TOKEN, default_value_t = true,
          action = clap::ArgAction::Set)]
    pub dashboard_requires_token: bool,

    /// The dashboard forgets a vehicle whose latest event is older than this, and a restarted
    /// ingest reads the output topics from this long ago only.
    #[arg(long, env = INGEST_DASHBOARD_VEHICLE_TTL, default_value = "1h",
          value_parser = limits::DASHBOARD_VEHICLE_TTL.parser())]
    pub dashboard_vehicle_ttl: Duration,

    /// Vehicles drawn on the dashboard's map: the positions of this many most recently seen
    /// vehicles go into every update (fewer when they would not fit in the message cap).
    #[arg(long, env = INGEST_DASHBOARD_MAP_VEHICLES, default_value_t = 5_000,
          value_parser = limits::DASHBOARD_MAP_VEHICLES.parser())]
    pub dashboard_map_vehicles: usize,

    /// Largest dashboard update, bytes of JSON: the map shows fewer vehicles, the table fewer
    /// trails or rows, rather than exceed it.
    #[arg(long, env = INGEST_DASHBOARD_MAX_MESSAGE_BYTES, default_value_t = 262_144,
          value_parser = limits::DASHBOARD_MAX_MESSAGE_BYTES.parser())]
    pub dashboard_max_message_bytes: usize,

    /// Output topic of the consumer's per-vehicle summaries, read by the dashboard.
    #[arg(long, env = INGEST_SUMMARY_TOPIC, default_value = "telemetry.summary")]
    pub summary_topic: String,

    /// Output topic of the consumer's window metrics, read by the dashboard.
    #[arg(long, env = INGEST_METRICS_TOPIC, default_value = "telemetry.metrics")]
    pub metrics_topic: String,

    /// Output topic of the consumer's sensor histograms, read by the dashboard.
    #[arg(long, env = INGEST_HISTOGRAMS_TOPIC, default_value = "telemetry.histograms")]
    pub histograms_topic: String,

    /// Latitude of the simulated area's origin, shown on the dashboard's map.
    #[arg(long, env = INGEST_MAP_ORIGIN_LAT, default_value_t = 59.3293,
          allow_negative_numbers = true, value_parser = limits::LATITUDE.parser())]
    pub map_origin_lat: f64,

    /// Longitude of the simulated area's origin.
    #[arg(long, env = INGEST_MAP_ORIGIN_LON, default_value_t = 18.0686,
          allow_negative_numbers = true, value_parser = limits::LONGITUDE.parser())]
    pub map_origin_lon: f64,

    /// Radius of the simulated area in metres: the extent of the dashboard's map.
    #[arg(long, env = INGEST_MAP_RADIUS_M, default_value_t = 2000.0,
          value_parser = limits::AREA_RADIUS_M.parser())]
    pub map_radius_m: f64,
}

/// What ingest's settings take from the stack's layout rather than from the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestWiring {
    /// The brokers' in-network bootstrap address.
    pub kafka_brokers: String,
    /// Where the tokens file is handed over, when `ingest.tokens_file` is set.
    pub tokens_file: Option<PathBuf>,
}

impl IngestSettings {
    /// The settings `config` gives ingest, wired by `wiring`.
    pub fn from_config(config: &Config, wiring: IngestWiring) -> Self {
        let (i, b, v) = (&config.ingest, &config.broker, &config.vehicles);
        Self {
            listen: listen_on(INGEST_PORT),
            kafka_brokers: wiring.kafka_brokers,
            kafka_topic: b.topic.clone(),
            max_body_bytes: i.max_body_bytes,
            max_records_per_request: i.max_records_per_request,
            produce_timeout: i.produce_timeout,
            producer_linger: i.producer_linger,
            producer_max_in_flight: i.producer_max_in_flight,
            rate_limit_per_vin: i.rate_limit_per_vin,
            tokens_file: wiring.tokens_file,
            request_timeout: i.request_timeout,
            max_concurrent_requests: i.max_concurrent_requests,
            max_connections: i.max_connections,
            dashboard_requires_token: i.dashboard_requires_token,
            dashboard_vehicle_ttl: i.dashboard_vehicle_ttl,
            dashboard_map_vehicles: i.dashboard_map_vehicles,
            dashboard_max_message_bytes: i.dashboard_max_message_bytes,
            summary_topic: b.summary_topic.clone(),
            metrics_topic: b.metrics_topic.clone(),
            histograms_topic: b.histograms_topic.clone(),
            map_origin_lat: v.origin_lat,
            map_origin_lon: v.origin_lon,
            map_radius_m: v.area_radius_m,
        }
    }

    /// Checks every bounded setting and that the request timeout exceeds the produce timeout.
    pub fn validate(&self) -> Result<(), SettingsError> {
        limits::MAX_BODY_BYTES.check(INGEST_MAX_BODY_BYTES, self.max_body_bytes)?;
        limits::MAX_RECORDS_PER_REQUEST
            .check(INGEST_MAX_RECORDS_PER_REQUEST, self.max_records_per_request)?;
        limits::PRODUCE_TIMEOUT.check(INGEST_PRODUCE_TIMEOUT, self.produce_timeout)?;
        limits::PRODUCER_LINGER.check(INGEST_PRODUCER_LINGER, self.producer_linger)?;
        limits::PRODUCER_MAX_IN_FLIGHT
            .check(INGEST_PRODUCER_MAX_IN_FLIGHT, self.producer_max_in_flight)?;
        limits::REQUEST_TIMEOUT.check(INGEST_REQUEST_TIMEOUT, self.request_timeout)?;
        if self.request_timeout <= self.produce_timeout {
            return Err(SettingsError::Invalid {
                var: INGEST_REQUEST_TIMEOUT,
                reason: format!(
                    "{} must exceed {INGEST_PRODUCE_TIMEOUT} ({}): a request waits for the broker within it",
                    duration_text(self.request_timeout),
                    duration_text(self.produce_timeout)
                ),
            });
        }
        limits::MAX_CONCURRENT_REQUESTS
            .check(INGEST_MAX_CONCURRENT_REQUESTS, self.max_concurrent_requests)?;
        limits::MAX_CONNECTIONS.check(INGEST_MAX_CONNECTIONS, self.max_connections)?;
        limits::DASHBOARD_VEHICLE_TTL
            .check(INGEST_DASHBOARD_VEHICLE_TTL, self.dashboard_vehicle_ttl)?;
        limits::DASHBOARD_MAP_VEHICLES
            .check(INGEST_DASHBOARD_MAP_VEHICLES, self.dashboard_map_vehicles)?;
        limits::DASHBOARD_MAX_MESSAGE_BYTES.check(
            INGEST_DASHBOARD_MAX_MESSAGE_BYTES,
            self.dashboard_max_message_bytes,
        )?;
        limits::LATITUDE.check(INGEST_MAP_ORIGIN_LAT, self.map_origin_lat)?;
        limits::LONGITUDE.check(INGEST_MAP_ORIGIN_LON, self.map_origin_lon)?;
        limits::AREA_RADIUS_M.check(INGEST_MAP_RADIUS_M, self.map_radius_m)
    }

    /// The environment that gives a container these settings.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (INGEST_LISTEN, self.listen.to_string()),
            (KAFKA_BROKERS, self.kafka_brokers.clone()),
            (KAFKA_TOPIC, self.kafka_topic.clone()),
            (INGEST_MAX_BODY_BYTES, self.max_body_bytes.to_string()),
            (
                INGEST_MAX_RECORDS_PER_REQUEST,
                self.max_records_per_request.to_string(),
            ),
            (INGEST_PRODUCE_TIMEOUT, duration_text(self.produce_timeout)),
            (INGEST_PRODUCER_LINGER, duration_text(self.producer_linger)),
            (
                INGEST_PRODUCER_MAX_IN_FLIGHT,
                self.producer_max_in_flight.to_string(),
            ),
            (
                INGEST_RATE_LIMIT_PER_VIN,
                self.rate_limit_per_vin.to_string(),
            ),
            (INGEST_REQUEST_TIMEOUT, duration_text(self.request_timeout)),
            (
                INGEST_MAX_CONCURRENT_REQUESTS,
                self.max_concurrent_requests.to_string(),
            ),
            (INGEST_MAX_CONNECTIONS, self.max_connections.to_string()),
            (
                INGEST_DASHBOARD_REQUIRES_TOKEN,
                self.dashboard_requires_token.to_string(),
            ),
            (
                INGEST_DASHBOARD_VEHICLE_TTL,
                duration_text(self.dashboard_vehicle_ttl),
            ),
            (
                INGEST_DASHBOARD_MAP_VEHICLES,
                self.dashboard_map_vehicles.to_string(),
            ),
            (
                INGEST_DASHBOARD_MAX_MESSAGE_BYTES,
                self.dashboard_max_message_bytes.to_string(),
            ),
            (INGEST_SUMMARY_TOPIC, self.summary_topic.clone()),
            (INGEST_METRICS_TOPIC, self.metrics_topic.clone()),
            (INGEST_HISTOGRAMS_TOPIC, self.histograms_topic.clone()),
            (INGEST_MAP_ORIGIN_LAT, self.map_origin_lat.to_string()),
            (INGEST_MAP_ORIGIN_LON, self.map_origin_lon.to_string()),
            (INGEST_MAP_RADIUS_M, self.map_radius_m.to_string()),
        ];
        if let Some(path) = &self.tokens_file {
            env.push((INGEST_TOKENS_FILE, path.display().to_string()));
        }
        env
    }
}
