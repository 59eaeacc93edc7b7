//! `fleet`: an infrastructure-as-code orchestrator for a streaming-telemetry stack (ZooKeeper,
//! a Kafka-API broker, PostgreSQL, ingest, consumer, simulated vehicles) on the Docker Engine
//! API, with protocol-level readiness probes.
//!
//! - [`plan`]: the stack as data (containers, dependencies, readiness).
//! - [`images`]: base image, recipes and host-built binaries.
//! - [`docker`]: the private Docker client wrapper and ownership labels.
//! - [`engine`]: converging containers and waiting for readiness.
//! - [`probes`]: ZooKeeper, Kafka, PostgreSQL and HTTP probes.
//! - [`swarm`]: the same plan as Docker Swarm services on several engines.
//! - [`commands`]: one module per subcommand.

pub mod cli;
pub mod closed_stdout;
pub mod commands;
pub mod docker;
pub mod engine;
pub mod images;
pub mod output;
pub mod paths;
pub mod plan;
pub mod probes;
pub mod stack_lock;
pub mod state;
pub mod swarm;
