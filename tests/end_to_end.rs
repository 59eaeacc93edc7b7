//! End to end, through the real `fleet` commands and real containers: launch the
//! infrastructure (twice: the second run must change nothing), launch 3 vehicles, wait until
//! every vehicle has at least 5 rows in `diag` with `seq` contiguous from 0, compare the events
//! endpoint's count with the rows, run `fleet verify`, tear down, and check that nothing of
//! the stack is left.
//!
//! The test runs under a stack name and host ports of its own, so it cannot touch another
//! stack; a guard tears the stack down also when an assertion fails.

mod support;

use std::time::{Duration, Instant};

use fleet_orchestrator::docker::Docker;
use support::TestStack;

/// Vehicles launched.
const VEHICLES: i64 = 3;
/// Rows each vehicle must have.
const ROWS_PER_VEHICLE: i64 = 5;

async fn container_ids(docker: &Docker, stack: &str) -> Vec<(String, String)> {
    docker
        .list_stack_containers(stack, None)
        .await
        .expect("list containers")
        .into_iter()
        .map(|c| (c.name, c.id))
        .collect()
}

/// Every container runs without capabilities, with no-new-privileges and limits, as a non-root
/// user on a read-only root; no container's environment holds the password.
async fn assert_hardened(stack: &TestStack) {
    let raw = bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let password = std::fs::read_to_string(stack.state_dir.join("postgres-password")).unwrap();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(stack.state_dir.join("postgres-password"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "the password file is private");
    // Every container of the stack: the infrastructure and the vehicles.
    let containers = Docker::connect()
        .await
        .expect("the Docker engine answers")
        .list_stack_containers(&stack.name, None)
        .await
        .expect("list containers");
    let services: Vec<&str> = containers.iter().map(|c| c.service.as_str()).collect();
    for service in [
        "zookeeper",
        "broker-storage",
        "broker",
        "broker-host",
        "postgres",
        "ingest",
        "consumer",
        "vehicle",
    ] {
        assert!(services.contains(&service), "a {service} container runs");
    }
    for container in &containers {
        let name = &container.name;
        let inspect = raw.inspect_container(name, None).await.expect("inspect");
        let host = inspect.host_config.expect("host config");
        let config = inspect.config.expect("config");
        assert_eq!(
            host.cap_drop,
            Some(vec!["ALL".to_owned()]),
            "{name} drops capabilities"
        );
        assert!(
            host.security_opt
                .unwrap_or_default()
                .iter()
                .any(|o| o.starts_with("no-new-privileges")),
            "{name} forbids new privileges"
        );
        assert!(
            host.memory.unwrap_or(0) > 0 && host.pids_limit.unwrap_or(0) > 0,
            "{name} limits"
        );
        let user = config.user.unwrap_or_default();
        assert!(
            !user.is_empty() && user != "root" && user != "0",
            "{name} runs as {user:?}"
        );
        let storage_password =
            std::fs::read_to_string(stack.state_dir.join("broker-storage-password"))
                .expect("the broker storage's password file exists after launch");
        for var in config.env.unwrap_or_default() {
            for secret in [password.trim_end(), storage_password.trim_end()] {
                assert!(!var.contains(secret), "{name} has a password in {var:?}");
            }
        }
        for mount in inspect.mounts.unwrap_or_default() {
            assert_ne!(
                mount.source.as_deref(),
                Some("/var/run/docker.sock"),
                "{name} mounts the Docker socket"
            );
        }
        assert_eq!(
            host.readonly_rootfs,
            Some(true),
            "{name} has a read-only root"
        );
    }
}

/// The consumer's aggregates equal a brute-force recomputation from `diag`, read in one
/// snapshot (the consumer writes rows and aggregates in one transaction).
async fn assert_analytics_match_diag(pg: &tokio_postgres::Client) {
    let queries = [
        (
            "per-vehicle summary",
            "SELECT vin::text, count(*), min(ts), max(ts) FROM diag GROUP BY vin ORDER BY vin",
            "SELECT vin, events, first_seen, last_seen FROM vehicle_summary ORDER BY vin",
        ),
        (
            "per-second windows",
            "SELECT date_trunc('second', ts), count(*), count(DISTINCT vin) FROM diag GROUP BY 1 ORDER BY 1",
            "SELECT window_start, events, vehicles FROM window_metrics WHERE granularity = 'second' ORDER BY 1",
        ),
        (
            "per-minute windows",
            "SELECT date_trunc('minute', ts), count(*), count(DISTINCT vin) FROM diag GROUP BY 1 ORDER BY 1",
            "SELECT window_start, events, vehicles FROM window_metrics WHERE granularity = 'minute' ORDER BY 1",
        ),
        (
            "per-model counts",
            "SELECT make::text, model::text, count(*), count(DISTINCT vin) FROM diag GROUP BY 1, 2 ORDER BY 1, 2",
            "SELECT make, model, events, vehicles FROM make_model_counts WHERE model <> '' ORDER BY 1, 2",
        ),
    ];
    pg.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .await
        .unwrap();
    for (what, brute, aggregate) in queries {
        let expected = pg.query(brute, &[]).await.expect(brute);
        let got = pg.query(aggregate, &[]).await.expect(aggregate);
        let render = |rows: &[tokio_postgres::Row]| -> Vec<String> {
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| match r.columns()[i].type_().name() {
                            "int8" => r.get::<_, i64>(i).to_string(),
                            "timestamptz" => {
                                r.get::<_, chrono::DateTime<chrono::Utc>>(i).to_rfc3339()
                            }
                            _ => r.get::<_, String>(i),
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect()
        };
        assert_eq!(render(&got), render(&expected), "{what} differs from diag");
    }
    pg.batch_execute("COMMIT").await.unwrap();
}

/// Per VIN: (rows, min seq, max seq, distinct seqs).
async fn rows_per_vehicle(client: &tokio_postgres::Client) -> Vec<(String, i64, i64, i64, i64)> {
    client
        .query(
            "SELECT vin::text, count(*), min(seq), max(seq), count(DISTINCT seq) FROM diag GROUP BY vin ORDER BY vin",
            &[],
        )
        .await
        .expect("query diag")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

/// Creates a scratch topic, produces to it and reads it back in a consumer group, all from the
/// host through the broker's published port.
async fn host_kafka_round_trip(bootstrap: &str) {
    use rdkafka::ClientConfig;
    use rdkafka::Message;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::consumer::{Consumer, StreamConsumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};

    let topic = format!("host-check-{}", std::process::id());
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    let admin: AdminClient<DefaultClientContext> = config.create().expect("admin client");
    admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create topic from the host");
    let producer: FutureProducer = config
        .clone()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for i in 0..3 {
        let payload = format!("hello-{i}");
        producer
            .send(
                FutureRecord::to(&topic).key("k").payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("produce from the host: {e}"));
    }
    let consumer: StreamConsumer = config
        .clone()
        .set("group.id", format!("{topic}-group"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let message = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("a message within 60 s from the host consumer")
            .expect("consume from the host");
        seen.push(String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned());
    }
    assert_eq!(seen, ["hello-0", "hello-1", "hello-2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn events_flow_from_vehicles_to_postgres() {
    let stack = TestStack::new("e2e-flow", &[]);
    let docker = Docker::connect().await.expect("the Docker engine answers");

    let out = stack.fleet_ok(&["launch-infra"]).await;
    let events_url = stack.events_url();
    assert!(
        out.contains(&events_url),
        "launch-infra prints the events URL: {out}"
    );

    // A second launch changes nothing: same containers, same ids.
    let before = container_ids(&docker, &stack.name).await;
    assert_eq!(
        before.len(),
        7,
        "seven infrastructure containers (with the broker's storage): {before:?}"
    );
    stack.fleet_ok(&["launch-infra"]).await;
    assert_eq!(container_ids(&docker, &stack.name).await, before);

    stack
        .fleet_ok(&["launch-fleet", "--num-vehicles", &VEHICLES.to_string()])
        .await;
    assert_hardened(&stack).await;

    let pg = stack.postgres().await;
    let started = Instant::now();
    let rows = loop {
        let rows = rows_per_vehicle(&pg).await;
        let enough = rows.len() as i64 == VEHICLES && rows.iter().all(|r| r.1 >= ROWS_PER_VEHICLE);
        if enough {
            break rows;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "vehicles did not reach {ROWS_PER_VEHICLE} rows each in 120 s: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for (vin, count, min, max, distinct) in &rows {
        assert_eq!(vin.len(), 17, "{vin}");
        assert_eq!(*min, 0, "{vin}: seq starts at 0");
        assert_eq!(*distinct, *count, "{vin}: no duplicate seq");
        assert_eq!(*max, count - 1, "{vin}: seq contiguous from 0");
    }
    let duplicates: i64 = pg
        .query_one("SELECT count(*) - count(DISTINCT event_id) FROM diag", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(duplicates, 0, "no event stored twice");

    assert_analytics_match_diag(&pg).await;

    // The events endpoint counts at least what is stored. Ingest reads the topic's watermarks at
    // most every 500 ms (`TopicCounts::TTL`), and a row is now stored well within that after its
    // POST: the reading asked for here must be taken after the count, so wait out the cache.
    let stored: i64 = pg
        .query_one("SELECT count(*) FROM diag", &[])
        .await
        .unwrap()
        .get(0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let json: serde_json::Value = reqwest::Client::new()
        .get(&events_url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("GET /events")
        .json()
        .await
        .expect("JSON from /events");
    let received = json["events_received"]
        .as_i64()
        .expect("events_received is a number");
    assert!(
        received >= stored,
        "events_received {received} < rows {stored}"
    );
    let page = reqwest::get(&events_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<html"), "a browser gets a page");

    // `fleet verify`: probes through ingest into Kafka and diag, no seq gap per vehicle.
    let verify = stack.fleet_ok(&["verify", "--probes", "10"]).await;
    assert!(verify.contains("verify: all checks passed"), "{verify}");

    // Kafka clients on the host produce and consume through the published port.
    host_kafka_round_trip(&stack.kafka_bootstrap().await).await;

    let status: serde_json::Value =
        serde_json::from_str(&stack.fleet_ok(&["status", "--json"]).await).expect("status JSON");
    assert_eq!(status["all_ready"], true, "{status}");
    assert!(status["rows_stored"].as_i64() >= Some(stored), "{status}");
    assert!(
        status["consumer_lag"]
            .as_array()
            .is_some_and(|l| !l.is_empty()),
        "{status}"
    );
    assert_eq!(status["events_url"], events_url.as_str());
    assert_eq!(
        status["vehicle_containers"].as_array().map(Vec::len),
        Some(VEHICLES as usize)
    );

    // launch-fleet with another N scales the fleet to N.
    stack
        .fleet_ok(&["launch-fleet", "--num-vehicles", "2"])
        .await;
    let vehicles = docker
        .list_stack_containers(&stack.name, Some("vehicle"))
        .await
        .unwrap();
    assert_eq!(vehicles.len(), 2, "scaled down to 2: {vehicles:?}");

    // --fleet-only removes the vehicles and nothing else.
    stack.fleet_ok(&["teardown", "--fleet-only"]).await;
    assert_eq!(container_ids(&docker, &stack.name).await, before);

    stack.fleet_ok(&["teardown"]).await;
    assert!(
        docker
            .list_stack_containers(&stack.name, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        docker
            .list_stack_networks(&stack.name)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        docker
            .list_stack_volumes(&stack.name)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!stack.state_dir.exists(), "the state directory is removed");
}
