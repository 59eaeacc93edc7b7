//! The live configuration: the settings a running stack changes without a restart, kept as one
//! JSON document at `/fleet/<stack>/config`. Typed, every key known; `fleet config set` edits it
//! key by key and every member follows it.

use std::time::Duration;

use fleet_common::config::{BatchMaxRecords, Config};
use fleet_common::settings::limits::{self, Bound, Limit};
use serde::{Deserialize, Serialize};

use crate::error::LiveConfigError;

/// The runtime-tunable settings of a stack.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConfig {
    /// Vehicle containers.
    pub vehicles: LiveVehicles,
    /// Ingest replicas.
    pub ingest: LiveIngest,
    /// Consumer replicas.
    pub consumer: LiveConsumer,
    /// Every member's log output.
    pub log: LiveLog,
}

/// Live settings of the vehicles.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveVehicles {
    /// Time between two reports of one vehicle.
    #[serde(with = "humantime_serde")]
    pub report_interval: Duration,
    /// Reports come up to this share of the interval early or late, at random (0 to 0.5).
    pub jitter: f64,
}

/// Live settings of ingest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveIngest {
    /// Events per second one vehicle may send before getting 429; 0 turns the limit off.
    pub rate_limit_per_vin: u32,
}

/// Live settings of the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveConsumer {
    /// Most records in one batch (one transaction); checked while reading.
    pub batch_max_records: BatchMaxRecords,
    /// Longest wait for a batch to fill.
    #[serde(with = "humantime_serde")]
    pub batch_max_wait: Duration,
}

/// Live log settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveLog {
    /// A `tracing` filter: a level (`info`, `debug`, ...) or directives (`info,ingest=debug`).
    pub level: String,
}

/// Every key of the live configuration, as `fleet config set` names them.
pub const KEYS: [&str; 6] = [
    "vehicles.report_interval",
    "vehicles.jitter",
    "ingest.rate_limit_per_vin",
    "consumer.batch_max_records",
    "consumer.batch_max_wait",
    "log.level",
];

impl Default for LiveConfig {
    /// The values of the shipped `config.master.toml`.
    fn default() -> Self {
        Self {
            vehicles: LiveVehicles {
                report_interval: Duration::from_secs(1),
                jitter: 0.05,
            },
            ingest: LiveIngest {
                rate_limit_per_vin: 0,
            },
            consumer: LiveConsumer {
                batch_max_records: BatchMaxRecords::DEFAULT,
                batch_max_wait: Duration::from_millis(1),
            },
            log: LiveLog {
                level: "info".into(),
            },
        }
    }
}

impl LiveConfig {
    /// The live settings as `config` starts them.
    pub fn from_master(config: &Config) -> Self {
        let mut live = Self::default();
        live.vehicles.report_interval = config.vehicles.report_interval;
        live.ingest.rate_limit_per_vin = config.ingest.rate_limit_per_vin;
        live.consumer.batch_max_records = config.consumer.batch_max_records;
        live.consumer.batch_max_wait = config.consumer.batch_max_wait;
        live
    }

