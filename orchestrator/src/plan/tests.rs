//! The plan's cross-cutting checks (order, labels, hardening, secrets, published ports, the
//! registry) and the fixtures every plan test uses; each service's own checks sit in its
//! module.

use super::*;
use crate::docker::ContainerSpec;
use crate::images::{ImageSet, Resolved};
use fleet_common::config::Config;

/// The first container of `service` in `plan`.
pub(crate) fn first(plan: &InfraPlan, service: Service) -> &ServicePlan {
    plan.services
        .iter()
        .find(|s| s.service == service)
        .unwrap_or_else(|| panic!("{service:?} is in the plan"))
}

/// A container's environment as `(name, value)` pairs, as the container gets it.
pub(crate) fn env_of(spec: &ContainerSpec) -> Vec<(String, String)> {
    spec.env
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

pub(crate) fn config() -> Config {
    fleet_common::config::load_from_str(
        include_str!("../../../config.master.toml"),
        "config.master.toml",
        Vec::new(),
    )
    .unwrap()
}

pub(crate) fn secrets(password: &str) -> Secrets {
    Secrets {
        postgres_password: password.into(),
        postgres_admin_password: format!("{password}-admin"),
        broker_storage_password: format!("{password}-broker"),
        ingest_tokens: None,
    }
}

pub(crate) fn images() -> ImageSet {
    let r = |n: &str| Resolved {
        reference: format!("fleet/{n}:1"),
        id: format!("sha256:{n}"),
    };
    ImageSet {
        zookeeper: r("zookeeper"),
        broker: r("broker"),
        postgres: r("postgres"),
        runtime: r("runtime"),
    }
}

#[test]
fn waves_respect_dependencies_and_parallelise() {
    let plan = infra_plan(&config(), &images(), &secrets("pw"));
    let waves = waves(&plan.services);
    let position = |s: Service| waves.iter().position(|w| w.contains(&s)).unwrap();
    for s in &plan.services {
        for d in &s.depends_on {
            assert!(
                position(*d) < position(s.service),
                "{:?} before {:?}",
                d,
                s.service
            );
        }
    }
    // ZooKeeper, the broker's storage and PostgreSQL start together, then the brokers.
    assert_eq!(
        waves[0],
        vec![
            Service::Zookeeper,
            Service::BrokerStorage,
            Service::Postgres
        ]
    );
    assert_eq!(waves[1], vec![Service::Broker, Service::BrokerHost]);
    assert_eq!(
        waves.last().unwrap(),
        &vec![Service::Ingest, Service::Consumer]
    );
}

#[test]
fn dependents_are_transitive() {
    let plan = infra_plan(&config(), &images(), &secrets("pw"));
    assert_eq!(
        dependents(&plan.services, &[Service::BrokerStorage]),
        vec![
            Service::Broker,
            Service::BrokerHost,
            Service::Ingest,
            Service::Consumer
        ]
    );
    assert_eq!(
        dependents(&plan.services, &[Service::Broker]),
        vec![Service::Ingest, Service::Consumer]
    );
    assert_eq!(
        dependents(&plan.services, &[Service::Postgres]),
        vec![Service::Consumer]
    );
    assert!(dependents(&plan.services, &[Service::Ingest]).is_empty());
}

#[test]
fn every_container_is_labelled_named_and_on_the_network() {
    let c = config();
    let plan = infra_plan(&c, &images(), &secrets("pw"));
    // One ingest: no balancer.
    assert_eq!(plan.services.len(), Service::ALL.len() - 1);
    for s in &plan.services {
        assert_eq!(s.spec.stack, "fleet");
        assert_eq!(s.spec.name, format!("fleet-{}", s.service.name()));
        assert_eq!(s.spec.network, "fleet-net");
        for p in &s.spec.ports {
            assert_eq!(p.host_ip, "127.0.0.1");
        }
    }
}

#[test]
fn our_services_are_locked_down_and_every_volume_is_declared() {
    let plan = infra_plan(&config(), &images(), &secrets("pw"));
    for s in &plan.services {
        assert!(s.spec.hardening.drop_privileges, "{:?}", s.service);
        assert!(s.spec.hardening.memory_mib > 0 && s.spec.hardening.pids > 0);
        for volume in s.spec.volumes.keys() {
            assert!(
                plan.volumes.iter().any(|(v, _)| v == volume),
                "{volume} undeclared"
            );
        }
    }
    for s in &plan.services {
        assert!(
            s.spec.hardening.read_only,
            "{:?} has a read-only root",
            s.service
        );
        assert!(s.spec.hardening.tmpfs.contains(&"/tmp".to_owned()));
        // Secrets are placed before start: only a volume takes them on a read-only root.
        for file in &s.spec.files {
            assert!(
                s.spec
                    .volumes
                    .values()
                    .any(|target| file.path.starts_with(&format!("{target}/"))),
                "{} of {:?} is not in a volume",
                file.path,
                s.service
            );
        }
    }
}

#[test]
fn replicas_share_a_name_and_the_balancer_holds_the_host_port() {
    let mut c = config();
    c.ingest.replicas = 2;
    c.consumer.replicas = 2;
    let plan = infra_plan(&c, &images(), &secrets("pw"));
    let of = |svc: Service| -> Vec<&ServicePlan> {
        plan.services.iter().filter(|s| s.service == svc).collect()
    };
    let ingest = of(Service::Ingest);
    let names: Vec<&str> = ingest.iter().map(|s| s.instance()).collect();
    assert_eq!(names, ["ingest-0", "ingest-1"]);
    for replica in &ingest {
        assert_eq!(replica.spec.aliases, ["fleet-ingest"]);
        assert_eq!(
            replica.spec.ports[0].host, 0,
            "a free host port per replica"
        );
    }
    let lb = of(Service::IngestBalancer);
    assert_eq!(lb.len(), 1);
    assert_eq!(lb[0].spec.ports[0].host, c.ingest.host_port);
    assert_eq!(
        lb[0].spec.env["BALANCER_BACKENDS"],
        "fleet-ingest-0:8080,fleet-ingest-1:8080"
    );
    let consumers = of(Service::Consumer);
    let ids: Vec<&str> = consumers
        .iter()
        .map(|s| s.spec.env["CONSUMER_INSTANCE_ID"].as_str())
        .collect();
    assert_eq!(ids, ["fleet-consumer-0", "fleet-consumer-1"]);
    for consumer in &consumers {
        assert_eq!(consumer.spec.env["CONSUMER_FETCH_WAIT"], "100ms");
        assert_eq!(consumer.spec.env["CONSUMER_PUBLISH_INTERVAL"], "1s");
    }
    let secrets: Vec<&String> = consumers
        .iter()
        .flat_map(|s| s.spec.volumes.keys())
        .collect();
    assert_eq!(
        secrets,
        ["fleet-consumer-0-secrets", "fleet-consumer-1-secrets"]
    );
    for v in secrets {
        assert!(plan.volumes.iter().any(|(name, _)| name == v));
    }
    let waves = waves(&plan.services);
    assert_eq!(
        waves[waves.len() - 2],
        vec![Service::Ingest, Service::Consumer]
    );
    assert_eq!(waves.last().unwrap(), &vec![Service::IngestBalancer]);
    // Vehicles reach the replicas through the shared name.
    let fleet = fleet_plan(&c, &images().runtime, 1, 1, false, None);
    assert_eq!(
        fleet[0].env["VEHICLE_INGEST_URL"],
        "http://fleet-ingest:8080/events"
    );
}

#[test]
fn password_travels_as_a_file_never_in_env() {
    let plan = infra_plan(&config(), &images(), &secrets("s3cret-pw"));
    for s in &plan.services {
        for (k, v) in &s.spec.env {
            assert!(
                !v.contains("s3cret-pw"),
                "{k} of {:?} holds the password",
                s.service
            );
        }
    }
    let pg = first(&plan, Service::Postgres);
    assert_eq!(pg.spec.files[0].content, b"s3cret-pw");
    assert_eq!(pg.spec.files[0].mode, 0o400);
}

#[test]
fn the_admin_password_reaches_fleets_schema_step_only() {
    let plan = infra_plan(&config(), &images(), &secrets("s3cret-pw"));
    for s in &plan.services {
        assert!(
            s.spec.env.values().all(|v| !v.contains("s3cret-pw-admin"))
                && s.spec.files.iter().all(|f| f.content != b"s3cret-pw-admin"),
            "{:?} holds the admin password",
            s.service
        );
    }
    let pg = first(&plan, Service::Postgres);
    assert!(matches!(
        &pg.readiness,
        Readiness::PostgresQuery { admin_password: Some(p), .. } if p.0 == "s3cret-pw-admin"
    ));
    assert!(!format!("{:?}", pg.readiness).contains("s3cret"));
}

#[test]
fn published_ports_come_from_config() {
    let c = config();
    let plan = infra_plan(&c, &images(), &secrets("pw"));
    let host_port = |svc: Service| {
        plan.services
            .iter()
            .find(|s| s.service == svc)
            .unwrap()
            .spec
            .ports[0]
            .host
    };
    assert_eq!(host_port(Service::Zookeeper), c.zookeeper.host_port);
    assert_eq!(host_port(Service::BrokerHost), c.broker.host_port);
    assert_eq!(host_port(Service::Postgres), c.postgres.host_port);
    assert_eq!(host_port(Service::Ingest), c.ingest.host_port);
}

#[test]
fn our_containers_join_the_registry_under_their_own_names() {
    let c = config();
    let plan = infra_plan(&c, &images(), &secrets("pw"));
    let mut specs: Vec<&ContainerSpec> = plan
        .services
        .iter()
        .filter(|s| matches!(s.service, Service::Ingest | Service::Consumer))
        .map(|s| &s.spec)
        .collect();
    let vehicles = fleet_plan(&c, &images().runtime, 4, 2, false, None);
    specs.extend(&vehicles);
    assert_eq!(specs.len(), 4);
    for spec in specs {
        assert_eq!(spec.env["ZOOKEEPER_CONNECT"], "fleet-zookeeper:2181");
        assert_eq!(spec.env["REGISTRY_STACK"], "fleet");
        assert_eq!(spec.env["REGISTRY_MEMBER_ID"], spec.name);
        assert!(
            spec.env["REGISTRY_ADDRESS"].starts_with(&format!("http://{}:", spec.name)),
            "{}",
            spec.name
        );
    }
    let zk = first(&plan, Service::Zookeeper);
    assert!(!zk.spec.env.contains_key("ZOOKEEPER_CONNECT"));
}
