//! What changes in the plan when it runs on a swarm rather than one engine. The containers stay
//! the same data; only where the host reaches them moves: the published host ports live on the
//! stateful node (`target.swarm.stateful_node`), so the front door is the balancer pinned there
//! in front of the ingest replicas wherever they run, and the host listener advertises that
//! node's address instead of `stack.bind_address`.

use std::net::IpAddr;

use fleet_common::config::Config;

use super::builder::Builder;
use super::{INGEST_PORT, InfraPlan, Service, balancer};
use crate::images::ImageSet;

/// The services that stay on the stateful node: they hold volumes or the host's ports.
pub const PINNED: [Service; 5] = [
    Service::Zookeeper,
    Service::BrokerStorage,
    Service::BrokerHost,
    Service::Postgres,
    Service::IngestBalancer,
];

/// Adapts `plan` (from [`super::infra_plan`]) to a swarm whose stateful node the host reaches
/// at `stateful`: ingest publishes no fixed port (its replicas may share a node) and the
/// balancer holds `ingest.host_port` even for one replica; the host listener advertises
/// `stateful`.
pub fn for_swarm(plan: &mut InfraPlan, config: &Config, images: &ImageSet, stateful: IpAddr) {
    let b = Builder::new(config);
    for s in plan
        .services
        .iter_mut()
        .filter(|s| s.service == Service::Ingest)
    {
        for port in s
            .spec
            .ports
            .iter_mut()
            .filter(|p| p.container == INGEST_PORT)
        {
            port.host = 0;
        }
    }
    if !plan
        .services
        .iter()
        .any(|s| s.service == Service::IngestBalancer)
    {
        let replicas: Vec<_> = plan
            .services
            .iter()
            .filter(|s| s.service == Service::Ingest)
            .cloned()
            .collect();
        plan.services.push(balancer::plan(&b, images, &replicas));
    }
    let advertised = format!(
        "tcp://{}:{}",
        host_literal(stateful),
        config.broker.host_port
    );
    for s in plan
        .services
        .iter_mut()
        .filter(|s| s.service == Service::BrokerHost)
    {
        if let Some(i) = s
            .spec
            .cmd
            .iter()
            .position(|a| a == "--advertised-listener-url")
            && let Some(value) = s.spec.cmd.get_mut(i + 1)
        {
            *value = advertised.clone();
        }
    }
}

fn host_literal(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::infra_plan;
    use crate::plan::tests::{config, first, images, secrets};

    #[test]
    fn the_front_door_and_the_host_listener_move_to_the_stateful_node() {
        let c = config();
        let mut plan = infra_plan(&c, &images(), &secrets("pw"));
        let node: IpAddr = "192.0.2.10".parse().unwrap();
        for_swarm(&mut plan, &c, &images(), node);
        let ingest = first(&plan, Service::Ingest);
        assert_eq!(ingest.spec.ports[0].host, 0, "ingest holds no fixed port");
        let balancer = plan
            .services
            .iter()
            .find(|s| s.service == Service::IngestBalancer)
            .expect("a balancer even for one replica");
        assert_eq!(balancer.spec.ports[0].host, c.ingest.host_port);
        assert_eq!(
            balancer.spec.env["BALANCER_BACKENDS"],
            format!("fleet-ingest:{INGEST_PORT}")
        );
        let host = first(&plan, Service::BrokerHost);
        assert!(
            host.spec
                .cmd
                .contains(&format!("tcp://192.0.2.10:{}", c.broker.host_port)),
            "{:?}",
            host.spec.cmd
        );
        // Every service is either pinned or spread, and the plan's waves still hold.
        let waves = crate::plan::waves(&plan.services);
        assert_eq!(
            waves.last().unwrap(),
            &vec![Service::IngestBalancer],
            "the balancer after ingest"
        );
    }
}
