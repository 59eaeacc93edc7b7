//! The broker tier of the plan: Nisshi brokers inside the stack network, the host listener, and
//! (with PostgreSQL storage) the PostgreSQL server they share.
//!
//! Nisshi's brokers are stateless over their storage: each one is leader and group coordinator
//! for every partition, so `broker.replicas` brokers answer to one name on the network
//! (`<stack>-broker`) and advertise that name; a client whose broker dies reconnects to the name
//! and reaches another. The host listener is one more broker on the same storage that
//! advertises the published host address, so no proxy stands between the host and the log.
//! With sqlite storage (one broker's file) the host listener is Nisshi's own proxy instead.

use fleet_common::config::{BrokerStorage, Config};
use fleet_common::settings::env::{BROKER_STORAGE, BROKER_STORAGE_PASSWORD_FILE};
use fleet_common::settings::ports::{BROKER_PORT, POSTGRES_PORT};

use super::builder::{Builder, apply_upstream, secret_file, set_env, volume_name};
use super::secrets::SECRETS_DIR;
use super::{Readiness, Redacted, Secrets, Service, ServicePlan, postgres, readiness};
use crate::docker::ContainerSpec;
use crate::images::ImageSet;

/// Where a broker finds its storage's password.
pub const BROKER_STORAGE_PASSWORD_PATH: &str = "/run/secrets/broker-storage-password";
/// The broker storage's role and database.
pub const BROKER_STORAGE_DB: &str = "nisshi";
/// uid of the `nisshi` user of the broker image.
const BROKER_UID: u64 = 10002;
/// The storage of a lone broker: a sqlite file in its working directory.
const SQLITE_STORAGE: &str = "sqlite://nisshi.db";
/// Where a lone broker keeps its sqlite file (its volume).
const SQLITE_DIR: &str = "/var/lib/nisshi";

/// The in-network bootstrap address of the brokers (`<stack>-broker:9092`).
pub(super) fn bootstrap(b: &Builder<'_>) -> String {
    format!("{}:{BROKER_PORT}", b.host(Service::Broker))
}

/// The broker tier's containers: storage (PostgreSQL only), brokers, host listener.
pub(super) fn broker_tier(
    b: &Builder<'_>,
    images: &ImageSet,
    secrets: &Secrets,
) -> Vec<ServicePlan> {
    let config = b.config;
    let stack = &config.stack.name;
    let upstream = config
        .broker
        .upstream
        .as_ref()
        .filter(|u| !u.image.is_empty());
    let mut services = Vec::new();
    let on_postgres = config.broker.storage == BrokerStorage::Postgres && upstream.is_none();
    if on_postgres {
        services.push(storage(b, images, secrets));
    }

    let mut broker = b.service_spec(Service::Broker, &images.broker);
    Builder::read_only(&mut broker);
    broker.cmd = broker_cmd(config, &format!("tcp://{}", bootstrap(b)));
    // Published on a free host port, for the readiness probe.
    b.publish(&mut broker, BROKER_PORT, 0);
    match config.broker.storage {
        BrokerStorage::Postgres => storage_client(b, &mut broker, secrets),
        BrokerStorage::Sqlite => {
            set_env(&mut broker, vec![(BROKER_STORAGE, SQLITE_STORAGE.into())]);
            broker
                .volumes
                .insert(volume_name(stack, Service::Broker), SQLITE_DIR.into());
        }
    }
    apply_upstream(&mut broker, upstream);
    let broker = ServicePlan {
        service: Service::Broker,
        spec: broker,
        // An upstream Kafka in ZooKeeper mode needs ZooKeeper first; Nisshi needs its storage.
        depends_on: match (upstream.is_some(), on_postgres) {
            (true, _) => vec![Service::Zookeeper],
            (false, true) => vec![Service::BrokerStorage],
            (false, false) => vec![],
        },
        readiness: readiness(config, Service::Broker),
        timeout: config.broker.start_timeout,
    };
    services.extend(b.replicate(broker, config.broker.replicas, |_, _| {}));

    let mut host = b.service_spec(Service::BrokerHost, &images.broker);
    Builder::read_only(&mut host);
    let advertised = format!(
        "tcp://{}:{}",
        config.stack.bind_address, config.broker.host_port
    );
    let depends_on = if on_postgres {
        // One more broker on the same storage, advertising the host address.
        host.cmd = broker_cmd(config, &advertised);
        storage_client(b, &mut host, secrets);
        vec![Service::BrokerStorage]
    } else {
        // One broker's sqlite file (or an upstream broker): Nisshi's proxy in front of it.
        host.cmd = vec![
            "proxy".into(),
            "--listener-url".into(),
            format!("tcp://0.0.0.0:{BROKER_PORT}"),
            "--advertised-listener-url".into(),
            advertised,
            "--origin-url".into(),
            format!("tcp://{}", bootstrap(b)),
        ];
        vec![Service::Broker]
    };
    b.publish(&mut host, BROKER_PORT, config.broker.host_port);
    services.push(ServicePlan {
        service: Service::BrokerHost,
        spec: host,
        depends_on,
        readiness: readiness(config, Service::BrokerHost),
        timeout: config.broker.start_timeout,
    });
    services
}

