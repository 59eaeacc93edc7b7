//! Reading the configuration from its file and the environment, with errors that name the key.

use std::path::{Path, PathBuf};

use super::model::Config;
use super::validate;

/// Environment variables with this prefix override keys: `FLEET_SECTION__KEY=value`.
pub const ENV_PREFIX: &str = "FLEET_";

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or does not match the schema (the message has the line).
    #[error("config file {origin}: {message}")]
    Parse {
        /// The file (or other origin).
        origin: String,
        /// toml's message, with line, column and key.
        message: String,
    },
    /// An environment override is malformed or gives a bad value.
    #[error("environment variable {var}: {message}")]
    Env {
        /// The variable.
        var: String,
        /// What is wrong.
        message: String,
    },
    /// A value is well-typed but not acceptable.
    #[error("config {origin}{line}: key `{key}`: {message}", line = line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        origin: String,
        /// The dotted key.
        key: String,
        /// The line of the key in the file, when it is there.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
}

/// Loads `path` and applies the `FLEET_*` overrides from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    load_from_str(&text, &path.display().to_string(), std::env::vars())
}

/// Loads configuration text named `origin` (for messages), with overrides taken from `env`.
pub fn load_from_str(
    text: &str,
    origin: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    // The file alone first, so that its errors carry its line numbers.
    let from_file: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
        origin: origin.to_owned(),
        message: e.to_string().trim_end().to_owned(),
    })?;
    let overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__"))
        .collect();
    let config = if overrides.is_empty() {
        from_file
    } else {
        apply_env(text, &overrides)?
    };
    validate::validate(&config).map_err(|(key, message)| ConfigError::Invalid {
        origin: origin.to_owned(),
        line: locate(text, &key),
        key,
        message,
    })?;
    Ok(config)
}

fn apply_env(text: &str, overrides: &[(String, String)]) -> Result<Config, ConfigError> {
    let mut table: toml::Table = toml::from_str(text).expect("parsed once already");
    for (var, raw) in overrides {
        let path: Vec<String> = var[ENV_PREFIX.len()..]
            .split("__")
            .map(|p| p.to_ascii_lowercase())
            .collect();
        if path.iter().any(String::is_empty) {
            return Err(ConfigError::Env {
                var: var.clone(),
                message: "expected FLEET_SECTION__KEY".into(),
            });
        }
        let value = parse_env_value(raw);
        set_path(&mut table, &path, value).map_err(|message| ConfigError::Env {
            var: var.clone(),
            message,
        })?;
    }
    let vars: Vec<&str> = overrides.iter().map(|(k, _)| k.as_str()).collect();
    Config::deserialize_table(table).map_err(|e| ConfigError::Env {
        var: vars.join(", "),
        message: e.to_string().trim_end().to_owned(),
    })
}

impl Config {
    fn deserialize_table(table: toml::Table) -> Result<Self, toml::de::Error> {
        use serde::Deserialize;
        Config::deserialize(toml::Value::Table(table))
    }
}

/// A value is TOML if it parses as one (`18080`, `true`, `["a"]`, `"1s"`), plain text otherwise.
fn parse_env_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()))
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut current = table;
    for (depth, part) in parents.iter().enumerate() {
        current = current
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("`{}` is not a table", path[..=depth].join(".")))?;
    }
    current.insert(last.clone(), value);
    Ok(())
}

