//! ZooKeeper as the fleet's registry, against a real stack: every ingest, consumer and vehicle
//! container registers an ephemeral member node; a killed vehicle container's node vanishes
//! when its session expires; `fleet config set vehicles.report_interval=250ms` raises the
//! event rate of the running fleet within seconds; ZooKeeper stopped for 15 s and started
//! again loses no event (`fleet verify` green) and every member registers again.
//!
//! ZooKeeper is read from the host through its published port with the same client the
//! services use (`fleet-registry`, built on `zookeeper-client`).

mod support;

use std::time::{Duration, Instant};

use fleet_registry::{Admin, Member, ROLE_CONSUMER, ROLE_INGEST, ROLE_VEHICLE};
use support::TestStack;

/// Vehicle containers launched (one vehicle each).
const VEHICLES: usize = 2;
/// The services' session timeout (`plan::REGISTRY_SESSION_TIMEOUT`).
const SESSION_TIMEOUT: Duration = Duration::from_secs(6);

async fn admin(stack: &TestStack) -> Admin {
    let address = format!("127.0.0.1:{}", stack.env["FLEET_ZOOKEEPER__HOST_PORT"]);
    Admin::connect(&address, &stack.name, Duration::from_secs(20))
        .await
        .expect("reach ZooKeeper from the host")
}

