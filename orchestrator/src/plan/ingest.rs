//! ingest, the HTTP front door: its replicas (and the balancer in front of several), each
//! started with the [`IngestSettings`] the config gives it, the tokens file as a secret.

use fleet_common::settings::ports::INGEST_PORT;
use fleet_common::settings::{IngestSettings, IngestWiring};

use super::builder::{Builder, secret_file, secrets_volume, set_env};
use super::secrets::{RUNTIME_UID, SECRETS_DIR};
use super::{Secrets, Service, ServicePlan, TOKENS_PATH, balancer, broker, readiness, registry};
use crate::images::ImageSet;

/// The settings every ingest replica runs with.
pub(super) fn settings(b: &Builder<'_>, secrets: &Secrets) -> IngestSettings {
    IngestSettings::from_config(
        b.config,
        IngestWiring {
            kafka_brokers: broker::bootstrap(b),
            tokens_file: secrets.ingest_tokens.as_ref().map(|_| TOKENS_PATH.into()),
        },
    )
}

/// The ingest replicas, after the balancer that holds their host port when there are several.
pub(super) fn plan(b: &Builder<'_>, images: &ImageSet, secrets: &Secrets) -> Vec<ServicePlan> {
    let config = b.config;
    let service = Service::Ingest;
    let mut ingest = b.service_spec(service, &images.runtime);
    ingest.cmd = vec!["ingest".into()];
    Builder::read_only(&mut ingest);
    b.publish(&mut ingest, INGEST_PORT, config.ingest.host_port);
    set_env(&mut ingest, settings(b, secrets).to_env());
    if let Some(tokens) = &secrets.ingest_tokens {
        ingest.volumes.insert(
            secrets_volume(&config.stack.name, service),
            SECRETS_DIR.into(),
        );
        ingest
            .files
            .push(secret_file(TOKENS_PATH, RUNTIME_UID, tokens));
    }
    let ingest = ServicePlan {
        service,
        spec: ingest,
        // The host listener creates the topics once it is ready.
        depends_on: vec![Service::Broker, Service::BrokerHost],
        readiness: readiness(config, service),
        timeout: config.ingest.start_timeout,
    };
    let mut replicas = b.replicate(ingest, config.ingest.replicas, |_, _| {});
    for replica in &mut replicas {
        registry::join(b, &mut replica.spec, INGEST_PORT);
    }
    let mut services = Vec::new();
    if replicas.len() > 1 {
        services.push(balancer::plan(b, images, &replicas));
    }
    services.extend(replicas);
    services
}

#[cfg(test)]
mod tests {
    use fleet_common::settings::{RegistrySettings, from_env_pairs};

    use super::*;
    use crate::plan::infra_plan;
    use crate::plan::tests::{config, env_of, first, images, secrets};

    /// What an ingest container reads: its settings and the registry's.
    #[derive(Debug, clap::Args)]
    struct IngestEnv {
        #[command(flatten)]
        settings: IngestSettings,
        #[command(flatten)]
        registry: RegistrySettings,
    }

    #[test]
    fn the_plans_environment_is_what_ingest_parses_from_the_config() {
        let c = config();
        let mut s = secrets("pw");
        s.ingest_tokens = Some(b"1M8GDM9AXKP042788 a-long-enough-token".to_vec());
        let plan = infra_plan(&c, &images(), &s);
        let b = Builder::new(&c);
        for replica in plan
            .services
            .iter()
            .filter(|p| p.service == Service::Ingest)
        {
            let parsed: IngestEnv = from_env_pairs(env_of(&replica.spec)).unwrap();
            assert_eq!(parsed.settings, settings(&b, &s));
            assert_eq!(parsed.settings.max_body_bytes, c.ingest.max_body_bytes);
            assert_eq!(parsed.settings.map_radius_m, c.vehicles.area_radius_m);
            assert_eq!(parsed.registry.registry_stack, c.stack.name);
            assert_eq!(
                parsed.registry.registry_member_id.as_deref(),
                Some(replica.spec.name.as_str())
            );
        }
    }

    #[test]
    fn ingest_gets_its_limits_as_env() {
        let mut c = config();
        c.ingest.request_timeout = std::time::Duration::from_secs(45);
        c.ingest.max_connections = 77;
        c.ingest.dashboard_requires_token = false;
        c.ingest.producer_linger = std::time::Duration::from_micros(500);
        c.ingest.producer_max_in_flight = 2;
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        let ingest = first(&plan, Service::Ingest);
        let env = &ingest.spec.env;
        assert_eq!(env["INGEST_REQUEST_TIMEOUT"], "45s");
        assert_eq!(env["INGEST_MAX_CONCURRENT_REQUESTS"], "512");
        assert_eq!(env["INGEST_MAX_CONNECTIONS"], "77");
        assert_eq!(env["INGEST_PRODUCER_LINGER"], "500us");
        assert_eq!(env["INGEST_PRODUCER_MAX_IN_FLIGHT"], "2");
        assert_eq!(env["INGEST_DASHBOARD_REQUIRES_TOKEN"], "false");
        assert_eq!(env["INGEST_DASHBOARD_VEHICLE_TTL"], "1h");
        assert_eq!(env["INGEST_DASHBOARD_MAP_VEHICLES"], "5000");
        assert_eq!(env["INGEST_DASHBOARD_MAX_MESSAGE_BYTES"], "262144");
    }

    #[test]
    fn tokens_travel_as_a_file_in_a_secrets_volume() {
        let mut s = secrets("pw");
        s.ingest_tokens = Some(b"1M8GDM9AXKP042788 a-long-enough-token".to_vec());
        let plan = infra_plan(&config(), &images(), &s);
        let ingest = first(&plan, Service::Ingest);
        assert_eq!(ingest.spec.env["INGEST_TOKENS_FILE"], TOKENS_PATH);
        assert_eq!(ingest.spec.files[0].path, TOKENS_PATH);
        assert!(
            plan.volumes
                .iter()
                .any(|(v, _)| v == "fleet-ingest-secrets")
        );
        assert!(
            !ingest
                .spec
                .env
                .values()
                .any(|v| v.contains("a-long-enough-token"))
        );
        let without = infra_plan(&config(), &images(), &secrets("pw"));
        assert!(
            !without
                .volumes
                .iter()
                .any(|(v, _)| v == "fleet-ingest-secrets")
        );
    }
}
