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
//! - [`shutdown`]: the SIGTERM / ctrl-c signal every service stops on.
//! - [`totals`]: the sums of a vehicle container's delivery books (`GET /stats`).
//! - `producer` (feature `kafka`): the idempotent Kafka producer that is replaced when the
//!   broker loses its state.

pub mod config;
pub mod event;
pub mod logging;
#[cfg(feature = "kafka")]
pub mod producer;
pub mod roles;
pub mod schema;
pub mod settings;
pub mod shutdown;
pub mod totals;
pub mod vin;

pub use event::{EventTime, Position, Sensors, TelemetryEvent, ValidationError};
pub use totals::Totals;
pub use vin::Vin;
