//! The TCP round-robin balancer that holds ingest's host port in front of its replicas, started
//! with [`BalancerSettings`].

use fleet_common::settings::BalancerSettings;
use fleet_common::settings::ports::INGEST_PORT;

use super::builder::{Builder, set_env};
use super::{Service, ServicePlan, readiness};
use crate::images::ImageSet;

/// The balancer in front of `replicas` (ingest's), on ingest's host port.
pub(super) fn plan(b: &Builder<'_>, images: &ImageSet, replicas: &[ServicePlan]) -> ServicePlan {
    let service = Service::IngestBalancer;
    let mut spec = b.service_spec(service, &images.runtime);
    spec.cmd = vec!["balancer".into()];
    Builder::read_only(&mut spec);
    b.publish(&mut spec, INGEST_PORT, b.config.ingest.host_port);
    let backends = replicas
        .iter()
        .map(|r| format!("{}:{INGEST_PORT}", r.spec.name))
        .collect();
    set_env(&mut spec, BalancerSettings::new(backends).to_env());
    ServicePlan {
        service,
        spec,
        depends_on: vec![Service::Ingest],
        readiness: readiness(b.config, service),
        timeout: b.config.ingest.start_timeout,
    }
}
