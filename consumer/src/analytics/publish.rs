//! Publishing committed aggregates to the output topics: per-vehicle summaries
//! (key = VIN), window metrics (key = `granularity|window_start`) and histograms
//! (key = `sensor|window_start`), JSON values of the types in [`fleet_common::wire::topics`].
//! At-least-once after the commit; the latest value of a key is the current one (a summary
//! also carries its own order: its `events` only grow). Messages are gathered for the publish
//! interval, keeping the latest value of each key ([`super::gathered`]), then produced in
//! rounds ([`fleet_common::rounds`]: one produce request in flight, the next one carrying what
//! waits, without librdkafka's broker thread spinning behind the first); a failure is logged
//! and counted, never waited for by the sink.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use fleet_common::producer::ReplaceableProducer;
use fleet_common::rounds::{self, KafkaHandover, RoundLimits, Rounds};
use fleet_common::wire::WindowMessage;
use serde::Serialize;
use tokio::task::JoinHandle;

use super::gathered::Gathered;
use super::store::Aggregates;
use crate::metrics::Metrics;

/// Where and how long to publish.
#[derive(Debug, Clone)]
pub struct PublishSettings {
    /// Topic of the per-vehicle summaries.
    pub summary_topic: String,
    /// Topic of the window metrics.
    pub metrics_topic: String,
    /// Topic of the sensor histograms.
    pub histograms_topic: String,
    /// How long one interval's deliveries are waited for.
    pub timeout: Duration,
    /// How long messages are gathered before they are produced (only the latest value of each
    /// key is); zero produces each batch's messages at once.
    pub interval: Duration,
}

/// Added to the republish window for the registry's session expiry (seconds by default).
pub const REPUBLISH_MARGIN: Duration = Duration::from_secs(60);

/// One message to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    /// Its topic.
    pub topic: String,
    /// Its key.
    pub key: String,
    /// Its JSON value.
    pub value: String,
}

/// JSON text of a published value. Serializing these types cannot fail (no maps, non-finite
/// floats become `null`); should it ever, the error is published instead of nothing.
fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }).to_string())
}

fn key_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The messages for `aggregates`: summaries, then windows, then histograms.
pub fn messages(aggregates: &Aggregates, settings: &PublishSettings) -> Vec<Outgoing> {
    let mut out = Vec::new();
    for v in &aggregates.vehicles {
        out.push(Outgoing {
            topic: settings.summary_topic.clone(),
            key: v.vin.clone(),
            value: to_json(v),
        });
    }
    for w in &aggregates.windows {
        let value = WindowMessage::of(*w);
        out.push(Outgoing {
            topic: settings.metrics_topic.clone(),
            key: format!("{}|{}", w.granularity.as_str(), key_time(&w.window_start)),
            value: to_json(&value),
        });
    }
    for h in &aggregates.histograms {
        out.push(Outgoing {
            topic: settings.histograms_topic.clone(),
            key: format!("{}|{}", h.sensor, key_time(&h.window_start)),
            value: to_json(h),
        });
    }
    out
}

/// Produces the aggregates of committed batches, every publish interval.
pub struct Publisher {
    shared: Arc<Shared>,
    /// The task producing what was gathered at each interval's end (none without interval).
    flusher: Option<JoinHandle<()>>,
}

/// What the publisher and its flusher share.
struct Shared {
    rounds: Rounds,
    settings: PublishSettings,
    metrics: Arc<Metrics>,
    gathered: Mutex<Gathered>,
}

impl Publisher {
    /// A publisher on its own idempotent producer (see [`crate::kafka::producer_config`]); its
    /// rounds' dispatch loop and, with a publish interval, its flusher start now (in the
    /// current runtime).
    pub fn new(
        producer: ReplaceableProducer,
        settings: PublishSettings,
        metrics: Arc<Metrics>,
    ) -> Self {
        let interval = settings.interval;
        let rounds = Rounds::start(KafkaHandover::new(producer), RoundLimits::default());
        let shared = Arc::new(Shared {
            rounds,
            settings,
            metrics,
            gathered: Mutex::new(Gathered::default()),
        });
        let flusher = (!interval.is_zero()).then(|| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(interval);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    let due = shared.take();
                    if !due.is_empty() {
                        tokio::spawn(shared.send(due));
                    }
                }
            })
        });
        Self { shared, flusher }
    }

    /// Publishes the messages of `aggregates`: gathers them for the interval's end, or, without
    /// interval, queues them now (so batches are published in commit order) and waits for their
    /// deliveries in a background task, bounded by the timeout.
    pub fn publish(&self, aggregates: &Aggregates) {
        if self.flusher.is_none() {
            return self.publish_now(aggregates);
        }
        let outgoing = messages(aggregates, &self.shared.settings);
        let mut gathered = self
            .shared
            .gathered
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut replaced = 0u64;
        for m in outgoing {
            replaced += u64::from(gathered.add(m));
        }
        drop(gathered);
        self.shared.metrics.record_coalesced(replaced);
    }

    /// Queues the messages of `aggregates` now, whatever the interval (summaries read back to
    /// be produced again: they must not wait for the interval's end), and waits for their
    /// deliveries in a background task.
    pub fn publish_now(&self, aggregates: &Aggregates) {
        let outgoing = messages(aggregates, &self.shared.settings);
        if !outgoing.is_empty() {
            tokio::spawn(self.shared.send(outgoing));
        }
    }

    /// How far before the newest stored summary a replica that starts or takes partitions over
    /// produces the summaries again: what its predecessor may have gathered and not produced
    /// (one interval), or queued and not had acknowledged (the timeout), plus
    /// [`REPUBLISH_MARGIN`] for the time the registry takes to notice a replica is gone.
    pub fn republish_window(&self) -> Duration {
        self.shared.settings.interval + self.shared.settings.timeout + REPUBLISH_MARGIN
    }

    /// Stops the flusher, produces what is gathered and waits for it, then for every other
    /// message still unanswered in the rounds (every message reaches the producer through them,
    /// so then librdkafka holds none of ours), each bounded by the timeout.
    pub async fn close(self) {
        if let Some(flusher) = self.flusher {
            flusher.abort();
        }
        let rest = self.shared.take();
        let count = rest.len();
        if count > 0 {
            self.shared.send(rest).await;
        }
        if self
            .shared
            .rounds
            .drained(self.shared.settings.timeout)
            .await
        {
            tracing::debug!(last = count, "analytics publisher closed");
        } else {
            tracing::warn!(
                unanswered = self.shared.rounds.unanswered(),
                "closing the analytics publisher: messages still unacknowledged are lost (the aggregates are stored in PostgreSQL)"
            );
        }
    }
}

