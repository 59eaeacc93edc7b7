//! Replicas, through the real `fleet` commands and real containers: a stack launched with
//! `FLEET_INGEST__REPLICAS=2 FLEET_CONSUMER__REPLICAS=2` runs `ingest-0`, `ingest-1` behind the
//! balancer `ingest-lb` on the published port and `consumer-0`, `consumer-1` in one group; with
//! 3 vehicles `fleet verify` passes, both ingest replicas accepted events (their `/metrics`),
//! both consumers hold partitions and together all of them, and `fleet logs` reaches a replica.
//!
//! The stack runs under a name and host ports of its own; a guard tears it down also when an
//! assertion fails.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_common::{EventTime, TelemetryEvent, Vin};
use support::TestStack;
use uuid::Uuid;

/// Vehicles launched.
const VEHICLES: u32 = 3;
/// Events posted through the balancer, each on a connection of its own.
const POSTS: u64 = 4;

/// The value of the first sample of `metrics` (Prometheus text) whose line starts with `prefix`.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// `GET /metrics` of a container through its published address.
async fn metrics(address: &str) -> String {
    reqwest::get(format!("http://{address}/metrics"))
        .await
        .and_then(reqwest::Response::error_for_status)
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ingest_and_two_consumer_replicas_serve_the_stack() {
    let stack = TestStack::new(
        "replicas",
        &[
            ("FLEET_INGEST__REPLICAS", "2"),
            ("FLEET_CONSUMER__REPLICAS", "2"),
        ],
    );
    stack.fleet_ok(&["launch-infra"]).await;

    // Every replica and the balancer are containers of their own, ready, on published ports.
    let status: serde_json::Value =
        serde_json::from_str(&stack.fleet_ok(&["status", "--json"]).await).expect("status JSON");
    let mut published: BTreeMap<String, String> = BTreeMap::new();
    for s in status["services"].as_array().expect("services") {
        let name = s["service"].as_str().expect("service name").to_owned();
        assert_eq!(s["ready"], true, "{name} is ready: {s}");
        if let Some(address) = s["published"]
            .as_object()
            .and_then(|p| p.values().next())
            .and_then(|a| a.as_str())
        {
            published.insert(name, address.to_owned());
        }
    }
    for name in [
        "ingest-lb",
        "ingest-0",
        "ingest-1",
        "consumer-0",
        "consumer-1",
    ] {
        assert!(published.contains_key(name), "{name} in status: {status}");
    }
    assert!(
        !published.contains_key("ingest") && !published.contains_key("consumer"),
        "no single ingest or consumer container beside the replicas: {published:?}"
    );
    assert_eq!(
        published["ingest-lb"],
        format!("127.0.0.1:{}", stack.ingest_port),
        "the balancer holds ingest's host port"
    );

    // Posts through the balancer, each on a new connection: round robin spreads them.
    let vin = Vin::from_serial("9RP", u64::from(std::process::id()));
    for seq in 0..POSTS {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(15))
            .build()
            .expect("client");
        let event = TelemetryEvent::example(
            Uuid::new_v4(),
            vin.clone(),
            seq,
            EventTime(chrono::Utc::now()),
        );
        let response = client
            .post(stack.events_url())
            .json(&event)
            .send()
            .await
            .expect("ingest answers through the balancer");
        assert!(
            response.status().is_success(),
            "POST {seq} through the balancer: {}",
            response.status()
        );
    }

    stack
        .fleet_ok(&["launch-fleet", "--num-vehicles", &VEHICLES.to_string()])
        .await;
    let verify = stack.fleet(&["verify"]).await;
    assert!(verify.status.success(), "fleet verify passes with replicas");

    for replica in ["ingest-0", "ingest-1"] {
        let text = metrics(&published[replica]).await;
        let accepted = sample(&text, "ingest_records_total{outcome=\"accepted\"}").unwrap_or(0.0);
        assert!(
            accepted >= 1.0,
            "{replica} accepted events ({accepted}):\n{text}"
        );
    }
    let partitions: i64 = 3;
    let mut assigned_total = 0.0;
    for replica in ["consumer-0", "consumer-1"] {
        let text = metrics(&published[replica]).await;
        let assigned = sample(&text, "assigned_partitions ").unwrap_or(0.0);
        assert!(
            assigned >= 1.0,
            "{replica} holds partitions ({assigned}):\n{text}"
        );
        assigned_total += assigned;
    }
    assert_eq!(
        assigned_total as i64, partitions,
        "the two consumers share all partitions of the topic"
    );

    // Every partition's stored offset is in PostgreSQL, written by the group.
    let pg = stack.postgres().await;
    let stored: i64 = pg
        .query_one("SELECT count(*) FROM diag WHERE vin = $1", &[&vin.as_str()])
        .await
        .expect("count the posted events")
        .get(0);
    assert_eq!(
        stored, POSTS as i64,
        "every event posted through the balancer is stored"
    );

    // Logs of one replica; the plain service name points at the replicas.
    let logs = stack.fleet(&["logs", "ingest-1", "--tail", "5"]).await;
    assert!(logs.status.success(), "fleet logs ingest-1");
    let plain = stack.fleet_quiet(&["logs", "ingest"]).await;
    assert!(!plain.status.success());
    let message = String::from_utf8_lossy(&plain.stderr);
    assert!(
        message.contains("ingest-0") && message.contains("ingest-1"),
        "`fleet logs ingest` names the replicas: {message}"
    );
}
