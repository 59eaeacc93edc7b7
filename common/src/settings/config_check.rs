//! The config check's view of the services: the settings `config.master.toml` gives each of
//! our programs, checked by that program's own `validate()` (what it checks at start), with a
//! failure named by the config key the setting comes from.

use super::env::*;
use super::{
    ConsumerSettings, ConsumerWiring, IngestSettings, IngestWiring, RegistrySettings,
    RegistryWiring, SettingsError, VehicleSettings, VehicleWiring,
};
use crate::config::Config;

/// The config key each checked setting comes from.
const CONFIG_KEYS: &[(&str, &str)] = &[
    (INGEST_MAX_BODY_BYTES, "ingest.max_body_bytes"),
    (
        INGEST_MAX_RECORDS_PER_REQUEST,
        "ingest.max_records_per_request",
    ),
    (INGEST_PRODUCE_TIMEOUT, "ingest.produce_timeout"),
    (INGEST_PRODUCER_LINGER, "ingest.producer_linger"),
    (
        INGEST_PRODUCER_MAX_IN_FLIGHT,
        "ingest.producer_max_in_flight",
    ),
    (INGEST_REQUEST_TIMEOUT, "ingest.request_timeout"),
    (
        INGEST_MAX_CONCURRENT_REQUESTS,
        "ingest.max_concurrent_requests",
    ),
    (INGEST_MAX_CONNECTIONS, "ingest.max_connections"),
    (INGEST_DASHBOARD_VEHICLE_TTL, "ingest.dashboard_vehicle_ttl"),
    (
        INGEST_DASHBOARD_MAP_VEHICLES,
        "ingest.dashboard_map_vehicles",
    ),
    (
        INGEST_DASHBOARD_MAX_MESSAGE_BYTES,
        "ingest.dashboard_max_message_bytes",
    ),
    (INGEST_MAP_ORIGIN_LAT, "vehicles.origin_lat"),
    (INGEST_MAP_ORIGIN_LON, "vehicles.origin_lon"),
    (INGEST_MAP_RADIUS_M, "vehicles.area_radius_m"),
    (CONSUMER_REPLICAS, "consumer.replicas"),
    (CONSUMER_BATCH_MAX_WAIT, "consumer.batch_max_wait"),
    (CONSUMER_FETCH_WAIT, "consumer.fetch_wait"),
    (CONSUMER_PUBLISH_INTERVAL, "consumer.publish_interval"),
    (VEHICLE_REPORT_INTERVAL, "vehicles.report_interval"),
    (VEHICLE_REPORT_JITTER, "vehicles.report_jitter"),
    (VEHICLE_FAULT_SPIKE_RATE, "vehicles.fault_spike_rate"),
    (VEHICLE_FAULT_STUCK_RATE, "vehicles.fault_stuck_rate"),
    (VEHICLE_CATALOGUE, "vehicles.catalogue"),
    (VEHICLE_ORIGIN_LAT, "vehicles.origin_lat"),
    (VEHICLE_ORIGIN_LON, "vehicles.origin_lon"),
    (VEHICLE_AREA_RADIUS_M, "vehicles.area_radius_m"),
    (ZOOKEEPER_SESSION_TIMEOUT, "zookeeper.session_timeout"),
];

/// Checks the settings `config` gives every service as (key, message) of the first failure.
/// The parts the plan wires (addresses, paths, indices) are stand-ins that always pass.
pub(crate) fn check_config(config: &Config) -> Result<(), (String, String)> {
    check_services(config).map_err(|e| {
        let key = CONFIG_KEYS
            .iter()
            .find(|(var, _)| *var == e.var())
            .map_or(e.var(), |(_, key)| key);
        (
            key.to_owned(),
            format!("{} (the service's {})", e.reason(), e.var()),
        )
    })
}

fn check_services(config: &Config) -> Result<(), SettingsError> {
    let stand_in = "stand-in:1";
    IngestSettings::from_config(
        config,
        IngestWiring {
            kafka_brokers: stand_in.into(),
            tokens_file: None,
        },
    )
    .validate()?;
    ConsumerSettings::from_config(
        config,
        ConsumerWiring {
            kafka_brokers: stand_in.into(),
            pg_host: stand_in.into(),
            pg_password_file: "/dev/null".into(),
            instance_id: stand_in.into(),
            replica_index: 0,
        },
    )
    .validate()?;
    VehicleSettings::from_config(
        config,
        VehicleWiring {
            ingest_url: stand_in.into(),
            count: 1,
            first_index: 0,
            legacy_form: false,
            duration: None,
        },
    )
    .validate()?;
    RegistrySettings::from_config(
        config,
        RegistryWiring {
            zookeeper_connect: stand_in.into(),
            member_id: stand_in.into(),
            address: stand_in.into(),
        },
    )
    .validate()
}
