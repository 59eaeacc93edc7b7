//! Replicas, through the real `fleet` commands and real containers: a stack launched with
//! `FLEET_INGEST__REPLICAS=2 FLEET_CONSUMER__REPLICAS=2` (and 3 partitions, so that both
//! consumers hold a share) runs `ingest-0`, `ingest-1` behind the balancer `ingest-lb` on the
//! published port and `consumer-0`, `consumer-1` in one group; with 3 vehicles `fleet verify`
//! passes, both ingest replicas accepted events (their `/metrics`), both consumers hold
//! partitions and together all of them, and `fleet logs` reaches a replica.
//! An ingest replica stopped with `docker stop` while the vehicles run leaves the registry at
//! once, one killed with `docker kill` when its session expires; either way the vehicles keep
//! reporting through the other one for 12 s; started again it registers and they use it again;
//! `fleet verify` then finds every acknowledged event stored, no `seq` gap.
//!
//! The stack runs under a name and host ports of its own; a guard tears it down also when an
//! assertion fails.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fleet_common::{EventTime, TelemetryEvent, Vin};
use fleet_registry::{Admin, ROLE_INGEST};
use support::TestStack;
use support::stream::docker;
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

/// The accepted-records sample of `metrics`, 0 when absent.
fn accepted_records(metrics: &str) -> f64 {
    sample(metrics, "ingest_records_total{outcome=\"accepted\"}").unwrap_or(0.0)
}

/// Each service's published host address, from `fleet status --json`, asserting that every
/// service is ready.
async fn published_addresses(stack: &TestStack) -> BTreeMap<String, String> {
    let status: serde_json::Value =
        serde_json::from_str(&stack.fleet_ok(&["status", "--json"]).await).expect("status JSON");
    let mut published = BTreeMap::new();
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
    published
}

/// The ids of the live ingest members, polled until `done` holds or `limit` passes.
async fn ingest_members_until(
    zk: &Admin,
    limit: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let started = Instant::now();
    loop {
        let ids: Vec<String> = zk
            .members(ROLE_INGEST)
            .await
            .expect("list ingest members")
            .into_iter()
            .map(|m| m.id)
            .collect();
        if done(&ids) || started.elapsed() > limit {
            return ids;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Rows stored in `diag` by the simulated vehicles (not `fleet verify`'s probes, not this
/// test's own posts).
async fn vehicle_rows(pg: &tokio_postgres::Client, own: &Vin) -> i64 {
    pg.query_one(
        "SELECT count(*) FROM diag WHERE vin NOT LIKE '9FL%' AND vin <> $1",
        &[&own.as_str()],
    )
    .await
    .expect("count rows")
    .get(0)
}

/// How [`replica_away`] takes an ingest replica away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Away {
    /// `docker stop`: SIGTERM; the replica leaves the registry before it stops serving.
    Stopped,
    /// `docker kill`: SIGKILL; its member node stays until its ZooKeeper session expires.
    Killed,
}

/// Takes ingest replica `away` (0 or 1) away as `how` says while the vehicles run for 12 s,
/// then starts it again. Asserts that it leaves the registry (within a couple of seconds when
/// stopped; once its session expired when killed, well within ZooKeeper's 40 s maximum), that
/// the vehicles keep being stored through the other replica meanwhile, that it registers again
/// and the vehicles send to it again, and that `fleet verify` passes (every acknowledged event
/// stored, no `seq` gap).
async fn replica_away(
    stack: &TestStack,
    zk: &Admin,
    pg: &tokio_postgres::Client,
    own: &Vin,
    away: u32,
    how: Away,
) {
    let name = |i: u32| format!("{}-ingest-{i}", stack.name);
    let (victim, other) = (name(away), name(1 - away));
    let both = ingest_members_until(zk, Duration::from_secs(30), |ids| ids.len() == 2).await;
    assert_eq!(both, [name(0), name(1)], "both replicas live");
    let rows_before = vehicle_rows(pg, own).await;
    let began = Instant::now();
    match how {
        Away::Stopped => docker(&["stop", &victim]).await,
        Away::Killed => docker(&["kill", &victim]).await,
    };
    let limit = match how {
        Away::Stopped => Duration::from_secs(2),
        Away::Killed => Duration::from_secs(45),
    };
    let left = ingest_members_until(zk, limit, |ids| ids.len() == 1).await;
    eprintln!(
        "{how:?} {victim}: it left the registry {:?} after docker began",
        began.elapsed()
    );
    assert_eq!(
        left,
        std::slice::from_ref(&other),
        "{how:?}: {victim} left the registry"
    );
    tokio::time::sleep(Duration::from_secs(12).saturating_sub(began.elapsed())).await;
    let rows = vehicle_rows(pg, own).await - rows_before;
    let down_for = began.elapsed();
    eprintln!("{how:?} {victim}: {rows} rows stored in the {down_for:?} it was away");
    assert!(
        rows >= i64::from(VEHICLES) * 6,
        "the {VEHICLES} vehicles (1 event/s each) kept reporting through {other}: {rows} rows in {down_for:?}"
    );
    docker(&["start", &victim]).await;
    let back = ingest_members_until(zk, Duration::from_secs(60), |ids| ids.len() == 2).await;
    assert_eq!(back, [name(0), name(1)], "{victim} registered again");
    // A new process: its counter grows once the vehicles send to it again.
    let address = published_addresses(stack).await[&format!("ingest-{away}")].clone();
    let started = Instant::now();
    let mut served = 0.0;
    while served < 1.0 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        served = accepted_records(&metrics(&address).await);
    }
    eprintln!(
        "{how:?} {victim}: back, it accepted {served} events within {:?}",
        started.elapsed()
    );
    assert!(served >= 1.0, "the vehicles use {victim} again");
    let verify = stack.fleet(&["verify"]).await;
    assert!(
        verify.status.success(),
        "{how:?} {victim}: every acknowledged event stored, no seq gap"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ingest_and_two_consumer_replicas_serve_the_stack() {
    let stack = TestStack::new(
        "replicas",
        &[
            ("FLEET_INGEST__REPLICAS", "2"),
            ("FLEET_CONSUMER__REPLICAS", "2"),
            ("FLEET_BROKER__PARTITIONS", "3"),
        ],
    );
    stack.fleet_ok(&["launch-infra"]).await;

    // Every replica and the balancer are containers of their own, ready, on published ports.
    let published = published_addresses(&stack).await;
    for name in [
        "ingest-lb",
        "ingest-0",
        "ingest-1",
        "consumer-0",
        "consumer-1",
    ] {
        assert!(
            published.contains_key(name),
            "{name} in status: {published:?}"
        );
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
        let accepted = accepted_records(&text);
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

    // An ingest replica taken away while the vehicles run, stopped (SIGTERM) and then the other
    // one killed (SIGKILL): the vehicles move to the remaining replica without losing an event,
    // and use the replica again once it is back.
    let zk = Admin::connect(
        &format!("127.0.0.1:{}", stack.env["FLEET_ZOOKEEPER__HOST_PORT"]),
        &stack.name,
        None,
        Duration::from_secs(20),
    )
    .await
    .expect("reach ZooKeeper from the host");
    replica_away(&stack, &zk, &pg, &vin, 1, Away::Stopped).await;
    replica_away(&stack, &zk, &pg, &vin, 0, Away::Killed).await;

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
