//! Every environment variable our programs read, by name, in one place: the orchestrator's plan
//! writes them through the `to_env()` of a settings struct, and the services read them through
//! the same struct (`#[arg(env = ...)]` with these constants). A name is never spelled twice.
//!
//! Names marked *local* are read by a service but never written by the plan (tuning options
//! for a service run by hand); names marked *image script* are read by a shell script of one of
//! our images (`images/*/entrypoint.sh`).

// Shared by ingest and the consumer.

/// Kafka bootstrap servers, comma-separated `host:port` (ingest, consumer).
pub const KAFKA_BROKERS: &str = "KAFKA_BROKERS";
/// The input topic (ingest produces to it, the consumer reads it).
pub const KAFKA_TOPIC: &str = "KAFKA_TOPIC";

// ingest.

/// ingest's HTTP listen address.
pub const INGEST_LISTEN: &str = "INGEST_LISTEN";
/// ingest's largest accepted request body, bytes.
pub const INGEST_MAX_BODY_BYTES: &str = "INGEST_MAX_BODY_BYTES";
/// Most records one request may carry.
pub const INGEST_MAX_RECORDS_PER_REQUEST: &str = "INGEST_MAX_RECORDS_PER_REQUEST";
/// How long a request waits for the broker's acknowledgement.
pub const INGEST_PRODUCE_TIMEOUT: &str = "INGEST_PRODUCE_TIMEOUT";
/// The producer's `linger.ms`.
pub const INGEST_PRODUCER_LINGER: &str = "INGEST_PRODUCER_LINGER";
/// The producer's `max.in.flight.requests.per.connection`.
pub const INGEST_PRODUCER_MAX_IN_FLIGHT: &str = "INGEST_PRODUCER_MAX_IN_FLIGHT";
/// Events per second one VIN may send (0: off).
pub const INGEST_RATE_LIMIT_PER_VIN: &str = "INGEST_RATE_LIMIT_PER_VIN";
/// File of bearer tokens.
pub const INGEST_TOKENS_FILE: &str = "INGEST_TOKENS_FILE";
/// Longest a request may take, body included.
pub const INGEST_REQUEST_TIMEOUT: &str = "INGEST_REQUEST_TIMEOUT";
/// Requests served at once.
pub const INGEST_MAX_CONCURRENT_REQUESTS: &str = "INGEST_MAX_CONCURRENT_REQUESTS";
/// Connections open at once.
pub const INGEST_MAX_CONNECTIONS: &str = "INGEST_MAX_CONNECTIONS";
/// Whether the dashboard needs a `dashboard` token.
pub const INGEST_DASHBOARD_REQUIRES_TOKEN: &str = "INGEST_DASHBOARD_REQUIRES_TOKEN";
/// How long the dashboard remembers a silent vehicle.
pub const INGEST_DASHBOARD_VEHICLE_TTL: &str = "INGEST_DASHBOARD_VEHICLE_TTL";
/// Vehicles drawn on the dashboard's map.
pub const INGEST_DASHBOARD_MAP_VEHICLES: &str = "INGEST_DASHBOARD_MAP_VEHICLES";
/// Largest dashboard update, bytes.
pub const INGEST_DASHBOARD_MAX_MESSAGE_BYTES: &str = "INGEST_DASHBOARD_MAX_MESSAGE_BYTES";
/// Output topic of the per-vehicle summaries, read by the dashboard.
pub const INGEST_SUMMARY_TOPIC: &str = "INGEST_SUMMARY_TOPIC";
/// Output topic of the window metrics, read by the dashboard.
pub const INGEST_METRICS_TOPIC: &str = "INGEST_METRICS_TOPIC";
/// Output topic of the sensor histograms, read by the dashboard.
pub const INGEST_HISTOGRAMS_TOPIC: &str = "INGEST_HISTOGRAMS_TOPIC";
/// Latitude of the dashboard map's origin.
pub const INGEST_MAP_ORIGIN_LAT: &str = "INGEST_MAP_ORIGIN_LAT";
/// Longitude of the dashboard map's origin.
pub const INGEST_MAP_ORIGIN_LON: &str = "INGEST_MAP_ORIGIN_LON";
/// Radius of the dashboard map, metres.
pub const INGEST_MAP_RADIUS_M: &str = "INGEST_MAP_RADIUS_M";

// The consumer.

