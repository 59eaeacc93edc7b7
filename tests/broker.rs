//! The broker tier under faults, through the real `fleet` commands and real containers: a stack
//! launched with `FLEET_BROKER__REPLICAS=2` runs two Nisshi brokers inside the network
//! (`broker-0`, `broker-1`, one name for the clients), a third one on the same PostgreSQL
//! storage as the host listener, and the storage server `broker-storage`. While 3 vehicles
//! report:
//! - `docker kill` of `broker-0`: the other broker keeps serving (rows keep arriving at the
//!   vehicles' rate while it is away), then it is started again;
//! - `docker stop` of `broker-1`: the same;
//! - both in-network brokers killed for 8 s (ingest answers 503 and the vehicles keep their
//!   events), then started: ingest recovers by itself.
//!
//! Afterwards `fleet verify` finds every acknowledged event in `diag` (no `seq` gap), every
//! event of the topic (read back from the host) is exactly one row of `diag`, nothing was
//! dead-lettered, and the topic holds a second copy of an event only where ingest did not
//! acknowledge the first one (its `failed` records: the broker died before answering, the
//! vehicle sent the event again with the same id): the broker never writes an acknowledged
//! record twice.
//!
//! The stack runs under a name and host ports of its own; a guard tears it down also when an
//! assertion fails.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::Message as _;
use rdkafka::consumer::Consumer as _;

use support::TestStack;
use support::stream::{TOPIC, diag_rows, docker, end_offsets, reader, wait_caught_up};

/// Vehicles launched (each reports once a second).
const VEHICLES: u32 = 3;
/// How long a broker stays away.
const AWAY: Duration = Duration::from_secs(12);

/// Rows that arrive in `AWAY` while `broker` is taken away by `how` (`kill` or `stop`), then
/// starts it again and waits for the stack to be ready.
async fn away(stack: &TestStack, pg: &tokio_postgres::Client, brokers: &[&str], how: &str) -> i64 {
    let names: Vec<String> = brokers
        .iter()
        .map(|b| format!("{}-{b}", stack.name))
        .collect();
    let mut args = vec![how];
    args.extend(names.iter().map(String::as_str));
    docker(&args).await;
    // Clients notice the lost connections within a few seconds; count from then on.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = diag_rows(pg).await;
    tokio::time::sleep(AWAY).await;
    let during = diag_rows(pg).await - before;
    let mut start = vec!["start"];
    start.extend(names.iter().map(String::as_str));
    docker(&start).await;
    stack.wait_all_ready(Duration::from_secs(90)).await;
    eprintln!("{how} {brokers:?}: {during} rows in {AWAY:?}");
    during
}

/// Every record of the input topic up to `ends`: (partition, offset, event id).
async fn read_topic(bootstrap: &str, ends: &BTreeMap<i32, i64>) -> Vec<(i32, i64, String)> {
    let (bootstrap, ends) = (bootstrap.to_owned(), ends.clone());
    tokio::task::spawn_blocking(move || {
        let consumer = reader(&bootstrap, "broker-test-reader");
        let mut assignment = rdkafka::TopicPartitionList::new();
        for partition in ends.keys() {
            assignment
                .add_partition_offset(TOPIC, *partition, rdkafka::Offset::Beginning)
                .expect("a partition");
        }
        consumer.assign(&assignment).expect("assign");
        let mut records = Vec::new();
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        let started = Instant::now();
        while ends
            .iter()
            .any(|(p, end)| next.get(p).copied().unwrap_or(0) < *end)
        {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "read the topic in 60 s: at {next:?} of {ends:?}"
            );
            let Some(message) = consumer.poll(Duration::from_secs(1)) else {
                continue;
            };
            let message = message.expect("a record");
            let event: serde_json::Value =
                serde_json::from_slice(message.payload().unwrap_or_default()).expect("an event");
            records.push((
                message.partition(),
                message.offset(),
                event["event_id"].as_str().unwrap_or_default().to_owned(),
            ));
            next.insert(message.partition(), message.offset() + 1);
        }
        records
    })
    .await
    .expect("reader task")
}

