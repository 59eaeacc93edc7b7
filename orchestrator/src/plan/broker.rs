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

use super::{
    BROKER_PORT, Builder, POSTGRES_UID, Readiness, Redacted, Secrets, Service, ServicePlan,
    apply_upstream, readiness, secrets_volume, volume_name,
};
use crate::docker::SecretFile;
use crate::images::ImageSet;

/// Where a broker finds its storage's password.
pub const BROKER_STORAGE_PASSWORD_PATH: &str = "/run/secrets/broker-storage-password";
/// The broker storage's role and database.
pub const BROKER_STORAGE_DB: &str = "nisshi";
/// uid of the `nisshi` user of the broker image.
const BROKER_UID: u64 = 10002;

/// The in-network bootstrap address of the brokers (`<stack>-broker:9092`).
pub fn bootstrap(b: &Builder<'_>) -> String {
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

    let mut broker = b.spec(Service::Broker.name(), &images.broker);
    Builder::read_only(&mut broker);
    broker.cmd = broker_cmd(config, &format!("tcp://{}", bootstrap(b)));
    // Published on a free host port, for the readiness probe.
    b.publish(&mut broker, BROKER_PORT, 0);
    match config.broker.storage {
        BrokerStorage::Postgres => storage_client(b, &mut broker, secrets),
        BrokerStorage::Sqlite => {
            broker
                .env
                .insert("BROKER_STORAGE".into(), "sqlite://nisshi.db".into());
            broker.volumes.insert(
                volume_name(stack, Service::Broker),
                "/var/lib/nisshi".into(),
            );
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

    let mut host = b.spec(Service::BrokerHost.name(), &images.broker);
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
fn storage_client(b: &Builder<'_>, spec: &mut crate::docker::ContainerSpec, secrets: &Secrets) {
    spec.env.extend([
        (
            "BROKER_STORAGE".to_owned(),
            format!(
                "postgres://{BROKER_STORAGE_DB}@{}:5432/{BROKER_STORAGE_DB}",
                b.host(Service::BrokerStorage)
            ),
        ),
        (
            "BROKER_STORAGE_PASSWORD_FILE".to_owned(),
            BROKER_STORAGE_PASSWORD_PATH.to_owned(),
        ),
    ]);
    // The password file is placed before start; a read-only root accepts it only in a volume,
    // one per container (`<container>-secrets`, which `replicate` renames per replica).
    spec.volumes
        .insert(format!("{}-secrets", spec.name), "/run/secrets".into());
    spec.files.push(SecretFile {
        path: BROKER_STORAGE_PASSWORD_PATH.into(),
        uid: BROKER_UID,
        mode: 0o400,
        content: secrets.broker_storage_password.as_bytes().to_vec(),
    });
}

/// The broker's own PostgreSQL server, from the postgres recipe: its own volume and password.
fn storage(b: &Builder<'_>, images: &ImageSet, secrets: &Secrets) -> ServicePlan {
    let stack = &b.config.stack.name;
    let service = Service::BrokerStorage;
    let mut pg = b.spec(service.name(), &images.postgres);
    Builder::read_only(&mut pg);
    pg.hardening.tmpfs.push(format!(
        "/run/postgresql:uid={POSTGRES_UID},gid={POSTGRES_UID}"
    ));
    // Published on a free host port, for the readiness probe.
    b.publish(&mut pg, 5432, 0);
    pg.volumes.insert(
        volume_name(stack, service),
        "/var/lib/postgresql/data".into(),
    );
    pg.volumes
        .insert(secrets_volume(stack, service), "/run/secrets".into());
    pg.env.extend([
        ("POSTGRES_USER".to_owned(), BROKER_STORAGE_DB.to_owned()),
        ("POSTGRES_DB".to_owned(), BROKER_STORAGE_DB.to_owned()),
        (
            "POSTGRES_PASSWORD_FILE".to_owned(),
            BROKER_STORAGE_PASSWORD_PATH.to_owned(),
        ),
    ]);
    pg.files.push(SecretFile {
        path: BROKER_STORAGE_PASSWORD_PATH.into(),
        uid: POSTGRES_UID,
        mode: 0o400,
        content: secrets.broker_storage_password.as_bytes().to_vec(),
    });
    ServicePlan {
        service,
        spec: pg,
        depends_on: vec![],
        readiness: Readiness::PostgresStorage {
            port: 5432,
            user: BROKER_STORAGE_DB.into(),
            database: BROKER_STORAGE_DB.into(),
            password: Redacted(secrets.broker_storage_password.clone()),
        },
        timeout: b.config.postgres.start_timeout,
    }
}
