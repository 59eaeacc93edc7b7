//! The vehicle containers of `launch-fleet`: blocks of simulated vehicles, each container
//! started with the [`VehicleSettings`] the config gives it and its block.

use std::time::Duration;

use fleet_common::settings::ports::{INGEST_PORT, VEHICLE_PORT};
use fleet_common::settings::{VehicleSettings, VehicleWiring};

use super::builder::{Builder, container_name, set_env};
use super::model::VEHICLE_LIMITS;
use super::{Service, VEHICLE_SERVICE, registry};
use crate::docker::ContainerSpec;
use crate::images::Resolved;
use fleet_common::config::Config;

/// How `launch-fleet` runs the vehicles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    /// Whether they post the old client's form.
    legacy_form: bool,
    /// How long they report; `None`: until stopped.
    duration: Option<Duration>,
}

/// The settings of the container simulating `count` vehicles from `first`.
fn settings(b: &Builder<'_>, first: u32, count: u32, run: Run) -> VehicleSettings {
    VehicleSettings::from_config(
        b.config,
        VehicleWiring {
            ingest_url: format!("http://{}:{INGEST_PORT}/events", b.host(Service::Ingest)),
            count: count.into(),
            first_index: first.into(),
            legacy_form: run.legacy_form,
            duration: run.duration,
        },
    )
}

/// The vehicle containers for `num_vehicles`, `per_container` vehicles each; with
/// `legacy_form` they post the old client's form-encoded events.
pub fn fleet_plan(
    config: &Config,
    runtime: &Resolved,
    num_vehicles: u32,
    per_container: u32,
    legacy_form: bool,
    duration: Option<Duration>,
) -> Vec<ContainerSpec> {
    let b = Builder::new(config);
    let run = Run {
        legacy_form,
        duration,
    };
    let containers = num_vehicles.div_ceil(per_container);
    (0..containers)
        .map(|j| {
            let first = j * per_container;
            let count = per_container.min(num_vehicles - first);
            let mut spec = b.spec(VEHICLE_SERVICE, VEHICLE_LIMITS, runtime);
            spec.name = container_name(&config.stack.name, &format!("{VEHICLE_SERVICE}-{j}"));
            spec.cmd = vec!["vehicle".into()];
            Builder::read_only(&mut spec);
            b.publish(&mut spec, VEHICLE_PORT, 0);
            set_env(&mut spec, settings(&b, first, count, run).to_env());
            registry::join(&b, &mut spec, VEHICLE_PORT);
            spec
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use fleet_common::settings::{RegistrySettings, from_env_pairs};

    use super::*;
    use crate::plan::tests::{config, env_of, images};

    /// What a vehicle container reads: its settings and the registry's.
    #[derive(Debug, clap::Args)]
    struct VehicleEnv {
        #[command(flatten)]
        settings: VehicleSettings,
        #[command(flatten)]
        registry: RegistrySettings,
    }

    #[test]
    fn the_plans_environment_is_what_each_container_parses_from_the_config() {
        let mut c = config();
        c.vehicles.origin_lat = -33.9;
        c.vehicles.report_jitter = 0.2;
        let run = Run {
            legacy_form: true,
            duration: Some(Duration::from_secs(90)),
        };
        let specs = fleet_plan(&c, &images().runtime, 5, 2, true, run.duration);
        let b = Builder::new(&c);
        for (j, spec) in (0..).zip(&specs) {
            let parsed: VehicleEnv = from_env_pairs(env_of(spec)).unwrap();
            let (first, count) = (j * 2, 2.min(5 - j * 2));
            assert_eq!(parsed.settings, settings(&b, first, count, run));
            assert_eq!(parsed.settings.origin_lat, -33.9);
            assert_eq!(parsed.settings.catalogue.0, c.vehicles.catalogue);
            parsed.settings.validate().unwrap();
            assert_eq!(
                parsed.registry.zookeeper_connect.as_deref(),
                Some("fleet-zookeeper:2181")
            );
        }
    }

    #[test]
    fn fleet_plan_splits_vehicles_over_containers() {
        let c = config();
        let specs = fleet_plan(&c, &images().runtime, 10, 4, false, None);
        assert_eq!(specs.len(), 3);
        let counts: Vec<&str> = specs
            .iter()
            .map(|s| s.env["VEHICLE_COUNT"].as_str())
            .collect();
        assert_eq!(counts, ["4", "4", "2"]);
        let firsts: Vec<&str> = specs
            .iter()
            .map(|s| s.env["VEHICLE_FIRST_INDEX"].as_str())
            .collect();
        assert_eq!(firsts, ["0", "4", "8"]);
        assert!(specs.iter().all(|s| s.service == VEHICLE_SERVICE));
        assert_eq!(specs[2].name, "fleet-vehicle-2");
        assert_eq!(specs[0].env["VEHICLE_LEGACY_FORM"], "false");
        assert!(
            specs
                .iter()
                .all(|s| !s.env.contains_key("VEHICLE_DURATION")),
            "without a duration the vehicles report until stopped"
        );
    }

    #[test]
    fn fleet_plan_passes_the_duration_to_every_container() {
        let specs = fleet_plan(
            &config(),
            &images().runtime,
            5,
            2,
            false,
            Some(Duration::from_secs(90)),
        );
        assert_eq!(specs.len(), 3);
        assert!(specs.iter().all(|s| s.env["VEHICLE_DURATION"] == "1m 30s"));
    }

    #[test]
    fn fleet_plan_passes_jitter_faults_and_the_legacy_flag() {
        let mut c = config();
        c.vehicles.report_jitter = 0.2;
        c.vehicles.fault_spike_rate = 0.01;
        c.vehicles.fault_stuck_rate = 0.002;
        c.vehicles.fault_stuck_duration = std::time::Duration::from_secs(45);
        let spec = &fleet_plan(&c, &images().runtime, 1, 1, true, None)[0];
        assert_eq!(spec.env["VEHICLE_REPORT_JITTER"], "0.2");
        assert_eq!(spec.env["VEHICLE_FAULT_SPIKE_RATE"], "0.01");
        assert_eq!(spec.env["VEHICLE_FAULT_STUCK_RATE"], "0.002");
        assert_eq!(spec.env["VEHICLE_FAULT_STUCK_DURATION"], "45s");
        assert_eq!(spec.env["VEHICLE_LEGACY_FORM"], "true");
    }
}
