//! Consumer replicas share the partitions through the registry, not Kafka's group coordinator,
//! on a real stack launched with `FLEET_CONSUMER__REPLICAS=2` (3 partitions):
//!
//! - both replicas hold partitions, disjoint and together all of them;
//! - one replica frozen (`docker pause`: its process and its ZooKeeper session stop answering)
//!   while records are produced: once its session expires the other replica takes its
//!   partitions over and stores every record, once;
//! - the frozen replica woken up (`docker unpause`): it registers again, the two split the
//!   partitions again, and records produced afterwards are stored once more, exactly: `diag`
//!   equals the records produced, `consumer_offsets` the topic's end offsets, and the aggregates
//!   counted every row once (the per-vehicle and per-second totals equal the row count);
//! - `fleet config set consumer.batch_max_records=5` reaches both running replicas: the records
//!   produced afterwards are written in batches of at most 5.
//!
//! The stack runs under a name and host ports of its own; a guard tears it down also when an
//! assertion fails (and unpauses the replica first, so that teardown can stop it).

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fleet_common::TelemetryEvent;
use support::TestStack;
use support::stream::{docker, event, metric, producer, send_events, wait_caught_up};

/// Partitions of the input topic in this stack.
const PARTITIONS: u64 = 3;
/// Vehicles per round of records (keys spread over every partition).
const VEHICLES: u64 = 30;
/// Events per vehicle per round.
const EVENTS_PER_VEHICLE: u64 = 40;
/// The consumers' services, for `fleet logs` when a wait fails.
const CONSUMERS: [&str; 2] = ["consumer-0", "consumer-1"];
/// The longest a change of the live replicas may take to reach the shares: the registry's
/// session timeout (6 s) plus the time to notice and assign, with room for a loaded machine.
const SHARE_CHANGE: Duration = Duration::from_secs(60);

/// Unpauses a container when dropped (declared after the stack, so dropped before it).
struct Unpause(String);

impl Drop for Unpause {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["unpause", &self.0])
            .output();
    }
}

/// `http://127.0.0.1:<port>` of each consumer replica's endpoints, from `fleet status --json`.
async fn consumer_endpoints(stack: &TestStack) -> BTreeMap<String, String> {
    let status: serde_json::Value =
        serde_json::from_str(&stack.fleet_ok(&["status", "--json"]).await).expect("status JSON");
    let mut endpoints = BTreeMap::new();
    for s in status["services"].as_array().expect("services") {
        let name = s["service"].as_str().expect("service name");
        if !name.starts_with("consumer-") {
            continue;
        }
        let address = s["published"]
            .as_object()
            .and_then(|p| p.values().next())
            .and_then(|a| a.as_str())
            .unwrap_or_else(|| panic!("{name} publishes its endpoints: {s}"));
        endpoints.insert(name.to_owned(), format!("http://{address}"));
    }
    assert_eq!(
        endpoints.keys().map(String::as_str).collect::<Vec<_>>(),
        CONSUMERS,
        "consumer replicas in status"
    );
    endpoints
}

