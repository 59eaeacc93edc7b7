//! The backlog: the events produced to the input topic from the host, as fast as the broker
//! acknowledges them, with the partition and offset each one got.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use ingest_bench::events::Events;

/// Where each event landed, by index, and how long producing took.
pub struct Backlog {
    /// `(partition, offset)` of event `i`.
    pub positions: Vec<(i32, i64)>,
    /// From the first send to the last acknowledgement.
    pub elapsed: Duration,
}

/// Produces every event of `events` to `topic` (acks=all, idempotent, at most `in_flight`
/// unacknowledged) and waits for all acknowledgements.
pub async fn produce(
    bootstrap: &str,
    topic: &str,
    events: &Events,
    in_flight: usize,
) -> anyhow::Result<Backlog> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "sink-bench")
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        // Tansu 0.6.0 wedges when an idempotent producer times records out: never time out.
        .set("message.timeout.ms", "0")
        .create()
        .context("creating the producer")?;
    let mut positions = vec![(-1, -1); events.len() as usize];
    let mut pending = FuturesUnordered::new();
    let started = Instant::now();
    let (mut next, mut acked) = (0, 0u64);
    while next < events.len() || !pending.is_empty() {
        if next < events.len() && pending.len() < in_flight {
            let event = events.event(next);
            let payload = serde_json::to_vec(&event)?;
            let record = FutureRecord::to(topic)
                .key(event.vin.as_str())
                .payload(&payload);
            match producer.send_result(record) {
                Ok(delivery) => {
                    let index = next;
                    pending.push(async move { (index, delivery.await) });
                    next += 1;
                    continue;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {}
                Err((e, _)) => bail!("producing event {next}: {e}"),
            }
        }
        let Some((index, delivery)) = pending.next().await else {
            // Queue full with nothing of ours pending: give librdkafka a moment.
            tokio::time::sleep(Duration::from_millis(1)).await;
            continue;
        };
        match delivery {
            Ok(Ok(delivered)) => {
                positions[index as usize] = (delivered.partition, delivered.offset);
            }
            Ok(Err((e, _))) => bail!("event {index} not acknowledged: {e}"),
            Err(_) => bail!("event {index}: the producer dropped its delivery report"),
        }
        acked += 1;
        if acked % 100_000 == 0 {
            eprintln!("sink-bench: {acked} events acknowledged");
        }
    }
    let elapsed = started.elapsed();
    producer
        .flush(Duration::from_secs(30))
        .context("flushing the producer")?;
    Ok(Backlog { positions, elapsed })
}