/// The 1-based line where a dotted key is set in `text`, if it is written there plainly.
fn locate(text: &str, key: &str) -> Option<usize> {
    let (section, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let leaf = leaf.split('[').next().unwrap_or(leaf);
    let mut in_section = section.is_empty();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let name = header
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or("")
                .trim();
            in_section = name == section;
            continue;
        }
        if in_section && line.split_once('=').is_some_and(|(k, _)| k.trim() == leaf) {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = include_str!("../../../config.master.toml");

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn master_file_loads() {
        let c = load_from_str(MASTER, "config.master.toml", no_env()).unwrap();
        assert_eq!(c.postgres.database, "av_telemetry");
        assert_eq!(c.consumer.group, "fleet-consumer");
        assert_eq!(c.broker.topic, "telemetry");
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = MASTER.replace("[ingest]\n", "[ingest]\nbogus_key = 1\n");
        let err = load_from_str(&text, "x.toml", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("bogus_key"), "{err}");
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn bad_value_names_key() {
        let text = MASTER.replace("report_interval = \"1s\"", "report_interval = \"soon\"");
        let err = load_from_str(&text, "x.toml", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("report_interval"), "{err}");
    }

    #[test]
    fn env_overrides_apply_and_are_typed() {
        let env = vec![
            ("FLEET_STACK__NAME".to_owned(), "e2e-1".to_owned()),
            ("FLEET_INGEST__HOST_PORT".to_owned(), "18080".to_owned()),
            (
                "FLEET_VEHICLES__REPORT_INTERVAL".to_owned(),
                "250ms".to_owned(),
            ),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ];
        let c = load_from_str(MASTER, "x.toml", env).unwrap();
        assert_eq!(c.stack.name, "e2e-1");
        assert_eq!(c.ingest.host_port, 18080);
        assert_eq!(
            c.vehicles.report_interval,
            std::time::Duration::from_millis(250)
        );
    }

    #[test]
    fn env_override_with_bad_value_names_the_variable() {
        let env = vec![("FLEET_INGEST__HOST_PORT".to_owned(), "lots".to_owned())];
        let err = load_from_str(MASTER, "x.toml", env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("FLEET_INGEST__HOST_PORT"), "{err}");
        assert!(err.contains("host_port"), "{err}");
    }

    #[test]
    fn semantic_errors_name_key_and_line() {
        let text = MASTER.replace("name = \"fleet\"", "name = \"Not Valid!\"");
        let err = load_from_str(&text, "x.toml", no_env()).unwrap_err();
        match err {
            ConfigError::Invalid { key, line, .. } => {
                assert_eq!(key, "stack.name");
                assert!(line.is_some());
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn consumer_fetch_wait_defaults_and_is_checked() {
        let text = MASTER.replace("fetch_wait = \"100ms\"\n", "");
        let c = load_from_str(&text, "x.toml", no_env()).unwrap();
        assert_eq!(c.consumer.fetch_wait, std::time::Duration::from_millis(100));
        for bad in ["5ms", "11s"] {
            let text = MASTER.replace("fetch_wait = \"100ms\"", &format!("fetch_wait = \"{bad}\""));
            match load_from_str(&text, "x.toml", no_env()).unwrap_err() {
                ConfigError::Invalid { key, line, .. } => {
                    assert_eq!(key, "consumer.fetch_wait");
                    assert!(line.is_some());
                }
                other => panic!("unexpected {other}"),
            }
        }
    }

    #[test]
    fn consumer_publish_interval_defaults_and_is_checked() {
        let text = MASTER.replace("publish_interval = \"1s\"\n", "");
        let c = load_from_str(&text, "x.toml", no_env()).unwrap();
        assert_eq!(
            c.consumer.publish_interval,
            std::time::Duration::from_secs(1)
        );
        let text = MASTER.replace("publish_interval = \"1s\"", "publish_interval = \"0s\"");
        let c = load_from_str(&text, "x.toml", no_env()).unwrap();
        assert_eq!(c.consumer.publish_interval, std::time::Duration::ZERO);
        let text = MASTER.replace("publish_interval = \"1s\"", "publish_interval = \"61s\"");
        match load_from_str(&text, "x.toml", no_env()).unwrap_err() {
            ConfigError::Invalid { key, line, .. } => {
                assert_eq!(key, "consumer.publish_interval");
                assert!(line.is_some());
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn ingest_limits_default_and_are_checked() {
        let c = load_from_str(MASTER, "x.toml", no_env()).unwrap();
        assert_eq!(c.ingest.request_timeout, std::time::Duration::from_secs(30));
        assert_eq!(c.ingest.max_concurrent_requests, 512);
        assert_eq!(c.ingest.max_connections, 1024);
        assert!(c.ingest.dashboard_requires_token);
        assert_eq!(c.ingest.dashboard_map_vehicles, 5_000);
        assert_eq!(c.ingest.dashboard_max_message_bytes, 262_144);
        for (var, value, key) in [
            (
                "FLEET_INGEST__REQUEST_TIMEOUT",
                "5s",
                "ingest.request_timeout",
            ),
            (
                "FLEET_INGEST__MAX_CONCURRENT_REQUESTS",
                "0",
                "ingest.max_concurrent_requests",
            ),
            (
                "FLEET_INGEST__MAX_CONNECTIONS",
                "0",
                "ingest.max_connections",
            ),
            (
                "FLEET_INGEST__DASHBOARD_VEHICLE_TTL",
                "10s",
                "ingest.dashboard_vehicle_ttl",
            ),
            (
                "FLEET_INGEST__DASHBOARD_MAP_VEHICLES",
                "0",
                "ingest.dashboard_map_vehicles",
            ),
            (
                "FLEET_INGEST__DASHBOARD_MAX_MESSAGE_BYTES",
                "100",
                "ingest.dashboard_max_message_bytes",
            ),
        ] {
            let env = vec![(var.to_owned(), value.to_owned())];
            match load_from_str(MASTER, "x.toml", env).unwrap_err() {
                ConfigError::Invalid { key: k, .. } => assert_eq!(k, key),
                other => panic!("{var}={value}: unexpected {other}"),
            }
        }
    }

    #[test]
    fn vehicle_jitter_and_fault_rates_are_checked() {
        let c = load_from_str(MASTER, "x.toml", no_env()).unwrap();
        assert_eq!(c.vehicles.report_jitter, 0.05);
        assert!(c.vehicles.fault_spike_rate > 0.0 && c.vehicles.fault_stuck_rate > 0.0);
        for (var, value, key) in [
            (
                "FLEET_VEHICLES__REPORT_JITTER",
                "0.7",
                "vehicles.report_jitter",
            ),
            (
                "FLEET_VEHICLES__FAULT_SPIKE_RATE",
                "1.5",
                "vehicles.fault_spike_rate",
            ),
            (
                "FLEET_VEHICLES__FAULT_STUCK_RATE",
                "-0.1",
                "vehicles.fault_stuck_rate",
            ),
        ] {
            let env = vec![(var.to_owned(), value.to_owned())];
            match load_from_str(MASTER, "x.toml", env).unwrap_err() {
                ConfigError::Invalid { key: k, .. } => assert_eq!(k, key),
                other => panic!("{var}={value}: unexpected {other}"),
            }
        }
    }

    #[test]
    fn the_session_timeout_defaults_to_6s_and_must_lie_in_4s_to_40s() {
        let c = load_from_str(MASTER, "x.toml", no_env()).unwrap();
        assert_eq!(
            c.zookeeper.session_timeout,
            std::time::Duration::from_secs(6)
        );
        // Absent from the file: the default.
        let text: String = MASTER
            .lines()
            .filter(|l| !l.starts_with("session_timeout"))
            .map(|l| format!("{l}\n"))
            .collect();
        let c = load_from_str(&text, "x.toml", no_env()).unwrap();
        assert_eq!(
            c.zookeeper.session_timeout,
            std::time::Duration::from_secs(6)
        );
        for (value, seconds) in [("4s", 4), ("40s", 40), ("15s", 15)] {
            let env = vec![(
                "FLEET_ZOOKEEPER__SESSION_TIMEOUT".to_owned(),
                value.to_owned(),
            )];
            let c = load_from_str(MASTER, "x.toml", env).unwrap();
            assert_eq!(c.zookeeper.session_timeout.as_secs(), seconds, "{value}");
        }
        for value in ["3999ms", "41s", "0s", "2m"] {
            let env = vec![(
                "FLEET_ZOOKEEPER__SESSION_TIMEOUT".to_owned(),
                value.to_owned(),
            )];
            match load_from_str(MASTER, "x.toml", env).unwrap_err() {
                ConfigError::Invalid { key, message, .. } => {
                    assert_eq!(key, "zookeeper.session_timeout", "{value}");
                    assert!(message.contains("4s..40s"), "{value}: {message}");
                }
                other => panic!("{value}: unexpected {other}"),
            }
        }
        let text = MASTER.replace("session_timeout = \"6s\"", "session_timeout = \"1m\"");
        let err = load_from_str(&text, "x.toml", no_env()).unwrap_err();
        assert!(
            matches!(err, ConfigError::Invalid { line: Some(_), .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("zookeeper.session_timeout"),
            "{err}"
        );
    }

    #[test]
    fn batch_max_records_above_the_consumers_limit_is_refused_with_key_and_line() {
        let text = MASTER.replace("batch_max_records = 20000", "batch_max_records = 200000");
        let err = load_from_str(&text, "x.toml", no_env())
            .unwrap_err()
            .to_string();
        let expected = crate::config::BatchMaxRecords::new(200_000)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&expected), "{err}");
        assert!(
            err.contains("batch_max_records = 200000") && err.contains("line"),
            "{err}"
        );
        let env = vec![(
            "FLEET_CONSUMER__BATCH_MAX_RECORDS".to_owned(),
            "200000".to_owned(),
        )];
        let err = load_from_str(MASTER, "x.toml", env)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FLEET_CONSUMER__BATCH_MAX_RECORDS") && err.contains(&expected),
            "{err}"
        );
    }

    #[test]
    fn the_record_cap_per_request_is_read_and_checked() {
        let config = load_from_str(MASTER, "x.toml", no_env()).unwrap();
        assert_eq!(config.ingest.max_records_per_request, 1000);
        let text = MASTER.replace(
            "max_records_per_request = 1000",
            "max_records_per_request = 0",
        );
        match load_from_str(&text, "x.toml", no_env()).unwrap_err() {
            ConfigError::Invalid { key, line, .. } => {
                assert_eq!(key, "ingest.max_records_per_request");
                assert!(line.is_some());
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn the_producer_in_flight_count_is_read_and_checked() {
        let config = load_from_str(MASTER, "x.toml", no_env()).unwrap();
        assert_eq!(config.ingest.producer_max_in_flight, 5);
        let text = MASTER.replace("producer_max_in_flight = 5", "producer_max_in_flight = 6");
        match load_from_str(&text, "x.toml", no_env()).unwrap_err() {
            ConfigError::Invalid { key, line, .. } => {
                assert_eq!(key, "ingest.producer_max_in_flight");
                assert!(line.is_some());
            }
            other => panic!("unexpected {other}"),
        }
    }

    #[test]
    fn postgres_server_settings_are_read_typed_and_checked() {
        use super::super::model::ServerSetting;
        let c = load_from_str(MASTER, "x.toml", no_env()).unwrap();
        assert!(c.postgres.server_settings.is_empty());
        let with = |lines: &str| {
            MASTER.replace(
                "[postgres.server_settings]\n",
                &format!("[postgres.server_settings]\n{lines}\n"),
            )
        };
        let text = with("shared_buffers = \"256MB\"\nmax_connections = 200\nfsync = true");
        let c = load_from_str(&text, "x.toml", no_env()).unwrap();
        let shown: Vec<String> = c
            .postgres
            .server_settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            shown,
            ["fsync=on", "max_connections=200", "shared_buffers=256MB"]
        );
        let env = vec![(
            "FLEET_POSTGRES__SERVER_SETTINGS__WORK_MEM".to_owned(),
            "8MB".to_owned(),
        )];
        let c = load_from_str(MASTER, "x.toml", env).unwrap();
        assert_eq!(
            c.postgres.server_settings["work_mem"],
            ServerSetting::Text("8MB".into())
        );
        for (line, key, says) in [
            ("shared_buffers = \"1GB\"", "shared_buffers", "half"),
            ("shared_buffers = 100000", "shared_buffers", "half"),
            ("shared_buffers = \"lots\"", "shared_buffers", "not a size"),
            ("listen_addresses = \"*\"", "listen_addresses", "fleet sets"),
            ("\"Work-Mem\" = \"8MB\"", "Work-Mem", "setting name"),
            ("work_mem = \"\"", "work_mem", "non-empty"),
        ] {
            match load_from_str(&with(line), "x.toml", no_env()).unwrap_err() {
                ConfigError::Invalid {
                    key: k, message, ..
                } => {
                    assert_eq!(k, format!("postgres.server_settings.{key}"), "{line}");
                    assert!(message.contains(says), "{line}: {message}");
                }
                other => panic!("{line}: unexpected {other}"),
            }
        }
        let err = load_from_str(&with("shared_buffers = \"1GB\""), "x.toml", no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line"), "{err}");
    }

    #[test]
    fn duplicate_ports_are_rejected() {
        let env = vec![("FLEET_INGEST__HOST_PORT".to_owned(), "5432".to_owned())];
        let err = load_from_str(MASTER, "x.toml", env)
            .unwrap_err()
            .to_string();
        assert!(err.contains("host_port"), "{err}");
    }
}
