//! Kafka, PostgreSQL and Docker from the host, for the tests of the consumer against a real
//! stack: events, an acknowledged producer, watermarks, the stored offsets and the wait until
//! the consumer has stored everything produced.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use fleet_common::{EventTime, TelemetryEvent, Vin};
use fleet_orchestrator::probes;
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::consumer::BaseConsumer;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::Headers as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use uuid::Uuid;

use super::TestStack;

/// Input topic (`[broker] topic`).
pub const TOPIC: &str = "telemetry";
/// The consumer's group (`[consumer] group`), also its key in `consumer_offsets`.
pub const GROUP: &str = "fleet-consumer";
/// How long the consumer may take to catch up after a disturbance.
pub const CATCH_UP: Duration = Duration::from_secs(180);

/// A valid event of vehicle `serial` (its VIN is the record key), event time now.
pub fn event(serial: u64, seq: u64) -> TelemetryEvent {
    TelemetryEvent::example(
        Uuid::new_v4(),
        Vin::from_serial("YV1", serial),
        seq,
        EventTime(Utc::now()),
    )
}

/// Runs `docker args...` and asserts success; returns stdout.
pub async fn docker(args: &[&str]) -> String {
    let output = tokio::process::Command::new("docker")
        .args(args)
        .output()
        .await
        .expect("the docker CLI runs");
    eprintln!(
        "$ docker {} -> {}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "docker {} failed", args.join(" "));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A counter from the consumer's `/metrics`.
pub async fn metric(http: &reqwest::Client, base: &str, name: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics:\n{text}"))
        .trim()
        .parse()
        .expect("a numeric counter")
}

/// An idempotent acks=all producer on the host (records never time out in librdkafka, as in
/// the services, since timed-out idempotent records wedge Tansu 0.6.0).
pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "0")
        .create()
        .expect("producer")
}

/// Produces one record and waits for the broker's acknowledgement: `(partition, offset)`.
pub async fn send(producer: &FutureProducer, key: &str, payload: &[u8]) -> (i32, i64) {
    let record = FutureRecord::to(TOPIC).key(key).payload(payload);
    let delivered = tokio::time::timeout(
        Duration::from_secs(60),
        producer.send(record, Duration::from_secs(60)),
    )
    .await
    .expect("the broker acknowledges within 60 s")
    .unwrap_or_else(|(e, _)| panic!("producing from the host: {e}"));
    (delivered.partition, delivered.offset)
}

/// Produces the events and returns their ids, all acknowledged.
pub async fn send_events(producer: &FutureProducer, events: &[TelemetryEvent]) -> Vec<Uuid> {
    let sends = events.iter().map(|e| {
        let payload = serde_json::to_vec(e).expect("an event serializes");
        async move { send(producer, e.vin.as_str(), &payload).await }
    });
    futures::future::join_all(sends).await;
    events.iter().map(|e| e.event_id).collect()
}

/// A host reader of the broker (own group, nothing committed).
pub fn reader(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("host consumer")
}

/// The high watermark of every partition of `topic` (the orchestrator's probe), retried for a
/// while after a restart.
pub async fn end_offsets(bootstrap: &str, topic: &str) -> BTreeMap<i32, i64> {
    let started = Instant::now();
    loop {
        let (b, t) = (bootstrap.to_owned(), topic.to_owned());
        let attempt =
            tokio::task::spawn_blocking(move || probes::partition_watermarks(&b, &t)).await;
        match attempt.expect("watermark task") {
            Ok(ends) if !ends.is_empty() => return ends.into_iter().collect(),
            other => {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "no watermarks of {topic} in 60 s: {other:?}"
                );
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// A record read from the host: key, value and headers.
#[derive(Debug)]
pub struct Received {
    /// Its key.
    pub key: Option<Vec<u8>>,
    /// Its value.
    pub payload: Option<Vec<u8>>,
    /// Its headers, values as text.
    pub headers: BTreeMap<String, String>,
}

/// Every record of `topic` up to its end offsets now, read from the host (own group, nothing
/// committed), each partition in offset order.
pub async fn read_topic(bootstrap: &str, topic: &str) -> Vec<Received> {
    let ends = end_offsets(bootstrap, topic).await;
    let consumer = reader(bootstrap, &format!("test-reader-{}", Uuid::new_v4()));
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut tpl = rdkafka::TopicPartitionList::new();
        let mut remaining: BTreeMap<i32, i64> = BTreeMap::new();
        for (&partition, &high) in &ends {
            if high > 0 {
                tpl.add_partition_offset(&topic, partition, rdkafka::Offset::Beginning)
                    .expect("partition offset");
                remaining.insert(partition, high);
            }
        }
        consumer.assign(&tpl).expect("assign");
        let mut records = Vec::new();
        let started = Instant::now();
        while !remaining.is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{topic} not read to its end in 60 s; left: {remaining:?}"
            );
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            let message = message.unwrap_or_else(|e| panic!("reading {topic}: {e}"));
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let value = h.value.map(String::from_utf8_lossy).unwrap_or_default();
                            (h.key.to_owned(), value.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            records.push(Received {
                key: message.key().map(<[u8]>::to_vec),
                payload: message.payload().map(<[u8]>::to_vec),
                headers,
            });
            if remaining
                .get(&message.partition())
                .is_some_and(|high| message.offset() + 1 >= *high)
            {
                remaining.remove(&message.partition());
            }
        }
        records
    })
    .await
    .expect("topic reader task")
}

/// Rows in `diag`.
pub async fn diag_rows(pg: &tokio_postgres::Client) -> i64 {
    pg.query_one("SELECT count(*) FROM diag", &[])
        .await
        .expect("count rows")
        .get(0)
}

/// The consumer's stored next offsets.
pub async fn stored_offsets(stack: &TestStack) -> BTreeMap<i32, i64> {
    stack
        .postgres()
        .await
        .query(
            "SELECT kafka_partition, next_offset FROM consumer_offsets \
             WHERE consumer_group = $1 AND topic = $2",
            &[&GROUP, &TOPIC],
        )
        .await
        .expect("read consumer_offsets")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Waits until `consumer_offsets` holds the topic's end offsets (every partition that has
/// records), i.e. the consumers stored everything produced so far; returns them. On timeout
/// prints the logs of `consumers` (service names for `fleet logs`).
pub async fn wait_caught_up(
    stack: &TestStack,
    bootstrap: &str,
    consumers: &[&str],
) -> BTreeMap<i32, i64> {
    let started = Instant::now();
    loop {
        let ends: BTreeMap<i32, i64> = end_offsets(bootstrap, TOPIC)
            .await
            .into_iter()
            .filter(|(_, high)| *high > 0)
            .collect();
        let stored = stored_offsets(stack).await;
        if stored == ends {
            eprintln!("caught up after {:?}: {ends:?}", started.elapsed());
            return ends;
        }
        if started.elapsed() > CATCH_UP {
            for consumer in consumers {
                stack.fleet(&["logs", consumer, "--tail", "40"]).await;
            }
            panic!(
                "the consumer did not catch up in {CATCH_UP:?}: stored {stored:?}, end {ends:?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
