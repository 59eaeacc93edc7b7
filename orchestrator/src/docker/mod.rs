//! A thin private wrapper around bollard: every call the orchestrator makes, with errors that
//! name the operation and the target, and the labels that mark what `fleet` owns.

mod client;
pub mod connect;
mod labels;
mod spec;

pub use client::{ContainerInfo, Docker, DockerError};
pub use labels::{LABEL_CONFIG_HASH, LABEL_SERVICE, LABEL_STACK, stack_filter};
pub use spec::{ContainerSpec, Hardening, PortMap, SecretFile, hex as hex_digest};
