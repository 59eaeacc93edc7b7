//! The configuration structs. Every field is documented; the docs double as the reference of
//! `config.master.toml`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::batch_max_records::{BatchMaxRecords, BatchMaxRecordsError};

/// The whole configuration of one stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Stack identity and where its ports are published.
    pub stack: StackConfig,
    /// How the base image is obtained.
    pub images: ImagesConfig,
    /// ZooKeeper.
    pub zookeeper: ZookeeperConfig,
    /// The Kafka-API broker (Nisshi by default).
    pub broker: BrokerConfig,
    /// PostgreSQL.
    pub postgres: PostgresConfig,
    /// The HTTP-to-Kafka ingest service.
    pub ingest: IngestConfig,
    /// The Kafka-to-PostgreSQL consumer.
    pub consumer: ConsumerConfig,
    /// The simulated vehicles.
    pub vehicles: VehiclesConfig,
    /// Where the stack runs: one engine (the default) or a swarm.
    #[serde(default)]
    pub target: super::target::TargetConfig,
}

/// Stack identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// Name of the stack: the `io.fleet.stack` label and the prefix of every container, network
    /// and volume. Lower-case letters, digits and `-`, at most 32 characters.
    pub name: String,
    /// Host address that published ports bind to. `127.0.0.1` keeps them off the network.
    pub bind_address: String,
    /// Directory for per-stack state (the generated PostgreSQL password). Empty: the user's
    /// state directory (`$XDG_STATE_HOME/fleet` or `~/.local/state/fleet`).
    #[serde(default)]
    pub state_dir: String,
    /// Directory for build artefacts kept across stacks (the broker binary, the base root file
    /// system). Empty: `$XDG_CACHE_HOME/fleet` or `~/.cache/fleet`.
    #[serde(default)]
    pub cache_dir: String,
    /// Directory holding the image recipes (one folder per image), relative to the config file.
    pub recipes_dir: String,
}

/// Where the base image comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseSource {
    /// Pull `images.base_image`; bootstrap with debootstrap if the pull fails.
    Auto,
    /// Pull `images.base_image` only.
    Pull,
    /// Always bootstrap with debootstrap.
    Debootstrap,
}

/// How images are obtained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    /// `auto`, `pull` or `debootstrap`.
    pub base_source: BaseSource,
    /// The upstream base image to pull.
    pub base_image: String,
    /// Debian suite used by debootstrap and by every recipe.
    pub debian_suite: String,
    /// Debian mirror used by debootstrap.
    pub debian_mirror: String,
    /// Prefix of the tags of images that fleet builds, e.g. `fleet` gives `fleet/broker:<hash>`.
    pub tag_prefix: String,
    /// Cargo profile our binaries are built with for the runtime image.
    pub cargo_profile: String,
    /// Whether fleet installs missing host packages (debootstrap, the C toolchain) with apt
    /// before the builds: `auto` does on a Debian or Ubuntu host when it runs as root or has
    /// password-less sudo; `never` stops at once with the command to run.
    #[serde(default)]
    pub host_packages: HostPackages,
}

/// Whether fleet installs missing host packages itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostPackages {
    /// With apt, when root or password-less sudo allows it; otherwise print the command.
    #[default]
    Auto,
    /// Never: print the command to run.
    Never,
}

/// Settings every infrastructure service shares: an optional upstream image to run instead of
/// the recipe, with its command and environment. (How long to wait for readiness is each
/// service's own setting, e.g. [`ZookeeperConfig::start_timeout`].)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageOverride {
    /// Upstream image to run instead of building the recipe (needs a registry). Empty: build.
    #[serde(default)]
    pub image: String,
    /// Command for the upstream image. Empty: the image's own.
    #[serde(default)]
    pub command: Vec<String>,
    /// Extra environment for the upstream image.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// ZooKeeper.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZookeeperConfig {
    /// Host port for the client port 2181.
    pub host_port: u16,
    /// How long to wait for `ruok` to answer `imok`.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Session timeout of every member of the registry: a crashed or frozen member (and the
    /// partitions a consumer replica owned) is given up this long after its last heartbeat.
    /// ZooKeeper accepts 4 s to 40 s with its tick of 2 s.
    #[serde(with = "humantime_serde", default = "default_session_timeout")]
    pub session_timeout: Duration,
    /// Upstream image instead of the built one.
    #[serde(default)]
    pub upstream: Option<ImageOverride>,
}

