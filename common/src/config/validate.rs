//! Checks of values that are well-typed but unacceptable. Each failure names the dotted key.

use std::collections::BTreeMap;

use super::model::Config;

type Failure = (String, String);

/// The request, connection and dashboard limits of `[ingest]`.
fn validate_ingest_limits(i: &super::model::IngestConfig) -> Result<(), Failure> {
    use std::time::Duration;
    if i.request_timeout <= i.produce_timeout || i.request_timeout > Duration::from_secs(3_600) {
        fail(
            "ingest.request_timeout",
            "must exceed ingest.produce_timeout (a request waits for the broker within it) and be at most 1h",
        )?;
    }
    if i.producer_linger > Duration::from_secs(1) {
        fail("ingest.producer_linger", "must be at most 1s")?;
    }
    for (key, count) in [
        ("ingest.max_concurrent_requests", i.max_concurrent_requests),
        ("ingest.max_connections", i.max_connections),
    ] {
        if !(1..=100_000).contains(&count) {
            fail(key, "must be between 1 and 100000")?;
        }
    }
    if i.dashboard_vehicle_ttl < Duration::from_secs(60)
        || i.dashboard_vehicle_ttl > Duration::from_secs(30 * 86_400)
    {
        fail(
            "ingest.dashboard_vehicle_ttl",
            "must lie between 1m and 30days",
        )?;
    }
    if !(1..=100_000).contains(&i.dashboard_map_vehicles) {
        fail(
            "ingest.dashboard_map_vehicles",
            "must be between 1 and 100000",
        )?;
    }
    if !(65_536..=67_108_864).contains(&i.dashboard_max_message_bytes) {
        fail(
            "ingest.dashboard_max_message_bytes",
            "must be between 65536 (64 KiB) and 67108864 (64 MiB)",
        )?;
    }
    Ok(())
}

