//! ZooKeeper, the stack's registry: its container, data volume and published client port.

use fleet_common::settings::ports::ZOOKEEPER_PORT;

use super::builder::{Builder, apply_upstream, volume_name};
use super::{Service, ServicePlan, readiness};
use crate::images::ImageSet;

/// Where ZooKeeper keeps its data.
const DATA_DIR: &str = "/var/lib/zookeeper";

/// The ZooKeeper container.
pub(super) fn plan(b: &Builder<'_>, images: &ImageSet) -> ServicePlan {
    let config = b.config;
    let service = Service::Zookeeper;
    let mut zk = b.service_spec(service, &images.zookeeper);
    Builder::read_only(&mut zk);
    b.publish(&mut zk, ZOOKEEPER_PORT, config.zookeeper.host_port);
    zk.volumes
        .insert(volume_name(&config.stack.name, service), DATA_DIR.into());
    apply_upstream(&mut zk, config.zookeeper.upstream.as_ref());
    ServicePlan {
        service,
        spec: zk,
        depends_on: vec![],
        readiness: readiness(config, service),
        timeout: config.zookeeper.start_timeout,
    }
}

/// ZooKeeper's in-network `host:port`, for the registry's members.
pub(super) fn connect(b: &Builder<'_>) -> String {
    format!("{}:{ZOOKEEPER_PORT}", b.host(Service::Zookeeper))
}