impl Shared {
    /// Every gathered message.
    fn take(&self) -> Vec<Outgoing> {
        self.gathered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// Queues `outgoing` for the producer's next rounds now and returns the wait for their
    /// deliveries, bounded by the timeout, which counts and logs the outcome.
    fn send(&self, outgoing: Vec<Outgoing>) -> impl Future<Output = ()> + Send + 'static {
        let deliveries: Vec<_> = outgoing
            .into_iter()
            .map(|m| {
                let answer = self.rounds.send(rounds::Outgoing {
                    topic: m.topic.clone(),
                    key: m.key.into_bytes(),
                    payload: m.value.into_bytes(),
                });
                (m.topic, answer)
            })
            .collect();
        let metrics = self.metrics.clone();
        let timeout = self.settings.timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        async move {
            let waits = deliveries.into_iter().map(|(topic, delivery)| async move {
                match tokio::time::timeout_at(deadline, delivery).await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err(e)) => Err(format!("producing to {topic}: {e}")),
                    Err(_) => Err(format!(
                        "producing to {topic}: no acknowledgement within {timeout:?}"
                    )),
                }
            });
            let results = futures::future::join_all(waits).await;
            let delivered = results.iter().filter(|r| r.is_ok()).count() as u64;
            let failed = results.len() as u64 - delivered;
            metrics.record_published(delivered, failed);
            if let Some(error) = results.into_iter().find_map(Result::err) {
                tracing::warn!(%error, failed, delivered,
                    "publishing analytics failed (the aggregates are stored in PostgreSQL)");
            } else {
                tracing::debug!(delivered, "analytics published");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_common::wire::{
        Bin, Granularity, Histogram, LastPosition, Sensor, VehicleSummary, WindowMetric,
    };

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn settings() -> PublishSettings {
        PublishSettings {
            summary_topic: "telemetry.summary".into(),
            metrics_topic: "telemetry.metrics".into(),
            histograms_topic: "telemetry.histograms".into(),
            timeout: Duration::from_secs(1),
            interval: Duration::ZERO,
        }
    }

    #[test]
    fn every_aggregate_becomes_a_keyed_message() {
        let aggregates = Aggregates {
            vehicles: vec![VehicleSummary {
                vin: "1M8GDM9AXKP042788".into(),
                make: "Volvo".into(),
                model: "XC40".into(),
                first_seen: t("2026-11-21T10:00:00Z"),
                last_seen: t("2026-11-21T10:00:01Z"),
                last_seq: 1,
                events: 2,
                last_position: LastPosition {
                    x: 1.0,
                    y: 2.0,
                    lat: 59.3,
                    lon: 18.0,
                },
                last_speed: 12.5,
            }],
            windows: vec![WindowMetric {
                granularity: Granularity::Second,
                window_start: t("2026-11-21T10:00:01Z"),
                events: 4,
                vehicles: 2,
                speed_sum: 10.0,
            }],
            histograms: vec![Histogram {
                sensor: Sensor::TemperatureC,
                window_start: t("2026-11-21T10:00:00Z"),
                bins: vec![
                    Bin {
                        lower: None,
                        count: 1,
                    },
                    Bin {
                        lower: Some(20.0),
                        count: 3,
                    },
                ],
            }],
            late_dropped: 0,
        };
        let m = messages(&aggregates, &settings());
        let keys: Vec<(&str, &str)> = m
            .iter()
            .map(|m| (m.topic.as_str(), m.key.as_str()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("telemetry.summary", "1M8GDM9AXKP042788"),
                ("telemetry.metrics", "second|2026-11-21T10:00:01Z"),
                ("telemetry.histograms", "temperature_c|2026-11-21T10:00:00Z"),
            ]
        );
        let window: serde_json::Value = serde_json::from_str(&m[1].value).unwrap();
        assert_eq!(window["mean_speed"], 2.5);
        assert_eq!(window["granularity"], "second");
        let hist: serde_json::Value = serde_json::from_str(&m[2].value).unwrap();
        assert_eq!(hist["sensor"], "temperature_c");
        assert_eq!(hist["bins"][0]["lower"], serde_json::Value::Null);
        assert_eq!(hist["bins"][1]["count"], 3);
        let summary: serde_json::Value = serde_json::from_str(&m[0].value).unwrap();
        assert_eq!(summary["last_speed"], 12.5);
    }

    #[test]
    fn nothing_to_publish_for_an_empty_batch() {
        assert!(messages(&Aggregates::default(), &settings()).is_empty());
    }
}