/// Waits until the replicas named in `expected` hold exactly that many partitions each (a
/// frozen replica is left out: it cannot answer); returns how long it took.
async fn wait_shares(
    http: &reqwest::Client,
    endpoints: &BTreeMap<String, String>,
    expected: &[(&str, u64)],
) -> Duration {
    let started = Instant::now();
    loop {
        let mut seen = Vec::new();
        for (name, _) in expected {
            seen.push(metric(http, &endpoints[*name], "assigned_partitions").await);
        }
        let wanted: Vec<u64> = expected.iter().map(|(_, n)| *n).collect();
        if seen == wanted {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < SHARE_CHANGE,
            "partition shares {seen:?}, expected {expected:?} within {SHARE_CHANGE:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Produces one round of events from the host; returns how many.
async fn produce_round(bootstrap: &str, round: u64) -> usize {
    let producer = producer(bootstrap);
    let events: Vec<TelemetryEvent> = (0..EVENTS_PER_VEHICLE)
        .flat_map(|i| (0..VEHICLES).map(move |v| event(5_000 + v, round * EVENTS_PER_VEHICLE + i)))
        .collect();
    for chunk in events.chunks(200) {
        send_events(&producer, chunk).await;
    }
    events.len()
}

/// Asserts that `diag` holds `produced` distinct rows and that the aggregates counted each
/// once.
async fn assert_stored_once(stack: &TestStack, produced: usize) {
    let client = stack.postgres().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM diag), (SELECT count(DISTINCT event_id) FROM diag),
                    (SELECT coalesce(sum(events), 0)::bigint FROM vehicle_summary),
                    (SELECT coalesce(sum(events), 0)::bigint FROM window_metrics
                      WHERE granularity = 'second')",
            &[],
        )
        .await
        .expect("count rows and aggregates");
    let (rows, distinct, summary, seconds): (i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!(rows, distinct, "an event_id is stored twice");
    assert_eq!(rows, produced as i64, "rows in diag vs records produced");
    assert_eq!(
        summary, rows,
        "vehicle_summary counted a row twice or not at all"
    );
    assert_eq!(
        seconds, rows,
        "per-second windows counted a row twice or not at all"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_replica_s_partitions_are_taken_over_and_handed_back() {
    let stack = TestStack::new(
        "consumer-fo",
        &[
            ("FLEET_CONSUMER__REPLICAS", "2"),
            ("FLEET_BROKER__PARTITIONS", &PARTITIONS.to_string()),
        ],
    );
    stack.fleet_ok(&["launch-infra"]).await;
    let bootstrap = stack.kafka_bootstrap().await;
    let endpoints = consumer_endpoints(&stack).await;
    let http = reqwest::Client::new();

    eprintln!("== both replicas share the partitions");
    wait_shares(&http, &endpoints, &[("consumer-0", 2), ("consumer-1", 1)]).await;

    eprintln!("== consumer-1 frozen while records are produced");
    let frozen = format!("{}-consumer-1", stack.name);
    let _unpause = Unpause(frozen.clone());
    docker(&["pause", &frozen]).await;
    let paused_at = Instant::now();
    let mut produced = produce_round(&bootstrap, 0).await;
    wait_shares(&http, &endpoints, &[("consumer-0", PARTITIONS)]).await;
    eprintln!(
        "consumer-0 holds every partition {:?} after the freeze",
        paused_at.elapsed()
    );
    wait_caught_up(&stack, &bootstrap, &["consumer-0"]).await;
    assert_stored_once(&stack, produced).await;

    eprintln!("== consumer-1 woken up: the partitions are split again");
    docker(&["unpause", &frozen]).await;
    let took = wait_shares(&http, &endpoints, &[("consumer-0", 2), ("consumer-1", 1)]).await;
    eprintln!("shares restored {took:?} after the wake-up");
    produced += produce_round(&bootstrap, 1).await;
    wait_caught_up(&stack, &bootstrap, &CONSUMERS).await;
    assert_stored_once(&stack, produced).await;
    let mut before = BTreeMap::new();
    for name in CONSUMERS {
        let rows = metric(&http, &endpoints[name], "rows_written_total").await;
        assert!(rows > 0, "{name} stored rows after the split");
        let batches = metric(&http, &endpoints[name], "batches_total").await;
        before.insert(name, (rows, batches));
    }

    eprintln!("== live batch limit: 5 records");
    stack
        .fleet_ok(&["config", "set", "consumer.batch_max_records=5"])
        .await;
    // The replicas apply it when the registry's watch fires; give that a moment.
    tokio::time::sleep(Duration::from_secs(3)).await;
    produced += produce_round(&bootstrap, 2).await;
    wait_caught_up(&stack, &bootstrap, &CONSUMERS).await;
    assert_stored_once(&stack, produced).await;
    for name in CONSUMERS {
        let rows = metric(&http, &endpoints[name], "rows_written_total").await - before[name].0;
        let batches = metric(&http, &endpoints[name], "batches_total").await - before[name].1;
        eprintln!("{name}: {rows} rows in {batches} batches under the live limit");
        assert!(rows > 0, "{name} stored rows under the live limit");
        assert!(
            batches * 5 >= rows,
            "{name} wrote {rows} rows in {batches} batches: more than 5 per batch"
        );
        assert!(metric(&http, &endpoints[name], "last_batch_size").await <= 5);
    }
}