    /// Parses and checks a document; errors name the offending key.
    pub fn from_json(data: &[u8]) -> Result<Self, LiveConfigError> {
        let de = &mut serde_json::Deserializer::from_slice(data);
        let live: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            // An unknown key is reported by serde at its parent: name the key itself.
            let message = inner.to_string();
            match unknown_field(&message) {
                Some(field) => LiveConfigError::UnknownKey {
                    key: if path == "." {
                        field
                    } else {
                        format!("{path}.{field}")
                    },
                },
                None => LiveConfigError::Document {
                    key: path,
                    reason: message,
                },
            }
        })?;
        live.check()?;
        Ok(live)
    }

    /// The document as stored.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("the live config serializes")
    }

    /// Every key with its value as text, in [`KEYS`] order.
    pub fn entries(&self) -> Vec<(&'static str, String)> {
        KEYS.iter()
            .map(|k| (*k, self.get(k).expect("every listed key has a value")))
            .collect()
    }

    /// The value of `key` as text, `None` for an unknown key.
    pub fn get(&self, key: &str) -> Option<String> {
        let text = |d: Duration| humantime::format_duration(d).to_string();
        Some(match key {
            "vehicles.report_interval" => text(self.vehicles.report_interval),
            "vehicles.jitter" => self.vehicles.jitter.to_string(),
            "ingest.rate_limit_per_vin" => self.ingest.rate_limit_per_vin.to_string(),
            "consumer.batch_max_records" => self.consumer.batch_max_records.to_string(),
            "consumer.batch_max_wait" => text(self.consumer.batch_max_wait),
            "log.level" => self.log.level.clone(),
            _ => return None,
        })
    }

    /// Sets `key` from text, checking the value; errors name the key.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), LiveConfigError> {
        let bad = |reason: String| LiveConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_owned(),
            reason,
        };
        let duration =
            |value: &str| humantime::parse_duration(value).map_err(|e| bad(e.to_string()));
        let number = |value: &str| {
            value
                .parse::<u32>()
                .map_err(|e| bad(format!("not a whole number: {e}")))
        };
        match key {
            "vehicles.report_interval" => self.vehicles.report_interval = duration(value)?,
            "vehicles.jitter" => {
                self.vehicles.jitter = value
                    .parse::<f64>()
                    .map_err(|e| bad(format!("not a number: {e}")))?
            }
            "ingest.rate_limit_per_vin" => self.ingest.rate_limit_per_vin = number(value)?,
            "consumer.batch_max_records" => {
                self.consumer.batch_max_records = value.parse().map_err(|e| bad(format!("{e}")))?
            }
            "consumer.batch_max_wait" => self.consumer.batch_max_wait = duration(value)?,
            "log.level" => self.log.level = value.trim().to_owned(),
            _ => {
                return Err(LiveConfigError::UnknownKey {
                    key: key.to_owned(),
                });
            }
        }
        self.check_key(key).map_err(|e| match e {
            LiveConfigError::BadValue { key, reason, .. } => LiveConfigError::BadValue {
                key,
                value: value.to_owned(),
                reason,
            },
            other => other,
        })
    }

    /// Applies `KEY=VALUE` assignments in order; the first bad one is the error.
    pub fn apply(&mut self, assignments: &[String]) -> Result<(), LiveConfigError> {
        for assignment in assignments {
            let (key, value) =
                assignment
                    .split_once('=')
                    .ok_or_else(|| LiveConfigError::NotAnAssignment {
                        text: assignment.clone(),
                    })?;
            self.set(key.trim(), value.trim())?;
        }
        Ok(())
    }

    /// Checks every value.
    pub fn check(&self) -> Result<(), LiveConfigError> {
        KEYS.iter().try_for_each(|k| self.check_key(k))
    }

    fn check_key(&self, key: &str) -> Result<(), LiveConfigError> {
        let reason: Option<String> = match key {
            // The same limits as the services' settings.
            "vehicles.report_interval" => {
                outside(limits::REPORT_INTERVAL, self.vehicles.report_interval)
            }
            "vehicles.jitter" => outside(limits::REPORT_JITTER, self.vehicles.jitter),
            "consumer.batch_max_wait" => {
                outside(limits::BATCH_MAX_WAIT, self.consumer.batch_max_wait)
            }
            "log.level" => tracing_subscriber::EnvFilter::builder()
                .parse(&self.log.level)
                .err()
                .map(|e| format!("not a tracing filter: {e}"))
                .or_else(|| {
                    self.log
                        .level
                        .is_empty()
                        .then(|| "must not be empty".to_owned())
                }),
            _ => None,
        };
        match reason {
            Some(reason) => Err(LiveConfigError::BadValue {
                key: key.to_owned(),
                value: self.get(key).unwrap_or_default(),
                reason,
            }),
            None => Ok(()),
        }
    }
}

