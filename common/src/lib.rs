//! Types shared by every `fleet` component.
//!
//! - [`event`]: the telemetry event that vehicles send, ingest validates and the consumer stores.
//! - [`vin`]: vehicle identification numbers with their check digit.
//! - [`config`]: the typed `config.master.toml`.
//! - [`settings`]: the contract between the orchestrator and our programs: one settings struct
//!   per program, its environment variables, its one `validate()` and its `to_env()`.
//! - [`schema`]: the PostgreSQL schema of the `av_telemetry` database.
//! - [`roles`]: the PostgreSQL roles (schema owner, least-privileged application role).
//! - [`logging`]: the one `tracing` setup that every binary uses.
//! - [`latency_histogram`]: the latency histogram of the services' Prometheus metrics.
//! - [`shutdown`]: the SIGTERM / ctrl-c signal every service stops on.
//! - [`wire`]: every message format between two fleet programs (output topics, the answer to
//!   `POST /events`, `GET /stats`, registry nodes), one type per format for writer and reader.
//! - `producer` (feature `kafka`): the idempotent Kafka producer that is replaced when the
//!   broker loses its state.
//! - `rounds` (feature `kafka`): records handed to the producer one round at a time, so
//!   librdkafka's idempotent producer neither waits on a linger nor spins behind its one request.
//! - `fetch` (feature `kafka`): how a consumer of fleet's topics fetches from Nisshi.

pub mod config;
pub mod event;
#[cfg(feature = "kafka")]
pub mod fetch;
pub mod latency_histogram;
pub mod logging;
#[cfg(feature = "kafka")]
pub mod producer;
pub mod roles;
#[cfg(feature = "kafka")]
pub mod rounds;
pub mod schema;
pub mod settings;
pub mod shutdown;
pub mod vin;
pub mod wire;

pub use event::{EventTime, Position, Sensors, TelemetryEvent, ValidationError};
pub use vin::Vin;
pub use wire::Totals;
