//! The consumer, the input topic's reader that stores batches in PostgreSQL: its replicas, each
//! started with the [`ConsumerSettings`] the config gives it (its own id and index), the
//! PostgreSQL password as a secret.

use fleet_common::settings::ports::CONSUMER_PORT;
use fleet_common::settings::{ConsumerSettings, ConsumerWiring};

use super::builder::{Builder, secret_file, secrets_volume, set_env};
use super::secrets::{RUNTIME_UID, SECRETS_DIR};
use super::{PASSWORD_PATH, Secrets, Service, ServicePlan, broker, readiness, registry};
use crate::images::ImageSet;

/// The settings of consumer replica `index`.
pub(super) fn settings(b: &Builder<'_>, index: u32) -> ConsumerSettings {
    ConsumerSettings::from_config(
        b.config,
        ConsumerWiring {
            kafka_brokers: broker::bootstrap(b),
            pg_host: b.host(Service::Postgres),
            pg_password_file: PASSWORD_PATH.into(),
            // A fixed instance id and index per replica: the index places the replica's share
            // of the partitions while the registry is not reachable.
            instance_id: format!("{}-consumer-{index}", b.config.stack.name),
            replica_index: index,
        },
    )
}

/// The consumer replicas.
pub(super) fn plan(b: &Builder<'_>, images: &ImageSet, secrets: &Secrets) -> Vec<ServicePlan> {
    let config = b.config;
    let service = Service::Consumer;
    let mut consumer = b.service_spec(service, &images.runtime);
    consumer.cmd = vec!["consumer".into()];
    Builder::read_only(&mut consumer);
    // The password file is placed before start; a read-only root accepts it only in a volume.
    consumer.volumes.insert(
        secrets_volume(&config.stack.name, service),
        SECRETS_DIR.into(),
    );
    // Published on a free host port, for readiness and metrics.
    b.publish(&mut consumer, CONSUMER_PORT, 0);
    consumer.files.push(secret_file(
        PASSWORD_PATH,
        RUNTIME_UID,
        secrets.postgres_password.as_bytes(),
    ));
    let consumer = ServicePlan {
        service,
        spec: consumer,
        depends_on: vec![Service::Broker, Service::BrokerHost, Service::Postgres],
        readiness: readiness(config, service),
        timeout: config.consumer.start_timeout,
    };
    let mut replicas = b.replicate(consumer, config.consumer.replicas, |spec, i| {
        set_env(spec, settings(b, i).to_env());
    });
    for replica in &mut replicas {
        registry::join(b, &mut replica.spec, CONSUMER_PORT);
    }
    replicas
}

#[cfg(test)]
mod tests {
    use fleet_common::settings::{RegistrySettings, from_env_pairs};

    use super::*;
    use crate::plan::infra_plan;
    use crate::plan::tests::{config, env_of, images, secrets};

    /// What a consumer container reads: its settings and the registry's.
    #[derive(Debug, clap::Args)]
    struct ConsumerEnv {
        #[command(flatten)]
        settings: ConsumerSettings,
        #[command(flatten)]
        registry: RegistrySettings,
    }

    #[test]
    fn the_plans_environment_is_what_each_replica_parses_from_the_config() {
        let mut c = config();
        c.consumer.replicas = 2;
        c.consumer.fetch_wait = std::time::Duration::from_millis(250);
        c.consumer.publish_interval = std::time::Duration::ZERO;
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        let b = Builder::new(&c);
        let replicas: Vec<&ServicePlan> = plan
            .services
            .iter()
            .filter(|p| p.service == Service::Consumer)
            .collect();
        assert_eq!(replicas.len(), 2);
        for (i, replica) in (0..).zip(replicas) {
            let parsed: ConsumerEnv = from_env_pairs(env_of(&replica.spec)).unwrap();
            assert_eq!(parsed.settings, settings(&b, i));
            assert_eq!(parsed.settings.replica_index, i);
            assert_eq!(parsed.settings.fetch_wait, c.consumer.fetch_wait);
            assert_eq!(
                parsed.settings.publish_interval,
                c.consumer.publish_interval
            );
            assert_eq!(
                parsed.settings.batch_max_records,
                c.consumer.batch_max_records
            );
            parsed.settings.validate().unwrap();
            assert_eq!(
                parsed.registry.registry_address,
                Some(format!("http://{}:{CONSUMER_PORT}", replica.spec.name))
            );
        }
    }
}