/// The consumer's HTTP listen address.
pub const CONSUMER_LISTEN: &str = "CONSUMER_LISTEN";
/// The dead-letter topic.
pub const KAFKA_DLQ_TOPIC: &str = "KAFKA_DLQ_TOPIC";
/// The consumer group.
pub const CONSUMER_GROUP: &str = "CONSUMER_GROUP";
/// This consumer replica's id.
pub const CONSUMER_INSTANCE_ID: &str = "CONSUMER_INSTANCE_ID";
/// Configured number of consumer replicas.
pub const CONSUMER_REPLICAS: &str = "CONSUMER_REPLICAS";
/// This consumer replica's index.
pub const CONSUMER_REPLICA_INDEX: &str = "CONSUMER_REPLICA_INDEX";
/// PostgreSQL host.
pub const PG_HOST: &str = "PG_HOST";
/// PostgreSQL port.
pub const PG_PORT: &str = "PG_PORT";
/// PostgreSQL role.
pub const PG_USER: &str = "PG_USER";
/// PostgreSQL database.
pub const PG_DATABASE: &str = "PG_DATABASE";
/// File holding the PostgreSQL password.
pub const PG_PASSWORD_FILE: &str = "PG_PASSWORD_FILE";
/// Most records in one batch.
pub const CONSUMER_BATCH_MAX_RECORDS: &str = "CONSUMER_BATCH_MAX_RECORDS";
/// How long a batch lingers for more records.
pub const CONSUMER_BATCH_MAX_WAIT: &str = "CONSUMER_BATCH_MAX_WAIT";
/// The broker's `fetch.wait.max.ms`.
pub const CONSUMER_FETCH_WAIT: &str = "CONSUMER_FETCH_WAIT";
/// How long output-topic messages are gathered (latest value per key) before they are produced.
pub const CONSUMER_PUBLISH_INTERVAL: &str = "CONSUMER_PUBLISH_INTERVAL";
/// Output topic of the per-vehicle summaries.
pub const CONSUMER_SUMMARY_TOPIC: &str = "CONSUMER_SUMMARY_TOPIC";
/// Output topic of the window metrics.
pub const CONSUMER_METRICS_TOPIC: &str = "CONSUMER_METRICS_TOPIC";
/// Output topic of the sensor histograms.
pub const CONSUMER_HISTOGRAMS_TOPIC: &str = "CONSUMER_HISTOGRAMS_TOPIC";
/// *Local*: how late an event may be and still count in its windows.
pub const CONSUMER_ALLOWED_LATENESS: &str = "CONSUMER_ALLOWED_LATENESS";
/// *Local*: histogram bins per sensor.
pub const CONSUMER_HISTOGRAM_BINS: &str = "CONSUMER_HISTOGRAM_BINS";
/// *Local*: whether the aggregates are published to the output topics.
pub const CONSUMER_PUBLISH_ANALYTICS: &str = "CONSUMER_PUBLISH_ANALYTICS";
/// *Local*: how long one batch's published aggregates are waited for.
pub const CONSUMER_PUBLISH_TIMEOUT: &str = "CONSUMER_PUBLISH_TIMEOUT";
/// *Local*: compare the aggregates with `diag` and exit.
pub const CONSUMER_CHECK_ANALYTICS: &str = "CONSUMER_CHECK_ANALYTICS";
/// *Local*: librdkafka debug contexts.
pub const KAFKA_DEBUG: &str = "KAFKA_DEBUG";

// Vehicles.

