//! ZooKeeper as the fleet's registry, against a real stack: every ingest, consumer and vehicle
//! container registers an ephemeral member node; a killed vehicle container's node vanishes
//! when its session expires (`zookeeper.session_timeout`); `fleet config set
//! vehicles.report_interval=250ms` raises the event rate of the running fleet within seconds;
//! `fleet config set ingest.rate_limit_per_vin=10` makes ingest answer a faster client 429 with
//! `Retry-After` within seconds, and 0 turns the limit off again; ZooKeeper stopped for 15 s and
//! started again loses no event (`fleet verify` green) and every member registers again.
//!
//! ZooKeeper is read from the host through its published port with the same client the
//! services use (`fleet-registry`, built on `zookeeper-client`).

mod support;

use std::time::{Duration, Instant};

use fleet_common::{EventTime, TelemetryEvent, Vin};
use fleet_registry::{Admin, Member, ROLE_CONSUMER, ROLE_INGEST, ROLE_VEHICLE};
use support::TestStack;
use support::stream::docker;
use uuid::Uuid;

/// Vehicle containers launched (one vehicle each).
const VEHICLES: usize = 2;
/// The live per-vehicle rate limit set while the vehicles send 4 events/s each.
const RATE_LIMIT: u32 = 10;
/// World manufacturer identifier of the test's own client's VIN (not a simulated vehicle).
const CLIENT_WMI: &str = "9RL";

/// The services' session timeout: `zookeeper.session_timeout` of the configuration the stack
/// is launched with (the file and the `FLEET_*` overrides, the stack's own last).
fn session_timeout(stack: &TestStack) -> Duration {
    let file = support::config_file();
    let text = std::fs::read_to_string(&file).expect("read the config file");
    let env = std::env::vars().chain(stack.env.clone());
    fleet_common::config::load_from_str(&text, &file.display().to_string(), env)
        .expect("the stack's configuration loads")
        .zookeeper
        .session_timeout
}

async fn admin(stack: &TestStack) -> Admin {
    let address = format!("127.0.0.1:{}", stack.env["FLEET_ZOOKEEPER__HOST_PORT"]);
    // Reading needs no identity: anyone may read the registry.
    Admin::connect(&address, &stack.name, None, Duration::from_secs(20))
        .await
        .expect("reach ZooKeeper from the host")
}

