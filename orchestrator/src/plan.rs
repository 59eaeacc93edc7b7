//! The launch plan as data: which containers a stack has, what each depends on, and how each is
//! known to be ready. Built from the config and the resolved images without touching Docker,
//! so that it is unit-tested.
//!
//! One module per service builds its containers (as testcontainers has one `Image` per
//! service); our own programs get their environment from their settings struct in
//! `fleet_common::settings` (`to_env()`), the same struct they parse. This module only orders
//! the services.

mod balancer;
mod broker;
mod builder;
mod consumer;
mod ingest;
mod model;
mod order;
mod postgres;
mod readiness;
mod registry;
mod registry_auth;
mod secrets;
mod swarm;
#[cfg(test)]
pub(crate) mod tests;
mod vehicle;
mod zookeeper;

pub use broker::{BROKER_STORAGE_DB, BROKER_STORAGE_PASSWORD_PATH};
pub use builder::{container_name, network_name};
pub use fleet_common::settings::ports::{
    BROKER_PORT, CONSUMER_PORT, INGEST_PORT, POSTGRES_PORT, VEHICLE_PORT, ZOOKEEPER_PORT,
};
pub use model::{InfraPlan, Service, ServicePlan, VEHICLE_SERVICE};
pub use order::{dependents, waves};
pub use readiness::{Readiness, readiness};
pub use registry_auth::{ZOOKEEPER_AUTH_PATH, protect_member, protect_registry};
pub use secrets::{PASSWORD_PATH, Redacted, Secrets, TOKENS_PATH};
pub use swarm::{PINNED, for_swarm};
pub use vehicle::fleet_plan;

use fleet_common::config::Config;

use crate::images::ImageSet;

/// The plan for `config` with `images` and the stack's `secrets`: ZooKeeper, the broker tier,
/// PostgreSQL, ingest (behind a balancer when replicated) and the consumer, in this order.
pub fn infra_plan(config: &Config, images: &ImageSet, secrets: &Secrets) -> InfraPlan {
    let b = builder::Builder::new(config);
    let mut services = vec![zookeeper::plan(&b, images)];
    services.extend(broker::broker_tier(&b, images, secrets));
    services.push(postgres::plan(&b, images, secrets));
    services.extend(ingest::plan(&b, images, secrets));
    services.extend(consumer::plan(&b, images, secrets));
    InfraPlan::new(b.network, services)
}