fn fail(key: &str, message: impl Into<String>) -> Result<(), Failure> {
    Err((key.to_owned(), message.into()))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_topic(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 249
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Returns the first failure as (key, message).
pub(super) fn validate(c: &Config) -> Result<(), Failure> {
    super::target::validate(&c.target)?;
    if !is_dns_label(&c.stack.name) {
        fail(
            "stack.name",
            format!(
                "{:?} must be 1-32 lower-case letters, digits or '-', starting with a letter or digit",
                c.stack.name
            ),
        )?;
    }
    if c.stack.bind_address.parse::<std::net::IpAddr>().is_err() {
        fail(
            "stack.bind_address",
            format!("{:?} is not an IP address", c.stack.bind_address),
        )?;
    }
    let mut ports: BTreeMap<u16, &str> = BTreeMap::new();
    for (key, port) in [
        ("zookeeper.host_port", c.zookeeper.host_port),
        ("broker.host_port", c.broker.host_port),
        ("postgres.host_port", c.postgres.host_port),
        ("ingest.host_port", c.ingest.host_port),
    ] {
        if port == 0 {
            fail(key, "must be a port between 1 and 65535")?;
        }
        if let Some(other) = ports.insert(port, key) {
            fail(key, format!("port {port} is already used by `{other}`"))?;
        }
    }
    let topics = [
        ("broker.topic", &c.broker.topic),
        ("broker.dlq_topic", &c.broker.dlq_topic),
        ("broker.summary_topic", &c.broker.summary_topic),
        ("broker.metrics_topic", &c.broker.metrics_topic),
        ("broker.histograms_topic", &c.broker.histograms_topic),
    ];
    for (i, (key, topic)) in topics.iter().enumerate() {
        if !is_topic(topic) {
            fail(key, format!("{topic:?} is not a valid topic name"))?;
        }
        if let Some((other, _)) = topics[..i].iter().find(|(_, t)| t == topic) {
            fail(key, format!("{topic:?} is already the topic of `{other}`"))?;
        }
    }
    if !(1..=1000).contains(&c.broker.partitions) {
        fail("broker.partitions", "must be between 1 and 1000")?;
    }
    let storage_feature = match c.broker.storage {
        super::model::BrokerStorage::Postgres => "postgres",
        super::model::BrokerStorage::Sqlite => "libsql",
    };
    if !c
        .broker
        .nisshi_features
        .iter()
        .any(|f| f == storage_feature)
    {
        fail(
            "broker.nisshi_features",
            format!(
                "`broker.storage` is {:?}, which needs the Nisshi feature {storage_feature:?}",
                c.broker.storage
            ),
        )?;
    }
    if !(1..=16).contains(&c.broker.replicas) {
        fail("broker.replicas", "must be between 1 and 16")?;
    }
    if c.broker.replicas > 1 && c.broker.storage != super::model::BrokerStorage::Postgres {
        fail(
            "broker.replicas",
            "several brokers share one storage: set `broker.storage = \"postgres\"` (sqlite is one broker's file)",
        )?;
    }
    for (key, ident) in [
        ("postgres.database", &c.postgres.database),
        ("postgres.user", &c.postgres.user),
    ] {
        if ident.is_empty()
            || ident.len() > 63
            || !ident.starts_with(|ch: char| ch.is_ascii_lowercase())
            || !ident
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_')
        {
            fail(
                key,
                format!("{ident:?} must be a lower-case SQL identifier"),
            )?;
        }
    }
    if [crate::roles::ADMIN_ROLE, crate::roles::SUPERUSER_ROLE].contains(&c.postgres.user.as_str())
    {
        fail(
            "postgres.user",
            format!(
                "{:?} is reserved: `{}` owns the schema and `{}` is the superuser; the application role needs a name of its own",
                c.postgres.user,
                crate::roles::ADMIN_ROLE,
                crate::roles::SUPERUSER_ROLE
            ),
        )?;
    }
    if c.ingest.max_body_bytes < 1024 {
        fail("ingest.max_body_bytes", "must be at least 1024")?;
    }
    validate_ingest_limits(&c.ingest)?;
    if !(1..=100_000).contains(&c.ingest.max_records_per_request) {
        fail(
            "ingest.max_records_per_request",
            "must be between 1 and 100000",
        )?;
    }
    for (key, replicas) in [
        ("ingest.replicas", c.ingest.replicas),
        ("consumer.replicas", c.consumer.replicas),
    ] {
        if !(1..=16).contains(&replicas) {
            fail(key, "must be between 1 and 16")?;
        }
    }
    if !super::model::FETCH_WAIT_RANGE.contains(&c.consumer.fetch_wait) {
        fail("consumer.fetch_wait", "must lie between 10ms and 10s")?;
    }
    if c.consumer.replicas > c.broker.partitions as u32 {
        fail(
            "consumer.replicas",
            format!(
                "{} replicas would leave some idle: the topic has {} partition(s) (`broker.partitions`)",
                c.consumer.replicas, c.broker.partitions
            ),
        )?;
    }
    let session = c.zookeeper.session_timeout;
    if session < std::time::Duration::from_secs(4) || session > std::time::Duration::from_secs(40) {
        fail(
            "zookeeper.session_timeout",
            format!(
                "{}s is outside 4s..40s, the range ZooKeeper grants with its tick of 2s",
                session.as_secs_f64()
            ),
        )?;
    }
    if c.vehicles.report_interval.is_zero() {
        fail("vehicles.report_interval", "must be longer than 0")?;
    }
    if !(0.0..=0.5).contains(&c.vehicles.report_jitter) {
        fail("vehicles.report_jitter", "must be within [0, 0.5]")?;
    }
    for (key, rate) in [
        ("vehicles.fault_spike_rate", c.vehicles.fault_spike_rate),
        ("vehicles.fault_stuck_rate", c.vehicles.fault_stuck_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            fail(key, "must be a probability within [0, 1]")?;
        }
    }
    if c.vehicles.per_container == 0 {
        fail("vehicles.per_container", "must be at least 1")?;
    }
    if !(-90.0..=90.0).contains(&c.vehicles.origin_lat) {
        fail("vehicles.origin_lat", "must be within [-90, 90]")?;
    }
    if !(-180.0..=180.0).contains(&c.vehicles.origin_lon) {
        fail("vehicles.origin_lon", "must be within [-180, 180]")?;
    }
    if !(c.vehicles.area_radius_m > 0.0 && c.vehicles.area_radius_m <= 100_000.0) {
        fail("vehicles.area_radius_m", "must be within (0, 100000]")?;
    }
    if c.vehicles.catalogue.is_empty() {
        fail("vehicles.catalogue", "needs at least one make")?;
    }
    for entry in &c.vehicles.catalogue {
        let name_ok = |s: &str| !s.trim().is_empty() && s.chars().count() <= 20;
        if !name_ok(&entry.make) {
            fail(
                "vehicles.catalogue.make",
                format!("{:?} must be 1-20 characters", entry.make),
            )?;
        }
        if entry.models.is_empty() || !entry.models.iter().all(|m| name_ok(m)) {
            fail(
                "vehicles.catalogue.models",
                format!(
                    "models of {:?} must be 1-20 characters each, at least one",
                    entry.make
                ),
            )?;
        }
        if entry.wmi.len() != 3
            || crate::vin::Vin::parse(&crate::vin::Vin::from_serial(&entry.wmi, 0).to_string())
                .is_err()
            || !entry
                .wmi
                .chars()
                .all(|ch| ch.is_ascii_digit() || (ch.is_ascii_uppercase() && !"IOQ".contains(ch)))
        {
            fail(
                "vehicles.catalogue.wmi",
                format!(
                    "{:?} must be 3 VIN characters (digits, A-Z except I, O, Q)",
                    entry.wmi
                ),
            )?;
        }
    }
    Ok(())
}