/// The default of `zookeeper.session_timeout`.
fn default_session_timeout() -> Duration {
    Duration::from_secs(6)
}

/// Where the broker keeps its log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrokerStorage {
    /// A PostgreSQL server of the broker's own (production storage of Nisshi; shared by every
    /// broker replica).
    #[default]
    Postgres,
    /// A sqlite file on the broker's volume (development storage; one broker only).
    Sqlite,
}

/// The Kafka-API broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerConfig {
    /// Nisshi (Tansu's successor) version, built with `cargo install nisshi --locked
    /// --ignore-rust-version --no-default-features --features <nisshi_features>`.
    pub nisshi_version: String,
    /// Cargo features of the Nisshi build: the storage engines it can use (`postgres`, `libsql`).
    pub nisshi_features: Vec<String>,
    /// The newest `rust-version` that a locked dependency of this Nisshi version declares. When
    /// the host's rustc is older, fleet says so and builds with `--ignore-rust-version` (0.8.1:
    /// `rama` 0.4 declares 1.96 and builds and runs fine on 1.95).
    pub nisshi_rust_version: String,
    /// Where the brokers keep the log: `postgres` (a PostgreSQL server of the broker's own,
    /// `<stack>-broker-storage`, from the postgres recipe; every broker replica shares it) or
    /// `sqlite` (a file on the broker's volume; one broker only).
    #[serde(default)]
    pub storage: BrokerStorage,
    /// Broker containers inside the stack network (`broker-0..N-1`, one name on the network
    /// for the clients). Brokers are stateless over the shared storage: each is leader and
    /// group coordinator for everything. Above 1 needs `storage = "postgres"`.
    #[serde(default = "one")]
    pub replicas: u32,
    /// Host port of the host listener (one more broker on the same storage that advertises
    /// `<stack.bind_address>:<host_port>`): Kafka clients on the host bootstrap here and are
    /// told to come back here.
    pub host_port: u16,
    /// The input topic.
    pub topic: String,
    /// Partitions of the input topic (1 to 1000), and of the summary topic. They bound the
    /// consumer replicas that hold a share; on Nisshi each partition a produce request touches
    /// is one more serial storage transaction, so more partitions cost ingest throughput.
    pub partitions: i32,
    /// Records that can never be stored go here, with the reason.
    pub dlq_topic: String,
    /// Per-vehicle first/last seen summaries, keyed by VIN (written by the consumer).
    pub summary_topic: String,
    /// Per-second and per-minute window metrics (written by the consumer).
    pub metrics_topic: String,
    /// Per-minute sensor histograms (written by the consumer).
    pub histograms_topic: String,
    /// How long to wait for the broker to answer a metadata request.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Upstream image instead of the built one.
    #[serde(default)]
    pub upstream: Option<ImageOverride>,
}

/// PostgreSQL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Host port for 5432.
    pub host_port: u16,
    /// Database name.
    pub database: String,
    /// The application role (owner of the database). Its password is generated per stack.
    pub user: String,
    /// How long to wait for a query to succeed.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Server settings for both PostgreSQL servers of the stack (this database and the broker's
    /// storage), each passed to the server as `-c name=value` (the server checks the value and
    /// refuses to start on a bad one). Empty: PostgreSQL's own defaults.
    #[serde(default)]
    pub server_settings: BTreeMap<String, ServerSetting>,
    /// Upstream image instead of the built one.
    #[serde(default)]
    pub upstream: Option<ImageOverride>,
}

/// The memory limit of each PostgreSQL container, MiB: `postgres.server_settings.shared_buffers`
/// may take at most half of it (PostgreSQL's shared memory counts against it).
pub const POSTGRES_MEMORY_MIB: i64 = 1024;

/// The value of one PostgreSQL server setting, as TOML writes it (`"1GB"`, `200`, `0.9`, `on`
/// as `true`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ServerSetting {
    /// A string, passed as it is (units included: `"512MB"`, `"15min"`).
    Text(String),
    /// An integer.
    Integer(i64),
    /// A floating-point number.
    Float(f64),
    /// A boolean, passed as `on` or `off`.
    Bool(bool),
}

impl std::fmt::Display for ServerSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Integer(n) => write!(f, "{n}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Bool(b) => f.write_str(if *b { "on" } else { "off" }),
        }
    }
}