#[tokio::test]
async fn replicas_share_the_storage_and_nothing_is_lost_when_brokers_die() {
    let stack = TestStack::new("brk", &[("FLEET_BROKER__REPLICAS", "2")]);
    stack.fleet_ok(&["launch-infra"]).await;
    let status: serde_json::Value =
        serde_json::from_str(&stack.fleet_ok(&["status", "--json"]).await).expect("status JSON");
    let services: Vec<&str> = status["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["service"].as_str())
        .collect();
    for expected in ["broker-storage", "broker-0", "broker-1", "broker-host"] {
        assert!(services.contains(&expected), "{expected} in {services:?}");
    }
    stack
        .fleet_ok(&["launch-fleet", "--num-vehicles", &VEHICLES.to_string()])
        .await;
    let pg = stack.postgres().await;

    // One broker away: the other serves at the vehicles' rate (3/s; at least half of it).
    let floor = i64::from(VEHICLES) * AWAY.as_secs() as i64 / 2;
    let killed = away(&stack, &pg, &["broker-0"], "kill").await;
    assert!(
        killed >= floor,
        "with broker-0 killed, broker-1 kept serving: {killed} rows in {AWAY:?} (at least {floor})"
    );
    let stopped = away(&stack, &pg, &["broker-1"], "stop").await;
    assert!(
        stopped >= floor,
        "with broker-1 stopped, broker-0 kept serving: {stopped} rows in {AWAY:?} (at least {floor})"
    );

    // Every in-network broker away: ingest answers 503, the vehicles keep their events.
    away(&stack, &pg, &["broker-0", "broker-1"], "kill").await;
    // Ingest recovers by itself: new events are stored again.
    let after_restart = diag_rows(&pg).await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        diag_rows(&pg).await >= after_restart + i64::from(VEHICLES) * 5,
        "rows arrive again after the brokers are back"
    );

    // Every acknowledged event stored, no seq gap.
    let verify = stack.fleet(&["verify", "--timeout", "90s"]).await;
    assert!(verify.status.success(), "fleet verify passes");
    stack.fleet_ok(&["teardown", "--fleet-only"]).await;

    // Every record of the topic, read from the host: its event ids.
    let bootstrap = stack.kafka_bootstrap().await;
    let ends = wait_caught_up(&stack, &bootstrap, &["consumer"]).await;
    let records = read_topic(&bootstrap, &ends).await;
    let mut copies: BTreeMap<String, Vec<(i32, i64)>> = BTreeMap::new();
    for (partition, offset, event_id) in &records {
        copies
            .entry(event_id.clone())
            .or_default()
            .push((*partition, *offset));
    }
    let twice: Vec<_> = copies.iter().filter(|(_, at)| at.len() > 1).collect();
    eprintln!(
        "{} records in the topic, {} distinct events, {} written more than once: {twice:?}",
        records.len(),
        copies.len(),
        twice.len()
    );
    let stored = diag_rows(&pg).await;
    assert_eq!(
        copies.len() as i64,
        stored,
        "every event in the topic is one row in diag"
    );
    // A second copy in the topic is only ever a record that ingest did not acknowledge (the
    // broker died before its answer; the vehicle sent the event again with the same id): the
    // broker itself never writes an acknowledged record twice.
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", stack.ingest_port))
        .await
        .expect("ingest's /metrics")
        .text()
        .await
        .expect("metrics text");
    let failed: usize = metrics
        .lines()
        .find_map(|l| l.strip_prefix("ingest_records_total{outcome=\"failed\"} "))
        .and_then(|v| v.trim().parse().ok())
        .expect("ingest_records_total{outcome=\"failed\"}");
    let extra = records.len() - copies.len();
    assert!(
        extra <= failed,
        "{extra} extra copies in the topic, but ingest failed only {failed} records: an acknowledged record was written twice"
    );
    let dead: i64 = end_offsets(&bootstrap, "telemetry.dlq")
        .await
        .values()
        .sum();
    assert_eq!(dead, 0, "nothing was dead-lettered");
}
