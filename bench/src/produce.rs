//! A measured produce loop: fresh valid telemetry events (the same JSON ingest writes, about
//! 340 bytes, keyed by VIN over 1,000 vehicles) produced as fast as acknowledgements allow for
//! a fixed time, with at most a given number of records in flight; the rate covers the whole
//! time including the wait for the last acknowledgement.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use chrono::Utc;
use fleet_common::{EventTime, TelemetryEvent, Vin};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use uuid::Uuid;

/// Producer settings of a run, as stated in the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settings {
    /// Tuned for throughput: acks=all, idempotent, linger 10 ms, batches up to 1 MB / 10,000
    /// records, 5 requests in flight per connection.
    Tuned,
    /// The settings ingest's producer runs with (`fleet_common::producer`): what ingest itself
    /// can reach at most, the realistic baseline for `ingest-bench`.
    Ingest,
}

impl Settings {
    /// The librdkafka settings, for the results.
    pub fn describe(self) -> &'static str {
        match self {
            Settings::Tuned => {
                "acks=all, enable.idempotence=true, linger.ms=10, batch.size=1000000, batch.num.messages=10000, max.in.flight=5"
            }
            Settings::Ingest => "ingest's producer (fleet_common::producer::settings)",
        }
    }

    /// A producer with these settings.
    pub fn producer(self, bootstrap: &str, client_id: &str) -> anyhow::Result<FutureProducer> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", bootstrap)
            .set("client.id", client_id);
        match self {
            Settings::Tuned => {
                config
                    .set("acks", "all")
                    .set("enable.idempotence", "true")
                    .set("linger.ms", "10")
                    .set("batch.size", "1000000")
                    .set("batch.num.messages", "10000")
                    .set("max.in.flight.requests.per.connection", "5")
                    .set("queue.buffering.max.messages", "200000")
                    .set("message.timeout.ms", "60000");
            }
            Settings::Ingest => {
                fleet_common::producer::apply_settings(&mut config);
            }
        }
        config.create().context("creating the producer")
    }
}

/// What one produce run measured.
#[derive(Debug, Clone)]
pub struct ProduceRun {
    /// Records the broker acknowledged.
    pub acked: usize,
    /// Records that failed.
    pub failed: usize,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
    /// Per-record time from queueing to acknowledgement, sorted.
    pub latencies: Vec<Duration>,
}

impl ProduceRun {
    /// Acknowledged records per second.
    pub fn rate(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64()
    }

    /// The `p` quantile (0..1) of the acknowledgement latency.
    pub fn latency(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[i]
    }
}

/// A fresh valid event of vehicle `serial`, event time now.
pub fn event(serial: u64, seq: u64) -> TelemetryEvent {
    TelemetryEvent::example(
        Uuid::new_v4(),
        Vin::from_serial("YV1", serial),
        seq,
        EventTime(Utc::now()),
    )
}

type Delivered = (
    Instant,
    Result<
        rdkafka::producer::future_producer::OwnedDeliveryResult,
        futures::channel::oneshot::Canceled,
    >,
);

fn tally(result: Delivered, run: &mut ProduceRun) {
    let (queued_at, delivery) = result;
    match delivery {
        Ok(Ok(_)) => {
            run.acked += 1;
            run.latencies.push(queued_at.elapsed());
        }
        _ => run.failed += 1,
    }
}

/// Produces fresh events of vehicles `first_serial..first_serial+1000` to `topic` for
/// `duration` with at most `in_flight` records in flight, then waits for every queued record.
pub async fn produce_for(
    producer: &FutureProducer,
    topic: &str,
    duration: Duration,
    in_flight: usize,
    first_serial: u64,
) -> anyhow::Result<ProduceRun> {
    // Warm up: metadata and producer id, one acknowledged record.
    let first = event(first_serial, 0);
    let payload = serde_json::to_vec(&first)?;
    producer
        .send(
            FutureRecord::to(topic)
                .key(first.vin.as_str())
                .payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .context("first record")?;

    let mut pending = FuturesUnordered::new();
    let mut run = ProduceRun {
        acked: 0,
        failed: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    let start = Instant::now();
    let end = start + duration;
    let mut seq = 1;
    let vehicles = 1_000;
    while Instant::now() < end {
        if pending.len() >= in_flight {
            if let Some(result) = pending.next().await {
                tally(result, &mut run);
            }
            continue;
        }
        let e = event(first_serial + seq % vehicles, seq / vehicles);
        seq += 1;
        let payload = serde_json::to_vec(&e)?;
        let record = FutureRecord::to(topic)
            .key(e.vin.as_str())
            .payload(&payload);
        match producer.send_result(record) {
            Ok(delivery) => {
                let queued_at = Instant::now();
                pending.push(async move { (queued_at, delivery.await) });
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                match pending.next().await {
                    Some(result) => tally(result, &mut run),
                    None => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
            Err((e, _)) => bail!("producing: {e}"),
        }
        // Let deliveries complete between sends.
        while let Some(Some(result)) = futures::FutureExt::now_or_never(pending.next()) {
            tally(result, &mut run);
        }
    }
    while let Some(result) = pending.next().await {
        tally(result, &mut run);
    }
    run.elapsed = start.elapsed();
    producer
        .flush(Duration::from_secs(30))
        .context("flushing the producer")?;
    run.latencies.sort();
    Ok(run)
}