/// The ingest service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// Host port of the HTTP API and the events page.
    pub host_port: u16,
    /// Largest accepted request body, bytes (at least 1024).
    pub max_body_bytes: usize,
    /// Most records (events) one request may carry; a body with more is refused with 413 before
    /// any record is checked. Bounds the work and the answer of one request.
    #[serde(default = "default_max_records_per_request")]
    pub max_records_per_request: usize,
    /// How long a request waits for the broker's acknowledgement before answering 503.
    #[serde(with = "humantime_serde")]
    pub produce_timeout: Duration,
    /// How long a record that arrives while ingest has no produce request in flight waits for
    /// more before it is sent (at most 1 s); records that arrive during a flight leave
    /// together right after it whatever this is. Longer sends fewer and larger produce
    /// requests at low load, and answers a lone event later.
    #[serde(default = "default_producer_linger", with = "humantime_serde")]
    pub producer_linger: Duration,
    /// Produce requests ingest's producer keeps in flight to one broker connection (librdkafka's
    /// `max.in.flight.requests.per.connection`, 1 to 5 with idempotence). Nisshi serves one
    /// connection's requests one after another, so more in flight may split the waiting records
    /// over more, smaller requests; 1 and 5 measured alike here (results/end_to_end.md).
    #[serde(default = "default_producer_max_in_flight")]
    pub producer_max_in_flight: u32,
    /// Events per second one vehicle (VIN) may send; more get 429 with `Retry-After`. 0: off.
    #[serde(default)]
    pub rate_limit_per_vin: u32,
    /// File of `VIN TOKEN` lines (relative to the config file): when set, every POST needs
    /// `Authorization: Bearer <token>` of the records' VIN. `dashboard TOKEN` lines hold the
    /// tokens of the dashboard. Empty: no authentication.
    #[serde(default)]
    pub tokens_file: String,
    /// With a tokens file: whether the dashboard (`GET /events`, `GET /events/stream`, which
    /// show every VIN, position and speed) needs a `dashboard` token too, as a bearer token or
    /// `?access_token=`. Default true.
    #[serde(default = "yes")]
    pub dashboard_requires_token: bool,
    /// Longest a request may take from its first byte to the answer, the body included (408
    /// and the connection closed past it), and longest a connection may take to send a
    /// request's headers. Must exceed `produce_timeout` (and at most 1 h).
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Requests one ingest serves at once; more are answered 503 with `Retry-After` at once
    /// (load shedding). 1 to 100,000.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Connections one ingest holds open at once; as many more get 503 with `Retry-After`
    /// and are closed, beyond that a connection is closed at once. 1 to 100,000.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The dashboard forgets a vehicle without an event for this long (1 min to 30 days); a
    /// restarted ingest reads back this much of the consumer's output topics.
    #[serde(default = "default_dashboard_vehicle_ttl", with = "humantime_serde")]
    pub dashboard_vehicle_ttl: Duration,
    /// Vehicles drawn on the dashboard's map: the positions of this many most recently seen
    /// vehicles go into every update (1 to 100,000; fewer when they would not fit in
    /// `dashboard_max_message_bytes`).
    #[serde(default = "default_dashboard_map_vehicles")]
    pub dashboard_map_vehicles: usize,
    /// Largest dashboard update, bytes of JSON (64 KiB to 64 MiB): the map shows fewer
    /// vehicles, the table fewer trails or rows, rather than exceed it.
    #[serde(default = "default_dashboard_max_message_bytes")]
    pub dashboard_max_message_bytes: usize,
    /// Containers running ingest (`ingest-0`, `ingest-1`, ...). They share the network alias
    /// `<stack>-ingest` for clients inside the stack; above 1, a TCP round-robin balancer
    /// (`ingest-lb`) holds `host_port`. 1: a single container `ingest` on `host_port`.
    #[serde(default = "one")]
    pub replicas: u32,
    /// How long to wait for `/readyz`.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
}

