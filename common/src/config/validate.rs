//! Checks of values that are well-typed but unacceptable. Each failure names the dotted key.
//! What a service reads is checked by that service's settings (`crate::settings`), the same
//! `validate()` the service runs at start; this file checks what only the stack needs.

use std::collections::BTreeMap;

use super::model::Config;

type Failure = (String, String);

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

/// A lower-case PostgreSQL name of at most 63 bytes: a letter, then letters, digits, `_` and
/// the characters in `also`.
fn is_lower_identifier(s: &str, also: &[char]) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|ch: char| ch.is_ascii_lowercase())
        && s.chars().all(|ch| {
            ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || also.contains(&ch)
        })
}

/// PostgreSQL settings fleet sets itself: the stack reaches the servers through them.
const OWNED_SERVER_SETTINGS: [&str; 7] = [
    "listen_addresses",
    "port",
    "unix_socket_directories",
    "data_directory",
    "config_file",
    "hba_file",
    "ident_file",
];

/// `postgres.server_settings`: names PostgreSQL could know (lower case, `_`, and `.` for an
/// extension's), values that fit on a command line, and none of the settings fleet owns.
fn check_server_settings(
    settings: &BTreeMap<String, super::model::ServerSetting>,
) -> Result<(), Failure> {
    for (name, value) in settings {
        let key = format!("postgres.server_settings.{name}");
        if !is_lower_identifier(name, &['.']) {
            fail(
                &key,
                format!("{name:?} is not a PostgreSQL setting name (lower case, digits, `_`, `.`)"),
            )?;
        }
        if OWNED_SERVER_SETTINGS.contains(&name.as_str()) {
            fail(
                &key,
                "fleet sets this one itself: the stack reaches the server through it",
            )?;
        }
        let text = value.to_string();
        if text.trim().is_empty() || text.contains(['\0', '\n', '\r']) {
            fail(
                &key,
                format!("{text:?} is not a value: give a non-empty single line"),
            )?;
        }
        if name == "shared_buffers" {
            let limit = super::model::POSTGRES_MEMORY_MIB as f64 * 1024.0 * 1024.0;
            match shared_buffers_bytes(&text) {
                None => fail(
                    &key,
                    format!(
                        "{text:?} is not a size: give one like \"256MB\" (units B, kB, MB, GB, TB) or a number of 8 kB blocks"
                    ),
                )?,
                Some(bytes) if bytes > limit / 2.0 => fail(
                    &key,
                    format!(
                        "{text:?} is more than half of the server container's {} MiB of memory: the server would be killed for want of memory",
                        super::model::POSTGRES_MEMORY_MIB
                    ),
                )?,
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// `shared_buffers` in bytes: a number with a unit (`B`, `kB`, `MB`, `GB`, `TB`, as PostgreSQL
/// spells them) or without one, in 8 kB blocks.
fn shared_buffers_bytes(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text
        .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit.trim() {
        "" => 8192.0,
        "B" => 1.0,
        "kB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        "TB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(number * factor)
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
        if !is_lower_identifier(ident, &[]) {
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
    check_server_settings(&c.postgres.server_settings)?;
    crate::settings::check_config(c)?;
    if !(1..=16).contains(&c.ingest.replicas) {
        fail("ingest.replicas", "must be between 1 and 16")?;
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
    if c.vehicles.per_container == 0 {
        fail("vehicles.per_container", "must be at least 1")?;
    }
    Ok(())
}