/// `nisshi broker` listening on the broker port and advertising `advertised`.
fn broker_cmd(config: &Config, advertised: &str) -> Vec<String> {
    vec![
        "broker".into(),
        "--cluster-id".into(),
        config.stack.name.clone(),
        "--listener-url".into(),
        format!("tcp://0.0.0.0:{BROKER_PORT}"),
        "--advertised-listener-url".into(),
        advertised.into(),
    ]
}

/// Points a broker at the shared PostgreSQL storage, with the password as a file.
fn storage_client(b: &Builder<'_>, spec: &mut ContainerSpec, secrets: &Secrets) {
    set_env(
        spec,
        vec![
            (
                BROKER_STORAGE,
                format!(
                    "postgres://{BROKER_STORAGE_DB}@{}:{POSTGRES_PORT}/{BROKER_STORAGE_DB}",
                    b.host(Service::BrokerStorage)
                ),
            ),
            (
                BROKER_STORAGE_PASSWORD_FILE,
                BROKER_STORAGE_PASSWORD_PATH.to_owned(),
            ),
        ],
    );
    // The password file is placed before start; a read-only root accepts it only in a volume,
    // one per container (`<container>-secrets`, which `replicate` renames per replica).
    spec.volumes
        .insert(format!("{}-secrets", spec.name), SECRETS_DIR.into());
    spec.files.push(secret_file(
        BROKER_STORAGE_PASSWORD_PATH,
        BROKER_UID,
        secrets.broker_storage_password.as_bytes(),
    ));
}

/// The broker's own PostgreSQL server, from the postgres recipe: its own volume and password.
fn storage(b: &Builder<'_>, images: &ImageSet, secrets: &Secrets) -> ServicePlan {
    let service = Service::BrokerStorage;
    let password = &secrets.broker_storage_password;
    let spec = postgres::server(
        b,
        images,
        service,
        (BROKER_STORAGE_DB, BROKER_STORAGE_DB),
        (BROKER_STORAGE_PASSWORD_PATH, password),
        // Published on a free host port, for the readiness probe.
        0,
    );
    ServicePlan {
        service,
        spec,
        depends_on: vec![],
        readiness: Readiness::PostgresStorage {
            port: POSTGRES_PORT,
            user: BROKER_STORAGE_DB.into(),
            database: BROKER_STORAGE_DB.into(),
            password: Redacted(password.clone()),
        },
        timeout: b.config.postgres.start_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::infra_plan;
    use crate::plan::tests::{config, first, images, secrets};

    #[test]
    fn broker_replicas_share_one_name_and_the_storage() {
        let mut c = config();
        c.broker.replicas = 3;
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        let brokers: Vec<&ServicePlan> = plan
            .services
            .iter()
            .filter(|s| s.service == Service::Broker)
            .collect();
        assert_eq!(brokers.len(), 3);
        for (i, b) in brokers.iter().enumerate() {
            assert_eq!(b.spec.name, format!("fleet-broker-{i}"));
            assert_eq!(b.spec.aliases, vec!["fleet-broker".to_owned()]);
            let advertised = b
                .spec
                .cmd
                .iter()
                .position(|a| a == "--advertised-listener-url");
            assert_eq!(
                b.spec.cmd[advertised.unwrap() + 1],
                "tcp://fleet-broker:9092",
                "every broker advertises the shared name"
            );
            assert_eq!(
                b.spec.env["BROKER_STORAGE"],
                "postgres://nisshi@fleet-broker-storage:5432/nisshi"
            );
            assert!(
                !b.spec.env.values().any(|v| v.contains("pw-broker")),
                "the storage password is a file, never in the environment"
            );
            assert!(
                b.spec
                    .files
                    .iter()
                    .any(|f| f.path == BROKER_STORAGE_PASSWORD_PATH)
            );
            assert!(
                b.spec
                    .volumes
                    .contains_key(&format!("fleet-broker-{i}-secrets")),
                "each broker has a secrets volume of its own: {:?}",
                b.spec.volumes
            );
        }
        let host = first(&plan, Service::BrokerHost);
        assert_eq!(host.spec.cmd[0], "broker", "the host listener is a broker");
        assert!(host.spec.volumes.contains_key("fleet-broker-host-secrets"));
        assert!(
            host.spec
                .cmd
                .contains(&format!("tcp://127.0.0.1:{}", c.broker.host_port))
        );
        assert_eq!(host.depends_on, vec![Service::BrokerStorage]);
    }

    #[test]
    fn sqlite_storage_has_one_broker_and_a_proxy_on_the_host() {
        let mut c = config();
        c.broker.storage = fleet_common::config::BrokerStorage::Sqlite;
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        assert!(
            !plan
                .services
                .iter()
                .any(|s| s.service == Service::BrokerStorage)
        );
        let broker = first(&plan, Service::Broker);
        assert_eq!(broker.spec.env["BROKER_STORAGE"], "sqlite://nisshi.db");
        assert!(broker.spec.volumes.values().any(|v| v == "/var/lib/nisshi"));
        let host = first(&plan, Service::BrokerHost);
        assert_eq!(host.spec.cmd[0], "proxy");
        assert_eq!(host.depends_on, vec![Service::Broker]);
    }
}
