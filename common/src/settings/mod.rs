//! The contract between the orchestrator and our programs: one settings struct per program the
//! plan starts (ingest, consumer, vehicles, the balancer, and the registry settings every
//! member shares). Each field is documented once and read from the environment variable named
//! in [`env`]; `from_config` builds the struct from `config.master.toml`, `validate()` is the one
//! check (run by the service at start and by the config check), and `to_env()` is the
//! environment the plan gives the container. The service parses the same struct with clap
//! (`#[command(flatten)]`).

mod balancer;
mod catalogue;
mod config_check;
mod consumer;
pub mod env;
mod env_pairs;
mod error;
mod ingest;
pub mod limits;
pub mod ports;
mod registry;
mod vehicle;

pub use balancer::BalancerSettings;
pub use catalogue::{Catalogue, DEFAULT_CATALOGUE, parse_catalogue};
pub(crate) use config_check::check_config;
pub use consumer::{ConsumerSettings, ConsumerWiring};
pub use env_pairs::from_env_pairs;
pub use error::SettingsError;
pub use ingest::{IngestSettings, IngestWiring};
pub use limits::{Limit, duration_text};
pub use registry::{RegistrySettings, RegistryWiring};
pub use vehicle::{VehicleSettings, VehicleWiring};

#[cfg(test)]
mod tests;