/// Where a vehicle container posts its events.
pub const VEHICLE_INGEST_URL: &str = "VEHICLE_INGEST_URL";
/// Vehicles simulated by one container.
pub const VEHICLE_COUNT: &str = "VEHICLE_COUNT";
/// Global index of the container's first vehicle.
pub const VEHICLE_FIRST_INDEX: &str = "VEHICLE_FIRST_INDEX";
/// Seed of the simulation.
pub const VEHICLE_SEED: &str = "VEHICLE_SEED";
/// Time between two reports of one vehicle.
pub const VEHICLE_REPORT_INTERVAL: &str = "VEHICLE_REPORT_INTERVAL";
/// Share of the interval a report may be early or late.
pub const VEHICLE_REPORT_JITTER: &str = "VEHICLE_REPORT_JITTER";
/// Probability of a sensor spike.
pub const VEHICLE_FAULT_SPIKE_RATE: &str = "VEHICLE_FAULT_SPIKE_RATE";
/// Probability of a stuck sensor.
pub const VEHICLE_FAULT_STUCK_RATE: &str = "VEHICLE_FAULT_STUCK_RATE";
/// How long a stuck sensor repeats its value.
pub const VEHICLE_FAULT_STUCK_DURATION: &str = "VEHICLE_FAULT_STUCK_DURATION";
/// Post the old client's form.
pub const VEHICLE_LEGACY_FORM: &str = "VEHICLE_LEGACY_FORM";
/// Report only this long.
pub const VEHICLE_DURATION: &str = "VEHICLE_DURATION";
/// The catalogue of makes and models, JSON.
pub const VEHICLE_CATALOGUE: &str = "VEHICLE_CATALOGUE";
/// Latitude of the simulated area's origin.
pub const VEHICLE_ORIGIN_LAT: &str = "VEHICLE_ORIGIN_LAT";
/// Longitude of the simulated area's origin.
pub const VEHICLE_ORIGIN_LON: &str = "VEHICLE_ORIGIN_LON";
/// Radius of the simulated area, metres.
pub const VEHICLE_AREA_RADIUS_M: &str = "VEHICLE_AREA_RADIUS_M";
/// Address of a vehicle container's `/stats` server.
pub const VEHICLE_LISTEN: &str = "VEHICLE_LISTEN";
/// *Local*: most events in one request.
pub const VEHICLE_BATCH_MAX: &str = "VEHICLE_BATCH_MAX";
/// *Local*: longest an event waits for its batch.
pub const VEHICLE_BATCH_WAIT: &str = "VEHICLE_BATCH_WAIT";
/// *Local*: most requests in flight.
pub const VEHICLE_MAX_IN_FLIGHT: &str = "VEHICLE_MAX_IN_FLIGHT";
/// *Local*: most events kept per vehicle while ingest does not acknowledge.
pub const VEHICLE_OUTBOX_CAPACITY: &str = "VEHICLE_OUTBOX_CAPACITY";

// The registry (every member: ingest, consumer, vehicles).

/// ZooKeeper connect string.
pub const ZOOKEEPER_CONNECT: &str = "ZOOKEEPER_CONNECT";
/// The stack whose registry a member joins.
pub const REGISTRY_STACK: &str = "REGISTRY_STACK";
/// ZooKeeper session timeout.
pub const ZOOKEEPER_SESSION_TIMEOUT: &str = "ZOOKEEPER_SESSION_TIMEOUT";
/// The member's id within its role.
pub const REGISTRY_MEMBER_ID: &str = "REGISTRY_MEMBER_ID";
/// Where the member is reached inside the stack network.
pub const REGISTRY_ADDRESS: &str = "REGISTRY_ADDRESS";
/// File holding the stack's ZooKeeper digest identity.
pub const ZOOKEEPER_AUTH_FILE: &str = "ZOOKEEPER_AUTH_FILE";

// The balancer in front of the ingest replicas.

/// Address the balancer accepts connections on.
pub const BALANCER_LISTEN: &str = "BALANCER_LISTEN";
/// The balancer's backends, comma-separated `host:port`.
pub const BALANCER_BACKENDS: &str = "BALANCER_BACKENDS";
/// *Local*: longest wait for one backend to accept.
pub const BALANCER_CONNECT_TIMEOUT: &str = "BALANCER_CONNECT_TIMEOUT";
/// *Local*: connections proxied at once.
pub const BALANCER_MAX_CONNECTIONS: &str = "BALANCER_MAX_CONNECTIONS";
/// *Local*: idle time after which a connection is closed.
pub const BALANCER_IDLE_TIMEOUT: &str = "BALANCER_IDLE_TIMEOUT";
/// *Local*: TCP keepalive time.
pub const BALANCER_KEEPALIVE: &str = "BALANCER_KEEPALIVE";

// Image scripts.

/// *Image script* (postgres): the role created with the cluster.
pub const POSTGRES_USER: &str = "POSTGRES_USER";
/// *Image script* (postgres): the database created with the cluster.
pub const POSTGRES_DB: &str = "POSTGRES_DB";
/// *Image script* (postgres): the file holding the role's password.
pub const POSTGRES_PASSWORD_FILE: &str = "POSTGRES_PASSWORD_FILE";
/// *Image script* (broker): the storage URL, without a password.
pub const BROKER_STORAGE: &str = "BROKER_STORAGE";
/// *Image script* (broker): the file holding the storage's password.
pub const BROKER_STORAGE_PASSWORD_FILE: &str = "BROKER_STORAGE_PASSWORD_FILE";
