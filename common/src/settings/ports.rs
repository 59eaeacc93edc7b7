//! The ports our stack's programs listen on inside their containers: the defaults of the
//! services' listen addresses and what the orchestrator's plan publishes and probes.

use std::net::{Ipv4Addr, SocketAddr};

/// ZooKeeper's client port.
pub const ZOOKEEPER_PORT: u16 = 2181;
/// A broker's Kafka port inside the stack network (and the host listener's in its container).
pub const BROKER_PORT: u16 = 9092;
/// PostgreSQL's port (the stack's and the broker storage's).
pub const POSTGRES_PORT: u16 = 5432;
/// ingest's HTTP port (and the balancer's, in front of the ingest replicas).
pub const INGEST_PORT: u16 = 8080;
/// The consumer's HTTP port (`/readyz`, `/metrics`).
pub const CONSUMER_PORT: u16 = 8081;
/// A vehicle container's HTTP port (`/stats`).
pub const VEHICLE_PORT: u16 = 8090;

/// `0.0.0.0:<port>`: listening on every interface of the container.
pub fn listen_on(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
}
