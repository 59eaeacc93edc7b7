//! Network partitions made through the Docker API, through the real `fleet` commands: while 3
//! vehicles report, the broker is disconnected from the stack network for 20 s (ingest answers
//! 503, the vehicles keep their events), and separately the consumer is disconnected from it
//! (and so from PostgreSQL and the broker) for 20 s. After each, every service is ready again
//! without help; at the end `fleet verify` finds every acknowledged event stored with no `seq`
//! gap, no event is stored twice and nothing is dead-lettered.
//!
//! The stack runs under a name and host ports of its own; a guard tears it down also when an
//! assertion fails.

mod support;

use std::time::Duration;

use support::TestStack;
use support::stream::{diag_rows, docker, end_offsets};

/// How long each partition lasts.
const PARTITION: Duration = Duration::from_secs(20);

/// Cuts `service`'s container off the stack network for [`PARTITION`], then reconnects it and
/// waits until every service is ready again.
async fn partition(stack: &TestStack, service: &str) {
    let network = format!("{}-net", stack.name);
    let container = format!("{}-{service}", stack.name);
    docker(&["network", "disconnect", &network, &container]).await;
    tokio::time::sleep(PARTITION).await;
    docker(&["network", "connect", &network, &container]).await;
    stack.wait_all_ready(Duration::from_secs(120)).await;
}

#[tokio::test]
async fn partitions_lose_nothing_and_heal_by_themselves() {
    let stack = TestStack::new("part", &[]);
    stack.fleet_ok(&["launch-infra"]).await;
    stack
        .fleet_ok(&["launch-fleet", "--num-vehicles", "3"])
        .await;
    let pg = stack.postgres().await;

    for service in ["broker", "consumer"] {
        partition(&stack, service).await;
        // Stored again after the partition healed.
        let healed = diag_rows(&pg).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            diag_rows(&pg).await > healed,
            "rows arrive again after the {service} partition"
        );
    }

    let verify = stack.fleet(&["verify", "--timeout", "90s"]).await;
    assert!(
        verify.status.success(),
        "fleet verify passes after both partitions"
    );
    let duplicates: i64 = pg
        .query_one(
            "SELECT count(*) - count(DISTINCT (vin, seq)) FROM diag WHERE vin NOT LIKE '9FL%'",
            &[],
        )
        .await
        .expect("count duplicates")
        .get(0);
    assert_eq!(duplicates, 0, "no event stored twice");
    let bootstrap = stack.kafka_bootstrap().await;
    let dead: i64 = end_offsets(&bootstrap, "telemetry.dlq")
        .await
        .values()
        .sum();
    assert_eq!(dead, 0, "nothing was dead-lettered");
}