/// The consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Kafka consumer group.
    pub group: String,
    /// Most records written in one transaction (1 to 100,000, checked while reading).
    pub batch_max_records: BatchMaxRecords,
    /// How long a batch lingers for more records after its first one before it is written,
    /// when no write is in flight (while one is, records gather into the next batch anyway);
    /// 1ms to 60s.
    #[serde(with = "humantime_serde")]
    pub batch_max_wait: Duration,
    /// Longest time the broker holds a fetch that found nothing (librdkafka's
    /// `fetch.wait.max.ms`, 10ms to 10s: `settings::limits::FETCH_WAIT`; optional, default 100ms). Nisshi looks again at
    /// half of the time left, so at low load a record waits up to about half of this to be
    /// fetched. It also bounds how long Nisshi assembles records from one storage read: a read
    /// that takes longer than this returns a single record, so under a backlog a value below
    /// the storage's read time (about 25 ms on 2 cores) drains at tens of records per second
    /// (`results/end_to_end.md`).
    #[serde(with = "humantime_serde", default = "default_fetch_wait")]
    pub fetch_wait: Duration,
    /// How long the consumer gathers its output-topic messages before it produces them
    /// (0s to 60s: `settings::limits::PUBLISH_INTERVAL`; optional, default 1s). Within one
    /// interval only the latest value of each key is produced (a vehicle's summary, a window,
    /// a histogram), as Kafka Streams' record cache does, so a vehicle reporting faster than
    /// this costs one summary per interval instead of one per batch. `0s` produces each
    /// batch's messages as soon as it committed. A stopping consumer produces what it gathered;
    /// a replica that starts or takes partitions over produces again the summaries stored
    /// within this interval (plus `publish_timeout` and a minute) before the newest one.
    #[serde(with = "humantime_serde", default = "default_publish_interval")]
    pub publish_interval: Duration,
    /// Containers running the consumer (`consumer-0`, `consumer-1`, ...), sharing the topic's
    /// partitions: the live replicas in the registry split them, each resuming from the offsets
    /// in PostgreSQL. 1: a single container `consumer`.
    #[serde(default = "one")]
    pub replicas: u32,
    /// How long to wait for `/readyz`.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
}

/// One manufacturer of the vehicle catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueEntry {
    /// Manufacturer name (at most 20 characters).
    pub make: String,
    /// World manufacturer identifier: the first 3 characters of its VINs.
    pub wmi: String,
    /// Model names (each at most 20 characters).
    pub models: Vec<String>,
}

/// The simulated vehicles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VehiclesConfig {
    /// Time between two reports of one vehicle (10ms to 1h, `settings::limits::REPORT_INTERVAL`).
    #[serde(with = "humantime_serde")]
    pub report_interval: Duration,
    /// Each report is up to this share of `report_interval` early or late, at random
    /// (`0` to `0.5`).
    pub report_jitter: f64,
    /// Probability that one reading of one sensor is a spike far off the true value (`0` to
    /// `1`; `0` turns spikes off).
    pub fault_spike_rate: f64,
    /// Probability per reading that a sensor gets stuck, repeating its value (`0` to `1`).
    pub fault_stuck_rate: f64,
    /// How long a stuck sensor repeats its value.
    #[serde(with = "humantime_serde")]
    pub fault_stuck_duration: Duration,
    /// Vehicles simulated by one container.
    pub per_container: u32,
    /// Seed of the simulation: the same seed gives the same VINs and trips.
    pub seed: u64,
    /// Origin of the local frame, latitude in degrees (-85 to 85: the flat local frame breaks
    /// near the poles).
    pub origin_lat: f64,
    /// Origin of the local frame, longitude in degrees (-180 to 180).
    pub origin_lon: f64,
    /// Vehicles stay within this distance of the origin, metres (10 to 100,000).
    pub area_radius_m: f64,
    /// How long `launch-fleet` waits for every vehicle's first acknowledged event.
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Makes and models the simulator draws from.
    pub catalogue: Vec<CatalogueEntry>,
}

/// The default of a replica count.
fn default_max_records_per_request() -> usize {
    1_000
}

fn one() -> u32 {
    1
}

/// The default of `consumer.fetch_wait`.
fn default_fetch_wait() -> Duration {
    Duration::from_millis(100)
}

/// The default of `consumer.publish_interval`: the dashboard's refresh period, so the page
/// misses no update it could show.
fn default_publish_interval() -> Duration {
    Duration::from_secs(1)
}

fn yes() -> bool {
    true
}

fn default_producer_linger() -> Duration {
    crate::settings::limits::DEFAULT_PRODUCER_LINGER
}

fn default_producer_max_in_flight() -> u32 {
    crate::settings::limits::DEFAULT_PRODUCER_MAX_IN_FLIGHT
}

fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_concurrent_requests() -> usize {
    512
}

fn default_max_connections() -> usize {
    1024
}

fn default_dashboard_vehicle_ttl() -> Duration {
    Duration::from_secs(3_600)
}

fn default_dashboard_map_vehicles() -> usize {
    5_000
}

fn default_dashboard_max_message_bytes() -> usize {
    262_144
}
