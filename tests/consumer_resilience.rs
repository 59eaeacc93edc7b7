//! The consumer against a real stack (launched by the real `fleet` binary, no vehicles): records
//! are produced from the host through the broker's published port, containers are killed,
//! stopped and started with the `docker` CLI, and every scenario ends with exact counts:
//!
//! - (a) the consumer is killed (`SIGKILL`) while it is storing a stream and started again:
//!   `diag` holds every record produced, once, and `consumer_offsets` the topic's end offsets;
//! - (b) PostgreSQL is stopped for 30 s while records are produced, then started: nothing is
//!   lost, and the consumer's `/readyz` answered 503 meanwhile and 200 afterwards;
//! - (c) poison records (not JSON, and an event with an invalid field) between good ones: both
//!   are in `telemetry.dlq` with the original key and bytes and the reason and origin headers,
//!   and the good records around them are stored;
//! - (d) replay from offset 0 (consumer stopped, its offsets deleted from `consumer_offsets` and
//!   set to 0 in the Kafka group, consumer started): once it has caught up, every table is
//!   identical to its snapshot from before, and the consumer counted every row as a duplicate;
//! - (e) the broker is stopped for 25 s between two streams of records: `/readyz` answered 503
//!   meanwhile, and every record is stored once;
//! - (f) with a 60 s `consumer.publish_interval`, the summaries of stored events are gathered,
//!   not yet in `telemetry.summary`; a graceful stop produces them; after a `SIGKILL` lost the
//!   gathered ones, the next start produces the stored summaries again, so the topic's latest
//!   summary of every vehicle is its `vehicle_summary` row.
//!
//! One stack serves all six, in that order, each a test of its own (`harness = false`, see
//! `support::scenarios`) so that the first failure does not hide the others. The counts are
//! exact over the whole run: each scenario counts its valid records as soon as it produces
//! them, so that the records of a scenario that failed half-way still count for the next ones. The stack is torn
//! down after the last scenario, also on failure.
//!
//! Over 500 lines: one scenario list with the broker, PostgreSQL and `/readyz` readers the
//! scenarios share on their one stack, so they stay in one file.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fleet_common::{TelemetryEvent, Vin};
use rdkafka::consumer::{CommitMode, Consumer};
use support::TestStack;
use support::stream::{
    GROUP, Received, TOPIC, docker, event, metric, producer, read_topic, reader, send, send_events,
};
use uuid::Uuid;

/// Dead-letter topic (`[broker] dlq_topic`).
const DLQ_TOPIC: &str = "telemetry.dlq";
/// The consumer's HTTP port inside its container (published on a free host port).
const CONSUMER_PORT: &str = "8081/tcp";

/// Waits until the consumer stored everything produced so far.
async fn wait_caught_up(stack: &TestStack, bootstrap: &str) -> BTreeMap<i32, i64> {
    support::stream::wait_caught_up(stack, bootstrap, &["consumer"]).await
}

/// The stack's containers and their host endpoints.
struct Containers {
    consumer: String,
    postgres: String,
}

impl Containers {
    fn of(stack: &TestStack) -> Self {
        Self {
            consumer: format!("{}-consumer", stack.name),
            postgres: format!("{}-postgres", stack.name),
        }
    }

    /// `http://127.0.0.1:<port>` of the consumer's endpoints (the host port can change when
    /// the container is started again).
    async fn consumer_http(&self) -> String {
        let out = docker(&["port", &self.consumer, CONSUMER_PORT]).await;
        let address = out
            .lines()
            .find(|l| l.starts_with("127.0.0.1:") || l.starts_with("0.0.0.0:"))
            .unwrap_or_else(|| panic!("no IPv4 host port of the consumer in {out:?}"));
        let port = address.rsplit(':').next().expect("a port");
        format!("http://127.0.0.1:{port}")
    }
}

/// The status of the consumer's `/readyz`, `None` when it does not answer.
async fn readyz(http: &reqwest::Client, base: &str) -> Option<u16> {
    let response = http.get(format!("{base}/readyz")).send().await.ok()?;
    Some(response.status().as_u16())
}

// ---------------------------------------------------------------------------------------------
// Kafka from the host.

/// Every record of `DLQ_TOPIC`, read from the host.
async fn read_dead_letters(bootstrap: &str) -> Vec<Received> {
    read_topic(bootstrap, DLQ_TOPIC).await
}