/// The field named by serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Why `value` lies outside `limit`, if it does.
fn outside<T: Bound>(limit: Limit<T>, value: T) -> Option<String> {
    (!limit.contains(value)).then(|| format!("must lie in {}", limit.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_config_gives_the_starting_values() {
        let config = fleet_common::config::load_from_str(
            include_str!("../../config.master.toml"),
            "config.master.toml",
            Vec::new(),
        )
        .unwrap();
        let live = LiveConfig::from_master(&config);
        assert_eq!(
            live.vehicles.report_interval,
            config.vehicles.report_interval
        );
        assert_eq!(live.consumer.batch_max_wait, config.consumer.batch_max_wait);
        live.check().unwrap();
        assert_eq!(LiveConfig::from_json(&live.to_json()).unwrap(), live);
    }

    #[test]
    fn set_parses_and_checks_each_key() {
        let mut live = LiveConfig::default();
        live.apply(&[
            "vehicles.report_interval=250ms".into(),
            "ingest.rate_limit_per_vin = 20".into(),
            "consumer.batch_max_records=1000".into(),
            "consumer.batch_max_wait=50ms".into(),
            "vehicles.jitter=0.1".into(),
            "log.level=info,ingest=debug".into(),
        ])
        .unwrap();
        assert_eq!(live.vehicles.report_interval, Duration::from_millis(250));
        assert_eq!(live.ingest.rate_limit_per_vin, 20);
        assert_eq!(live.get("consumer.batch_max_records").unwrap(), "1000");
        assert_eq!(live.get("consumer.batch_max_wait").unwrap(), "50ms");
        assert_eq!(live.get("log.level").unwrap(), "info,ingest=debug");
        assert_eq!(live.entries().len(), KEYS.len());
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        for (assignment, needles) in [
            ("vehicles.speed=3", &["vehicles.speed", "unknown"][..]),
            (
                "vehicles.report_interval=soon",
                &["vehicles.report_interval", "soon"],
            ),
            (
                "vehicles.report_interval=1ms",
                &["vehicles.report_interval", "10ms"],
            ),
            ("vehicles.jitter=0.9", &["vehicles.jitter", "0.5"]),
            (
                "consumer.batch_max_records=0",
                &[
                    "consumer.batch_max_records",
                    "0 records is outside [1, 100000]",
                ],
            ),
            (
                "consumer.batch_max_records=-3",
                &["consumer.batch_max_records", "whole number"],
            ),
            (
                "consumer.batch_max_records=200000",
                &[
                    "consumer.batch_max_records",
                    "200000 records is outside [1, 100000]",
                ],
            ),
            (
                "ingest.rate_limit_per_vin=lots",
                &["ingest.rate_limit_per_vin"],
            ),
            (
                "consumer.batch_max_wait=2m",
                &["consumer.batch_max_wait", "60s"],
            ),
            ("log.level=info,=[", &["log.level", "filter"]),
            ("vehicles.report_interval", &["KEY=VALUE"]),
        ] {
            let mut live = LiveConfig::default();
            let err = live
                .apply(&[assignment.to_owned()])
                .unwrap_err()
                .to_string();
            for needle in needles {
                assert!(err.contains(needle), "{assignment}: {err}");
            }
        }
    }

    /// The error for the default document changed by `edit`.
    fn refused(edit: impl Fn(&mut serde_json::Value)) -> String {
        let mut doc: serde_json::Value =
            serde_json::from_slice(&LiveConfig::default().to_json()).unwrap();
        edit(&mut doc);
        LiveConfig::from_json(doc.to_string().as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn documents_with_unknown_or_bad_keys_are_refused_by_name() {
        let err = refused(|doc| doc["ingest"]["burst"] = 3.into());
        assert!(err.contains("ingest.burst"), "{err}");
        let err = refused(|doc| doc["vehicles"]["report_interval"] = "5 parsecs".into());
        assert!(err.contains("vehicles.report_interval"), "{err}");
        let err = refused(|doc| doc["vehicles"]["report_interval"] = "1ms".into());
        assert!(err.contains("vehicles.report_interval"), "{err}");
        let err = refused(|doc| doc["consumer"]["batch_max_records"] = 200_000.into());
        let expected = BatchMaxRecords::new(200_000).unwrap_err().to_string();
        assert!(
            err.contains("consumer.batch_max_records") && err.contains(&expected),
            "{err}"
        );
        let err = refused(|doc| doc["log"] = serde_json::json!({}));
        assert!(err.contains("log"), "{err}");
    }
}
