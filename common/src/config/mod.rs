//! The typed `config.master.toml`: every name, port, image, count and interval of a stack.
//!
//! Unknown keys and bad values are errors that name the key (and, for the file, its line).
//! Any key can be overridden from the environment as `FLEET_<SECTION>__<KEY>`, for example
//! `FLEET_STACK__NAME=test` or `FLEET_INGEST__HOST_PORT=18080`.

mod batch_max_records;
mod load;
mod model;
mod target;
mod validate;

pub use load::{ConfigError, ENV_PREFIX, load, load_from_str};
pub use model::*;
pub use target::{EngineConfig, NodeRole, SwarmConfig, SwarmNodeConfig, TargetConfig, TargetKind};
