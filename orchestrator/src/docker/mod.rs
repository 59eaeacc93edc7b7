//! A thin private wrapper around bollard: every call the orchestrator makes to one engine, with
//! errors that name the operation and the target, and the labels that mark what `fleet` owns.
//! (The swarm backend, `crate::swarm`, makes its own calls through [`Docker::bollard`].)

mod client;
pub mod connect;
mod containers;
mod error;
mod images;
mod labels;
mod logs;
mod networks;
mod spec;
mod volumes;

pub use client::Docker;
pub use containers::ContainerInfo;
pub use error::DockerError;
pub(crate) use error::{api, is_not_found};
pub use labels::{LABEL_CONFIG_HASH, LABEL_SERVICE, LABEL_STACK, stack_filter};
pub use spec::{ContainerSpec, Hardening, PortMap, SecretFile, hex as hex_digest};