/// Polls `role`'s members until `done` holds or `limit` passes; returns the last list.
async fn members_until(
    admin: &Admin,
    role: &str,
    limit: Duration,
    done: impl Fn(&[Member]) -> bool,
) -> (Vec<Member>, Duration) {
    let started = Instant::now();
    loop {
        let members = admin.members(role).await.expect("list members");
        if done(&members) || started.elapsed() > limit {
            return (members, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Rows stored in `diag` for the simulated vehicles (VIN not of a `fleet verify` probe).
async fn vehicle_rows(pg: &tokio_postgres::Client) -> i64 {
    pg.query_one("SELECT count(*) FROM diag WHERE vin NOT LIKE '9FL%'", &[])
        .await
        .expect("count rows")
        .get(0)
}

/// Rows per second stored over `window` (starting after the pipeline's delay has settled).
async fn row_rate(pg: &tokio_postgres::Client, window: Duration) -> f64 {
    let before = vehicle_rows(pg).await;
    tokio::time::sleep(window).await;
    let after = vehicle_rows(pg).await;
    (after - before) as f64 / window.as_secs_f64()
}

fn docker(args: &[&str]) {
    let status = std::process::Command::new("docker")
        .args(args)
        .status()
        .expect("docker runs");
    assert!(status.success(), "docker {args:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn registry_members_live_config_and_zookeeper_outage() {
    let stack = TestStack::new("registry", &[]);
    stack.fleet_ok(&["launch-infra"]).await;
    stack
        .fleet_ok(&[
            "launch-fleet",
            "--num-vehicles",
            &VEHICLES.to_string(),
            "--per-container",
            "1",
        ])
        .await;
    let zk = admin(&stack).await;

    // Members: ingest, consumer and every vehicle container, named after its container, the
    // vehicles with their VINs.
    for role in [ROLE_INGEST, ROLE_CONSUMER] {
        let (members, _) =
            members_until(&zk, role, Duration::from_secs(30), |m| !m.is_empty()).await;
        assert!(!members.is_empty(), "no live {role} member");
        for m in &members {
            assert!(m.id.starts_with(&format!("{}-{role}", stack.name)), "{m:?}");
            assert!(
                m.info.address.starts_with(&format!("http://{}:", m.id)),
                "{m:?}"
            );
        }
    }
    let (vehicles, _) = members_until(&zk, ROLE_VEHICLE, Duration::from_secs(30), |m| {
        m.len() == VEHICLES
    })
    .await;
    let ids: Vec<&str> = vehicles.iter().map(|m| m.id.as_str()).collect();
    let expected: Vec<String> = (0..VEHICLES)
        .map(|i| format!("{}-vehicle-{i}", stack.name))
        .collect();
    assert_eq!(ids, expected, "one member per vehicle container");
    for m in &vehicles {
        assert_eq!(m.info.runs.len(), 1, "{m:?}");
        assert_eq!(m.info.runs[0].len(), 17, "a VIN: {m:?}");
    }
    let status = stack.fleet_ok(&["status"]).await;
    assert!(status.contains("registry"), "{status}");
    assert!(!status.contains("DIFFERENCE"), "{status}");

    // Live configuration: written by launch-infra, changed while the fleet runs.
    let config = stack.fleet_ok(&["config", "get"]).await;
    assert!(config.contains("vehicles.report_interval = 1s"), "{config}");
    let refused = stack
        .fleet_quiet(&["config", "set", "vehicles.report_speed=2"])
        .await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("vehicles.report_speed"),
        "the error names the key"
    );
    let pg = stack.postgres().await;
    let slow = row_rate(&pg, Duration::from_secs(10)).await;
    stack
        .fleet_ok(&["config", "set", "vehicles.report_interval=250ms"])
        .await;
    // The vehicles follow within a report or two; then the rows follow through the pipeline.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let fast = row_rate(&pg, Duration::from_secs(10)).await;
    eprintln!("rows/s with 1s: {slow:.2}, with 250ms: {fast:.2} (expected 4x)");
    assert!(
        (1.4..=2.8).contains(&slow),
        "2 vehicles at 1s give about 2 rows/s: {slow:.2}"
    );
    assert!(
        fast >= slow * 3.0 && fast <= slow * 5.0,
        "the rate follows the live interval: {slow:.2} -> {fast:.2} rows/s"
    );
    let config = stack.fleet_ok(&["config", "get"]).await;
    assert!(
        config.contains("vehicles.report_interval = 250ms"),
        "{config}"
    );

    // A vehicle container killed: until its session expires `fleet status` flags a member
    // whose container does not run; then its node vanishes.
    let victim = vehicles[1].clone();
    docker(&["kill", &victim.id]);
    let killed = Instant::now();
    let status = stack.fleet_quiet(&["status"]).await;
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    let still_listed = zk
        .members(ROLE_VEHICLE)
        .await
        .expect("list members")
        .iter()
        .any(|m| m.session == victim.session);
    if still_listed {
        assert!(
            status.contains(&format!(
                "DIFFERENCE vehicle: member {} is registered but its container does not run",
                victim.id
            )),
            "status flags the dead member: {status}"
        );
    }
    let (after, _) = members_until(&zk, ROLE_VEHICLE, SESSION_TIMEOUT * 4, |m| {
        !m.iter().any(|m| m.session == victim.session)
    })
    .await;
    let vanished_after = killed.elapsed();
    eprintln!("the killed vehicle's node vanished after {vanished_after:?}");
    assert!(
        !after.iter().any(|m| m.session == victim.session),
        "the killed container's node is still there after {vanished_after:?}: {after:?}"
    );
    assert!(
        vanished_after >= SESSION_TIMEOUT / 2,
        "the node went with the session, not earlier: {vanished_after:?}"
    );
    let verify = stack.fleet_quiet(&["verify", "--timeout", "10s"]).await;
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(
        !verify.status.success()
            && report.contains("FAIL live vehicles in the registry equal the vehicles launched"),
        "verify counts {} live of {VEHICLES}: {report}",
        VEHICLES - 1
    );
    // Back to the full fleet.
    docker(&["start", &victim.id]);
    let (back, _) = members_until(&zk, ROLE_VEHICLE, Duration::from_secs(30), |m| {
        m.len() == VEHICLES
    })
    .await;
    assert_eq!(
        back.len(),
        VEHICLES,
        "the restarted container registers again"
    );

    // ZooKeeper away for 15 s: members keep running on their last configuration, register
    // again when it is back, and no event is lost.
    let rows_before = vehicle_rows(&pg).await;
    docker(&["stop", &format!("{}-zookeeper", stack.name)]);
    tokio::time::sleep(Duration::from_secs(15)).await;
    let rows_during = vehicle_rows(&pg).await;
    docker(&["start", &format!("{}-zookeeper", stack.name)]);
    assert!(
        rows_during - rows_before >= 15 * 4,
        "the fleet kept reporting at 250ms without ZooKeeper: {} rows in 15 s",
        rows_during - rows_before
    );
    let zk = admin(&stack).await;
    // The outage outlasted the sessions: the vehicles registered again in new sessions (the
    // restored nodes of the old ones are replaced).
    let old_sessions: Vec<i64> = back.iter().map(|m| m.session).collect();
    let (renewed, took) = members_until(&zk, ROLE_VEHICLE, Duration::from_secs(60), |m| {
        m.len() == VEHICLES && m.iter().all(|m| !old_sessions.contains(&m.session))
    })
    .await;
    eprintln!("vehicles registered in new sessions after {took:?}");
    assert!(
        renewed.len() == VEHICLES && renewed.iter().all(|m| !old_sessions.contains(&m.session)),
        "every vehicle registered again in a new session: {renewed:?} (old {old_sessions:?})"
    );
    for (role, count) in [
        (ROLE_INGEST, 1),
        (ROLE_CONSUMER, 1),
        (ROLE_VEHICLE, VEHICLES),
    ] {
        let (members, took) =
            members_until(&zk, role, Duration::from_secs(60), |m| m.len() >= count).await;
        eprintln!("{role}: {} member(s) back after {took:?}", members.len());
        assert!(
            members.len() >= count,
            "{role} registered again: {members:?}"
        );
    }
    let config = stack.fleet_ok(&["config", "get"]).await;
    assert!(
        config.contains("vehicles.report_interval = 250ms"),
        "the live config survived the restart: {config}"
    );
    let verify = stack.fleet(&["verify"]).await;
    assert!(verify.status.success(), "no event lost, every vehicle live");
}