/// A ZooKeeper client from the host without the stack's identity (what any process on the
/// host can do): it reads the members and the configuration, and is refused (`NoAuth`) when
/// it plants a fake ingest member (which would redirect the vehicles), overwrites the
/// configuration, opens or locks the stack's folder (`setAcl`), or creates a node in `/fleet`.
async fn registry_is_read_only_without_the_stacks_identity(stack: &TestStack) {
    use zookeeper_client::{Acl, Acls, AuthId, Client, CreateMode, Error as ZkError, Permission};
    let address = format!("127.0.0.1:{}", stack.env["FLEET_ZOOKEEPER__HOST_PORT"]);
    let stranger = Client::connect(&address)
        .await
        .expect("connect without credentials");
    let root = format!("/fleet/{}", stack.name);
    let config = format!("{root}/config");
    let (data, _) = stranger
        .get_data(&config)
        .await
        .expect("anyone reads the config");
    assert!(!data.is_empty());
    let ingest = format!("{root}/members/ingest");
    let members = stranger
        .list_children(&ingest)
        .await
        .expect("anyone lists members");
    assert!(!members.is_empty());
    let open = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
    // Everything to an identity of the stranger's own: fleet locked out.
    let locked_out = [Acl::new(
        Permission::ALL,
        AuthId::new("digest", "stranger:c3RyYW5nZXJzLWhhc2g="),
    )];
    let fake = br#"{"address":"http://attacker:8080","runs":[]}"#;
    let refused = [
        (
            "a fake ingest member",
            stranger
                .create(&format!("{ingest}/fake"), fake, &open)
                .await
                .map(drop),
        ),
        (
            "a node in the stack's folder",
            stranger
                .create(&format!("{root}/planted"), b"x", &open)
                .await
                .map(drop),
        ),
        (
            "another stack's folder in /fleet",
            stranger
                .create("/fleet/planted", b"x", &open)
                .await
                .map(drop),
        ),
        (
            "setData on the config",
            stranger.set_data(&config, b"{}", None).await.map(drop),
        ),
        (
            "setAcl on the stack's folder",
            stranger.set_acl(&root, &locked_out, None).await.map(drop),
        ),
        (
            "setAcl on the config",
            stranger
                .set_acl(&config, &Acls::anyone_all(), None)
                .await
                .map(drop),
        ),
        (
            "deleting an ingest member",
            stranger
                .delete(&format!("{ingest}/{}", members[0]), None)
                .await,
        ),
    ];
    for (what, result) in refused {
        assert!(
            matches!(result, Err(ZkError::NoAuth)),
            "{what} without the stack's identity: {result:?}"
        );
    }
    let (after, _) = stranger.get_data(&config).await.unwrap();
    assert_eq!(after, data, "the config is unchanged");
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

/// Rows stored in `diag` for the simulated vehicles (VIN not of a `fleet verify` probe nor of
/// the test's own client).
async fn vehicle_rows(pg: &tokio_postgres::Client) -> i64 {
    let query = format!(
        "SELECT count(*) FROM diag WHERE vin NOT LIKE '9FL%' AND vin NOT LIKE '{CLIENT_WMI}%'"
    );
    pg.query_one(&query, &[]).await.expect("count rows").get(0)
}

/// Rows per second stored over `window` (starting after the pipeline's delay has settled).
async fn row_rate(pg: &tokio_postgres::Client, window: Duration) -> f64 {
    let before = vehicle_rows(pg).await;
    tokio::time::sleep(window).await;
    let after = vehicle_rows(pg).await;
    (after - before) as f64 / window.as_secs_f64()
}

/// Posts one event of `vin` (the next `seq`); returns the status and `Retry-After`.
async fn post_one(
    http: &reqwest::Client,
    stack: &TestStack,
    vin: &Vin,
    seq: &mut u64,
) -> (u16, Option<String>) {
    let event = TelemetryEvent::example(
        Uuid::new_v4(),
        vin.clone(),
        *seq,
        EventTime(chrono::Utc::now()),
    );
    *seq += 1;
    let response = http
        .post(stack.events_url())
        .json(&event)
        .send()
        .await
        .expect("ingest answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().expect("ASCII header").to_owned());
    (response.status().as_u16(), retry_after)
}

/// Requests a client keeps in flight in [`post_for`].
const IN_FLIGHT: u64 = 4;

/// Statuses of one vehicle's events posted [`IN_FLIGHT`] at a time, as fast as ingest answers,
/// for `window`: (200s, 429s, events per second sent).
async fn post_for(
    http: &reqwest::Client,
    stack: &TestStack,
    vin: &Vin,
    seq: &mut u64,
    window: Duration,
) -> (u32, u32, f64) {
    let (mut ok, mut limited, mut sent) = (0, 0, 0);
    let started = Instant::now();
    while started.elapsed() < window {
        let round: Vec<_> = (0..IN_FLIGHT)
            .map(|i| {
                let mut seq = *seq + i;
                async move { post_one(http, stack, vin, &mut seq).await }
            })
            .collect();
        *seq += IN_FLIGHT;
        for (status, _) in futures::future::join_all(round).await {
            match status {
                200 => ok += 1,
                429 => limited += 1,
                other => panic!("POST /events answered {other}"),
            }
            sent += 1;
        }
    }
    (
        ok,
        limited,
        f64::from(sent) / started.elapsed().as_secs_f64(),
    )
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

    // Anyone else on the host reads the registry and changes nothing in it.
    registry_is_read_only_without_the_stacks_identity(&stack).await;

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

    // The per-vehicle rate limit, live: off as launched, then RATE_LIMIT events/s for a client
    // posting one vehicle's events much faster (the simulated vehicles send 4/s each and stay
    // under it), then off again; ingest follows without a restart.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("HTTP client");
    let vin = Vin::from_serial(CLIENT_WMI, u64::from(std::process::id()));
    let mut seq = 0;
    let (ok, limited, rate) = post_for(&http, &stack, &vin, &mut seq, Duration::from_secs(2)).await;
    eprintln!("rate limit off: {ok} accepted, {limited} refused at {rate:.0} events/s");
    assert_eq!(limited, 0, "no limit as launched ({ok} accepted)");
    assert!(
        rate > f64::from(RATE_LIMIT) * 3.0,
        "the client posts much faster than the limit to come: {rate:.0}/s"
    );
    stack
        .fleet_ok(&[
            "config",
            "set",
            &format!("ingest.rate_limit_per_vin={RATE_LIMIT}"),
        ])
        .await;
    let set = Instant::now();
    let refused = loop {
        match post_one(&http, &stack, &vin, &mut seq).await {
            (429, retry_after) => break Some(retry_after),
            (200, _) if set.elapsed() < Duration::from_secs(15) => {}
            (status, _) => {
                assert_eq!(status, 200, "POST /events");
                break None;
            }
        }
    };
    let applied_after = set.elapsed();
    eprintln!("the first 429 came {applied_after:?} after `config set`");
    let retry_after = refused
        .unwrap_or_else(|| panic!("no 429 within {applied_after:?} of setting the limit"))
        .expect("429 carries Retry-After");
    let retry_after: u64 = retry_after.parse().expect("Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    assert!(
        applied_after < Duration::from_secs(10),
        "ingest applied the live limit within seconds: {applied_after:?}"
    );
    let window = Duration::from_secs(3);
    let (ok, limited, rate) = post_for(&http, &stack, &vin, &mut seq, window).await;
    let allowed = f64::from(RATE_LIMIT) * (window.as_secs_f64() + 1.0);
    eprintln!(
        "rate limit {RATE_LIMIT}/s: {ok} accepted, {limited} refused in {window:?} at {rate:.0} events/s (at most {allowed:.0} allowed)"
    );
    assert!(limited > 0, "a client over the limit keeps getting 429");
    assert!(
        f64::from(ok) <= allowed + 1.0 && f64::from(ok) >= f64::from(RATE_LIMIT),
        "about {RATE_LIMIT}/s pass: {ok} in {window:?}"
    );
    stack
        .fleet_ok(&["config", "set", "ingest.rate_limit_per_vin=0"])
        .await;
    let set = Instant::now();
    // Off again: once ingest has applied it, a burst of 50 passes whole.
    let lifted = loop {
        let mut all_ok = true;
        for _ in 0..50 {
            all_ok &= post_one(&http, &stack, &vin, &mut seq).await.0 == 200;
        }
        if all_ok || set.elapsed() > Duration::from_secs(15) {
            break all_ok;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    eprintln!("the limit was lifted within {:?}", set.elapsed());
    assert!(
        lifted,
        "50 events of one vehicle at once pass again with the limit off"
    );
    let config = stack.fleet_ok(&["config", "get"]).await;
    assert!(config.contains("ingest.rate_limit_per_vin = 0"), "{config}");
    let session_timeout = session_timeout(&stack);

    // A vehicle container killed: until its session expires `fleet status` flags a member
    // whose container does not run; then its node vanishes.
    let victim = vehicles[1].clone();
    docker(&["kill", &victim.id]).await;
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
    let (after, _) = members_until(&zk, ROLE_VEHICLE, session_timeout * 4, |m| {
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
        vanished_after >= session_timeout / 2,
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
    docker(&["start", &victim.id]).await;
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
    docker(&["stop", &format!("{}-zookeeper", stack.name)]).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let rows_during = vehicle_rows(&pg).await;
    docker(&["start", &format!("{}-zookeeper", stack.name)]).await;
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
