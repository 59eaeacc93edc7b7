//! Standard Kafka clients against the stack's broker from the host, through the published
//! host listener: two client families each produce with acks=all and read back in a consumer
//! group (the broker's group coordinator, subscriptions, committed offsets).
//! - kafka-python (the client library of the system fleet replaces; PyPI, installed by
//!   `.ci/run` into `~/.cache/fleet/pyenv`, or the interpreter in `FLEET_PYTHON`): produces
//!   500 records and reads every one back once in a group (`tests/python/kafka_clients.py`).
//! - librdkafka (rdkafka): reads kafka-python's records in a group of its own, every one once,
//!   and commits; a second consumer in the same group then starts at the committed offsets.
//!
//! The stack runs under a name and host ports of its own; a guard tears it down also when an
//! assertion fails.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use support::TestStack;

/// Records kafka-python produces.
const RECORDS: usize = 500;
/// The topic of this test.
const TOPIC: &str = "clients.python";

/// The Python interpreter with kafka-python: `FLEET_PYTHON`, or the venv `.ci/run` makes.
fn python() -> PathBuf {
    let path = std::env::var_os("FLEET_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/fleet/pyenv/bin/python")
        });
    assert!(
        path.is_file(),
        "{} is missing: install the Python test clients with \
         `python3 -m venv ~/.cache/fleet/pyenv && ~/.cache/fleet/pyenv/bin/pip install -r tests/python/requirements.txt` \
         (as .ci/run does), or point FLEET_PYTHON at an interpreter that has them",
        path.display()
    );
    path
}

/// A librdkafka group consumer from the host.
fn group_consumer(bootstrap: &str, group: &str) -> StreamConsumer {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka consumer");
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    consumer
}

/// Reads until `count` distinct values arrived or `limit` passed; value -> times seen.
async fn read(consumer: &StreamConsumer, count: usize, limit: Duration) -> BTreeMap<String, u32> {
    let started = Instant::now();
    let mut seen = BTreeMap::new();
    while seen.len() < count && started.elapsed() < limit {
        match tokio::time::timeout(Duration::from_secs(2), consumer.recv()).await {
            Ok(Ok(message)) => {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                *seen.entry(value.into_owned()).or_insert(0) += 1;
            }
            Ok(Err(e)) => eprintln!("rdkafka: {e}"),
            Err(_) => {}
        }
    }
    seen
}

#[tokio::test]
async fn kafka_python_and_librdkafka_produce_and_consume_in_groups() {
    let python = python();
    let stack = TestStack::new("clients", &[]);
    stack.fleet_ok(&["launch-infra"]).await;
    let bootstrap = stack.kafka_bootstrap().await;

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/python/kafka_clients.py");
    let output = tokio::process::Command::new(&python)
        .arg(&script)
        .args([&bootstrap, TOPIC, "python-group", &RECORDS.to_string()])
        .output()
        .await
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!(
        "kafka-python -> {}\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "kafka-python produced and consumed in a group"
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a report line")).expect("report JSON");
    assert_eq!(report["acknowledged"], RECORDS);
    assert_eq!(report["consumed"], RECORDS);
    assert_eq!(report["duplicates"], 0);
    assert_eq!(
        report["assigned"],
        serde_json::json!([0, 1, 2]),
        "one member holds all 3 partitions"
    );
    let committed: i64 = report["committed"]
        .as_object()
        .expect("committed offsets")
        .values()
        .map(|v| v.as_i64().expect("an offset"))
        .sum();
    assert_eq!(
        committed, RECORDS as i64,
        "the group committed every record"
    );

    // librdkafka reads kafka-python's records in a group of its own, every one once.
    let first = group_consumer(&bootstrap, "rdkafka-group");
    let seen = read(&first, RECORDS, Duration::from_secs(90)).await;
    assert_eq!(seen.len(), RECORDS, "rdkafka read every record");
    assert!(seen.values().all(|n| *n == 1), "no record twice");
    assert!(seen.contains_key("record-0") && seen.contains_key(&format!("record-{}", RECORDS - 1)));
    first
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");
    drop(first);

    // A new member of the same group starts at the committed offsets: nothing to read.
    let second = group_consumer(&bootstrap, "rdkafka-group");
    let again = read(&second, 1, Duration::from_secs(15)).await;
    assert!(
        again.is_empty(),
        "the group's committed offsets hold: {again:?}"
    );
}
