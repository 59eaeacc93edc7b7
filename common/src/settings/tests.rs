//! The contract's own checks: what `config.master.toml` gives each program survives
//! `to_env()` and clap unchanged, and a refused value names its variable.

use clap::{Args, Parser};

use super::env::*;
use super::*;
use crate::config::Config;

fn master() -> Config {
    crate::config::load_from_str(
        include_str!("../../../config.master.toml"),
        "config.master.toml",
        Vec::new(),
    )
    .unwrap()
}

/// `settings` through its environment and back.
fn round_trip<S>(settings: &S, env: Vec<(&'static str, String)>) -> S
where
    S: Args + clap::FromArgMatches + std::fmt::Debug + PartialEq,
{
    let parsed: S = from_env_pairs(env).expect("the environment parses");
    assert_eq!(&parsed, settings);
    parsed
}

#[test]
fn every_settings_struct_survives_its_environment() {
    let c = master();
    let ingest = IngestSettings::from_config(
        &c,
        IngestWiring {
            kafka_brokers: "fleet-broker:9092".into(),
            tokens_file: Some("/run/secrets/ingest-tokens".into()),
        },
    );
    ingest.validate().unwrap();
    round_trip(&ingest, ingest.to_env());
    let consumer = ConsumerSettings::from_config(
        &c,
        ConsumerWiring {
            kafka_brokers: "fleet-broker:9092".into(),
            pg_host: "fleet-postgres".into(),
            pg_password_file: "/run/secrets/postgres-password".into(),
            instance_id: "fleet-consumer-0".into(),
            replica_index: 0,
        },
    );
    consumer.validate().unwrap();
    round_trip(&consumer, consumer.to_env());
    let vehicle = VehicleSettings::from_config(
        &c,
        VehicleWiring {
            ingest_url: "http://fleet-ingest:8080/events".into(),
            count: 7,
            first_index: 14,
            legacy_form: true,
            duration: Some(std::time::Duration::from_secs(90)),
        },
    );
    vehicle.validate().unwrap();
    round_trip(&vehicle, vehicle.to_env());
    let registry = RegistrySettings::from_config(
        &c,
        RegistryWiring {
            zookeeper_connect: "fleet-zookeeper:2181".into(),
            member_id: "fleet-ingest".into(),
            address: "http://fleet-ingest:8080".into(),
        },
    );
    registry.validate().unwrap();
    round_trip(&registry, registry.to_env());
    let balancer = BalancerSettings::new(vec!["a:1".into(), "b:2".into()]);
    balancer.validate().unwrap();
    round_trip(&balancer, balancer.to_env());
}

#[test]
fn an_unknown_variable_is_refused_by_name() {
    let err = from_env_pairs::<BalancerSettings, _, _>([("BALANCER_BACKEND", "a:1")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("BALANCER_BACKEND"), "{err}");
}

#[test]
fn the_parser_and_validate_refuse_the_same_values() {
    #[derive(Debug, Parser)]
    struct Consumer {
        #[command(flatten)]
        settings: ConsumerSettings,
    }
    let base = [
        "c",
        "--kafka-brokers",
        "b:1",
        "--pg-host",
        "h",
        "--pg-user",
        "u",
    ];
    let parse = |extra: &[&str]| Consumer::try_parse_from(base.iter().chain(extra));
    assert!(parse(&["--fetch-wait", "5ms"]).is_err());
    let mut ok = parse(&[]).unwrap().settings;
    ok.fetch_wait = std::time::Duration::from_millis(5);
    let err = ok.validate().unwrap_err();
    assert_eq!(err.var(), CONSUMER_FETCH_WAIT);
    assert!(err.to_string().contains("10ms..10s"), "{err}");
    ok.fetch_wait = std::time::Duration::from_millis(100);
    ok.replica_index = 3;
    let err = ok.validate().unwrap_err().to_string();
    assert!(err.contains(CONSUMER_REPLICA_INDEX), "{err}");
}

#[test]
fn the_config_check_names_the_key_the_setting_comes_from() {
    let mut c = master();
    c.vehicles.origin_lat = 88.0;
    let (key, message) = check_config(&c).unwrap_err();
    assert_eq!(key, "vehicles.origin_lat");
    assert!(message.contains("-85..85"), "{message}");
    let mut c = master();
    c.ingest.request_timeout = c.ingest.produce_timeout;
    let (key, message) = check_config(&c).unwrap_err();
    assert_eq!(key, "ingest.request_timeout");
    assert!(message.contains(INGEST_PRODUCE_TIMEOUT), "{message}");
}