/// Sets the group's committed offset of every partition of the input topic to 0, from the
/// host, while the consumer is stopped; retries while the broker still counts the stopped
/// member in the group. Checks the result.
async fn reset_group_offsets(bootstrap: &str, partitions: Vec<i32>) {
    let consumer = reader(bootstrap, GROUP);
    tokio::task::spawn_blocking(move || {
        let mut tpl = rdkafka::TopicPartitionList::new();
        for &p in &partitions {
            tpl.add_partition_offset(TOPIC, p, rdkafka::Offset::Offset(0))
                .expect("partition offset");
        }
        let started = Instant::now();
        loop {
            match consumer.commit(&tpl, CommitMode::Sync) {
                Ok(()) => break,
                Err(e) => {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "could not reset the group's offsets in 60 s: {e}"
                    );
                    eprintln!("resetting the group's offsets: {e} (retrying)");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("read the group's offsets back");
        for element in committed.elements() {
            assert_eq!(
                element.offset(),
                rdkafka::Offset::Offset(0),
                "group offset of {TOPIC}/{}",
                element.partition()
            );
        }
    })
    .await
    .expect("offset reset task");
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL from the host.

/// A fresh client (PostgreSQL may have been restarted since the last one).
async fn pg(stack: &TestStack) -> tokio_postgres::Client {
    stack.postgres().await
}

/// How many of `ids` are in `diag`.
async fn stored_count(client: &tokio_postgres::Client, ids: &[Uuid]) -> i64 {
    client
        .query_one(
            "SELECT count(*) FROM diag WHERE event_id = ANY($1::uuid[])",
            &[&ids],
        )
        .await
        .expect("count rows in diag")
        .get(0)
}

/// Asserts that `diag` holds exactly `produced` rows, one per event, and each of `ids`.
async fn assert_rows_equal_records(stack: &TestStack, produced: usize, ids: &[Uuid]) {
    let client = pg(stack).await;
    let row = client
        .query_one("SELECT count(*), count(DISTINCT event_id) FROM diag", &[])
        .await
        .expect("count diag");
    let (rows, distinct): (i64, i64) = (row.get(0), row.get(1));
    assert_eq!(rows, distinct, "an event_id is stored twice");
    assert_eq!(
        rows, produced as i64,
        "rows in diag vs valid records produced"
    );
    assert_eq!(stored_count(&client, ids).await, ids.len() as i64);
}

/// Every row of every table of the schema, as sorted JSON text per table (`updated_at` of
/// `consumer_offsets` left out: an upsert of the same offset sets it to now).
async fn snapshot(stack: &TestStack) -> BTreeMap<String, Vec<String>> {
    let client = pg(stack).await;
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
            &[],
        )
        .await
        .expect("list tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    // The consumer's tables, analytics included (listed in `fleet_common::schema`).
    assert!(
        tables.len() >= 9
            && ["diag", "window_metrics", "sensor_histograms"]
                .iter()
                .all(|t| tables.iter().any(|name| name == t)),
        "tables: {tables:?}"
    );
    let mut out = BTreeMap::new();
    for table in tables {
        let rows = client
            .query(
                &format!("SELECT (to_jsonb(t) - 'updated_at')::text FROM \"{table}\" t ORDER BY 1"),
                &[],
            )
            .await
            .expect("read a table")
            .iter()
            .map(|r| r.get(0))
            .collect();
        out.insert(table, rows);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The scenarios.

/// Valid records produced so far (what `diag` must hold).
struct Produced {
    valid: usize,
}

/// (a) Kill the consumer while it stores a stream, start it again.
async fn kill_mid_batch(stack: &TestStack, bootstrap: &str, produced: &mut Produced) {
    let containers = Containers::of(stack);
    let producer = producer(bootstrap);
    // 20 vehicles x 150 events, about 400 events/s: the consumer writes batches all along.
    let events: Vec<TelemetryEvent> = (0..150)
        .flat_map(|seq| (0..20).map(move |v| event(1_000 + v, seq)))
        .collect();
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let sent = Arc::new(AtomicUsize::new(0));
    let stream = {
        let (events, sent, producer) = (events.clone(), sent.clone(), producer.clone());
        tokio::spawn(async move {
            for chunk in events.chunks(20) {
                send_events(&producer, chunk).await;
                sent.fetch_add(chunk.len(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // Counted now: the stream goes on to its end also if this scenario fails on the way.
    produced.valid += events.len();
    // Kill once the consumer has stored part of the stream.
    let client = pg(stack).await;
    let started = Instant::now();
    let stored_before_kill = loop {
        let stored = stored_count(&client, &ids).await;
        if stored >= 200 {
            break stored;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the consumer stored only {stored} rows of the stream in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    docker(&["kill", "--signal", "KILL", &containers.consumer]).await;
    let sent_at_kill = sent.load(Ordering::Relaxed);
    eprintln!("(a) consumer killed: {stored_before_kill} stored, {sent_at_kill} sent");
    assert!(
        (stored_before_kill as usize) < events.len(),
        "the stream was already stored completely before the kill"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stored_while_dead = stored_count(&client, &ids).await;
    docker(&["start", &containers.consumer]).await;
    stream.await.expect("producer task");
    eprintln!("(a) consumer started again; {stored_while_dead} stored while it was dead");

    let ends = wait_caught_up(stack, bootstrap).await;
    assert_rows_equal_records(stack, produced.valid, &ids).await;
    let total: i64 = ends.values().sum();
    assert_eq!(
        total, produced.valid as i64,
        "end offsets add up to the records produced"
    );
}

/// (b) PostgreSQL stopped for 30 s while records are produced, then started.
async fn postgres_outage(stack: &TestStack, bootstrap: &str, produced: &mut Produced) {
    let containers = Containers::of(stack);
    let producer = producer(bootstrap);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("HTTP client");
    let base = containers.consumer_http().await;
    assert_eq!(readyz(&http, &base).await, Some(200), "ready before");

    // 10 vehicles, 10 events every 100 ms for about 45 s.
    let events: Vec<TelemetryEvent> = (0..450)
        .flat_map(|seq| (0..10).map(move |v| event(2_000 + v, seq)))
        .collect();
    let ids: Vec<Uuid> = events.iter().map(|e| e.event_id).collect();
    let stream = {
        let (events, producer) = (events.clone(), producer.clone());
        tokio::spawn(async move {
            for chunk in events.chunks(10) {
                send_events(&producer, chunk).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    // Counted now: the stream goes on to its end also if this scenario fails on the way.
    produced.valid += events.len();
    tokio::time::sleep(Duration::from_secs(5)).await;
    docker(&["stop", &containers.postgres]).await;
    let statuses = readyz_statuses(&http, &base, Duration::from_secs(30)).await;
    docker(&["start", &containers.postgres]).await;
    eprintln!("(b) /readyz while PostgreSQL was down: {statuses:?}");
    stream.await.expect("producer task");

    wait_caught_up(stack, bootstrap).await;
    assert_rows_equal_records(stack, produced.valid, &ids).await;
    assert!(
        statuses.get("503").is_some_and(|n| *n > 0),
        "/readyz never answered 503 while PostgreSQL was down: {statuses:?}"
    );
    wait_ready_again(&http, &base).await;
}

/// Polls `/readyz` every 500 ms for `how_long`; counts the answers by status.
async fn readyz_statuses(
    http: &reqwest::Client,
    base: &str,
    how_long: Duration,
) -> BTreeMap<String, usize> {
    let since = Instant::now();
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    while since.elapsed() < how_long {
        let status = readyz(http, base)
            .await
            .map_or("no answer".to_owned(), |s| s.to_string());
        *statuses.entry(status).or_default() += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    statuses
}

/// Waits up to 60 s for `/readyz` to answer 200.
async fn wait_ready_again(http: &reqwest::Client, base: &str) {
    let started = Instant::now();
    while readyz(http, base).await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "/readyz not 200 again within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// (e) The broker stopped for 25 s between two streams of records: `/readyz` answers 503
/// while it is away, and every record from before and after is stored once. (The host
/// producer of the first stream is closed before the stop: a plain idempotent producer that
/// outlives a Tansu 0.6.0 restart can wedge it, see `common/src/producer.rs`.)
async fn broker_outage(stack: &TestStack, bootstrap: &str, produced: &mut Produced) {
    let broker = format!("{}-broker", stack.name);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("HTTP client");
    let base = Containers::of(stack).consumer_http().await;
    wait_ready_again(&http, &base).await;
    let round = |serial: u64| -> Vec<TelemetryEvent> {
        (0..100)
            .flat_map(|seq| (0..10).map(move |v| event(serial + v, seq)))
            .collect()
    };
    let before = round(4_000);
    send_events(&producer(bootstrap), &before).await;
    produced.valid += before.len();

    docker(&["stop", &broker]).await;
    let statuses = readyz_statuses(&http, &base, Duration::from_secs(25)).await;
    docker(&["start", &broker]).await;
    eprintln!("(e) /readyz while the broker was down: {statuses:?}");

    let after = round(4_100);
    send_events(&producer(bootstrap), &after).await;
    produced.valid += after.len();
    wait_caught_up(stack, bootstrap).await;
    let ids: Vec<Uuid> = before.iter().chain(&after).map(|e| e.event_id).collect();
    assert_rows_equal_records(stack, produced.valid, &ids).await;
    assert!(
        statuses.get("503").is_some_and(|n| *n > 0),
        "/readyz never answered 503 while the broker was down: {statuses:?}"
    );
    wait_ready_again(&http, &base).await;
}

/// (c) A record that is not JSON and an event with an invalid field, between good ones.
async fn poison_records(stack: &TestStack, bootstrap: &str, produced: &mut Produced) {
    let producer = producer(bootstrap);
    let vin = Vin::from_serial("YV1", 3_000);
    let key = vin.as_str().to_owned();
    let good: Vec<TelemetryEvent> = (0..4).map(|seq| event(3_000, seq)).collect();
    let not_json = b"{\"event_id\": not json".to_vec();
    let mut invalid = event(3_000, 9);
    invalid.speed = 500.0;
    let invalid = serde_json::to_vec(&invalid).expect("an event serializes");
    let bytes = |e: &TelemetryEvent| serde_json::to_vec(e).expect("an event serializes");

    // In order, one at a time, same key: one partition, poison between good records.
    send(&producer, &key, &bytes(&good[0])).await;
    send(&producer, &key, &bytes(&good[1])).await;
    let not_json_at = send(&producer, &key, &not_json).await;
    let invalid_at = send(&producer, &key, &invalid).await;
    send(&producer, &key, &bytes(&good[2])).await;
    send(&producer, &key, &bytes(&good[3])).await;
    produced.valid += good.len();

    wait_caught_up(stack, bootstrap).await;
    let ids: Vec<Uuid> = good.iter().map(|e| e.event_id).collect();
    assert_rows_equal_records(stack, produced.valid, &ids).await;

    let letters = read_dead_letters(bootstrap).await;
    for (payload, (partition, offset), reason, names) in [
        (&not_json, not_json_at, "not JSON: ", "line 1 column"),
        (&invalid, invalid_at, "invalid event: ", "`speed`"),
    ] {
        let found: Vec<&Received> = letters
            .iter()
            .filter(|l| {
                l.headers.get("fleet.partition") == Some(&partition.to_string())
                    && l.headers.get("fleet.offset") == Some(&offset.to_string())
            })
            .collect();
        assert_eq!(
            found.len(),
            1,
            "dead letters of {TOPIC}/{partition}@{offset}: {letters:?}"
        );
        let letter = found[0];
        assert_eq!(letter.payload.as_ref(), Some(payload), "original bytes");
        assert_eq!(letter.key.as_deref(), Some(key.as_bytes()), "original key");
        assert_eq!(letter.headers["fleet.topic"], TOPIC);
        let given = &letter.headers["fleet.reason"];
        assert!(
            given.starts_with(reason) && given.contains(names),
            "reason of {partition}@{offset}: {given:?}"
        );
    }
}

/// (d) Replay the whole topic from offset 0: every table unchanged.
async fn replay_from_zero(stack: &TestStack, bootstrap: &str, produced: &Produced) {
    let containers = Containers::of(stack);
    let ends = wait_caught_up(stack, bootstrap).await;
    let before = snapshot(stack).await;
    assert_eq!(before["diag"].len(), produced.valid);

    docker(&["stop", &containers.consumer]).await;
    let deleted = pg(stack)
        .await
        .execute(
            "DELETE FROM consumer_offsets WHERE consumer_group = $1 AND topic = $2",
            &[&GROUP, &TOPIC],
        )
        .await
        .expect("delete the stored offsets");
    assert_eq!(deleted as usize, ends.len());
    reset_group_offsets(bootstrap, ends.keys().copied().collect()).await;
    docker(&["start", &containers.consumer]).await;

    wait_caught_up(stack, bootstrap).await;
    let after = snapshot(stack).await;
    for (table, rows) in &before {
        assert!(
            after.get(table) == Some(rows),
            "table {table} changed by the replay: {} rows before, {:?} after",
            rows.len(),
            after.get(table).map(Vec::len)
        );
    }
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );

    // The consumer really read everything again: every valid record was a duplicate.
    let http = reqwest::Client::new();
    let base = containers.consumer_http().await;
    assert_eq!(metric(&http, &base, "rows_written_total").await, 0);
    assert_eq!(
        metric(&http, &base, "rows_duplicate_total").await,
        produced.valid as u64
    );
}

/// How long the stack's consumer gathers output-topic messages (`consumer.publish_interval`):
/// long enough that scenario (f) sees summaries gathered and not yet produced.
const PUBLISH_INTERVAL: &str = "60s";
/// Output topic of the per-vehicle summaries (`[broker] summary_topic`).
const SUMMARY_TOPIC: &str = "telemetry.summary";

/// The latest summary of each VIN in `SUMMARY_TOPIC` (the last by offset: one partition per
/// key), as `(events, last_seq, last_seen)`.
async fn produced_summaries(bootstrap: &str) -> BTreeMap<String, (i64, i64, String)> {
    let mut latest = BTreeMap::new();
    for record in read_topic(bootstrap, SUMMARY_TOPIC).await {
        let payload = record.payload.expect("a summary has a value");
        let summary: fleet_common::wire::VehicleSummary =
            serde_json::from_slice(&payload).expect("a summary is a VehicleSummary");
        let key = String::from_utf8(record.key.expect("a summary has a key")).expect("a VIN");
        assert_eq!(key, summary.vin, "a summary's key is its VIN");
        latest.insert(
            key,
            (
                summary.events,
                summary.last_seq,
                summary.last_seen.to_rfc3339(),
            ),
        );
    }
    latest
}

/// `vehicle_summary` of `vins`, as [`produced_summaries`] has them.
async fn stored_summaries(
    stack: &TestStack,
    vins: &[String],
) -> BTreeMap<String, (i64, i64, String)> {
    pg(stack)
        .await
        .query(
            "SELECT vin, events, last_seq, last_seen FROM vehicle_summary WHERE vin = ANY($1)",
            &[&vins],
        )
        .await
        .expect("read vehicle_summary")
        .iter()
        .map(|r| {
            let last_seen: chrono::DateTime<chrono::Utc> = r.get(3);
            (r.get(0), (r.get(1), r.get(2), last_seen.to_rfc3339()))
        })
        .collect()
}

/// Only the entries of `vins`.
fn of(
    summaries: &BTreeMap<String, (i64, i64, String)>,
    vins: &[String],
) -> BTreeMap<String, (i64, i64, String)> {
    summaries
        .iter()
        .filter(|(vin, _)| vins.contains(vin))
        .map(|(vin, s)| (vin.clone(), s.clone()))
        .collect()
}

/// (f) Summaries are gathered for the publish interval, produced by a stopping consumer, and
/// produced again by a consumer started after a `SIGKILL` lost what it had gathered.
async fn summaries_survive_stop_and_kill(
    stack: &TestStack,
    bootstrap: &str,
    produced: &mut Produced,
) {
    let containers = Containers::of(stack);
    let http = reqwest::Client::new();
    let producer = producer(bootstrap);
    let vins: Vec<String> = (0..10)
        .map(|v| Vin::from_serial("YV1", 6_000 + v).as_str().to_owned())
        .collect();
    let round = |first_seq: u64| -> Vec<TelemetryEvent> {
        (first_seq..first_seq + 3)
            .flat_map(|seq| (0..10).map(move |v| event(6_000 + v, seq)))
            .collect()
    };

    // A fresh start: the flusher's first interval begins now.
    docker(&["restart", &containers.consumer]).await;
    let restarted = Instant::now();
    wait_ready_again(&http, &containers.consumer_http().await).await;
    let first = round(0);
    send_events(&producer, &first).await;
    produced.valid += first.len();
    wait_caught_up(stack, bootstrap).await;
    let stored = stored_summaries(stack, &vins).await;
    assert_eq!(stored.len(), 10);
    assert!(stored.values().all(|s| s.0 == 3), "{stored:?}");
    let early = of(&produced_summaries(bootstrap).await, &vins);
    assert!(
        early.is_empty(),
        "summaries produced {:?} after the consumer started, within its {PUBLISH_INTERVAL} publish interval: {early:?}",
        restarted.elapsed()
    );

    // A graceful stop produces what was gathered.
    docker(&["stop", &containers.consumer]).await;
    assert_eq!(
        of(&produced_summaries(bootstrap).await, &vins),
        stored,
        "after a graceful stop, the topic's latest summaries are the stored ones"
    );

    // SIGKILL loses what was gathered; the next start produces the recent summaries again.
    docker(&["start", &containers.consumer]).await;
    wait_ready_again(&http, &containers.consumer_http().await).await;
    let second = round(3);
    send_events(&producer, &second).await;
    produced.valid += second.len();
    wait_caught_up(stack, bootstrap).await;
    let stored = stored_summaries(stack, &vins).await;
    assert!(stored.values().all(|s| s.0 == 6), "{stored:?}");
    docker(&["kill", "--signal", "KILL", &containers.consumer]).await;
    assert_ne!(
        of(&produced_summaries(bootstrap).await, &vins),
        stored,
        "the killed consumer had produced the second round's summaries already"
    );
    docker(&["start", &containers.consumer]).await;
    let started = Instant::now();
    loop {
        let latest = of(&produced_summaries(bootstrap).await, &vins);
        if latest == stored {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "40 s after the start that followed the SIGKILL, the topic's latest summaries \
             {latest:?} are not the stored ones {stored:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let ids: Vec<Uuid> = first.iter().chain(&second).map(|e| e.event_id).collect();
    assert_rows_equal_records(stack, produced.valid, &ids).await;
}

/// What every scenario gets: the stack (torn down when the last scenario is done), the Kafka
/// bootstrap address on the host and the count of valid records produced so far.
struct Shared {
    stack: TestStack,
    bootstrap: String,
    produced: tokio::sync::Mutex<Produced>,
}

/// Launches the stack the scenarios share.
async fn launch() -> Shared {
    let stack = TestStack::new(
        "consumer-res",
        &[("FLEET_CONSUMER__PUBLISH_INTERVAL", PUBLISH_INTERVAL)],
    );
    stack.fleet_ok(&["launch-infra"]).await;
    let bootstrap = stack.kafka_bootstrap().await;
    Shared {
        stack,
        bootstrap,
        produced: tokio::sync::Mutex::new(Produced { valid: 0 }),
    }
}

/// Each scenario is a test of its own on one shared stack, in the order (a) to (f) of the
/// file's description.
fn main() -> std::process::ExitCode {
    use support::scenarios::{run, scenario};
    run(
        launch(),
        vec![
            scenario("a_consumer_killed_mid_batch", |s: Arc<Shared>| async move {
                let mut produced = s.produced.lock().await;
                kill_mid_batch(&s.stack, &s.bootstrap, &mut produced).await;
            }),
            scenario(
                "b_postgres_stopped_under_load",
                |s: Arc<Shared>| async move {
                    let mut produced = s.produced.lock().await;
                    postgres_outage(&s.stack, &s.bootstrap, &mut produced).await;
                },
            ),
            scenario("c_poison_records", |s: Arc<Shared>| async move {
                let mut produced = s.produced.lock().await;
                poison_records(&s.stack, &s.bootstrap, &mut produced).await;
            }),
            scenario("d_replay_from_offset_0", |s: Arc<Shared>| async move {
                let produced = s.produced.lock().await;
                replay_from_zero(&s.stack, &s.bootstrap, &produced).await;
            }),
            scenario("e_broker_stopped", |s: Arc<Shared>| async move {
                let mut produced = s.produced.lock().await;
                broker_outage(&s.stack, &s.bootstrap, &mut produced).await;
            }),
            scenario(
                "f_summaries_survive_stop_and_kill",
                |s: Arc<Shared>| async move {
                    let mut produced = s.produced.lock().await;
                    summaries_survive_stop_and_kill(&s.stack, &s.bootstrap, &mut produced).await;
                },
            ),
        ],
    )
}
