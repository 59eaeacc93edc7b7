//! The fleet across several Docker hosts: three extra Docker daemons on this machine, one per
//! network namespace (`tests/support/swarm_nodes.sh`), become a swarm that `fleet launch-infra`
//! forms. fleet reaches the second node over TCP+TLS with client certificates and the third over
//! SSH, as it would remote hosts, and the first through its socket. It copies the images into
//! them; the stateful services stay on the first node and the vehicles spread over the others.
//! A first launch that fails in its last wave leaves nothing behind; a relaunch that changes a
//! service and fails puts it back. `fleet verify` passes after launching, scaling up and down
//! and draining a node; after teardown nothing labelled with the stack is left on any daemon,
//! and the main engine's swarm state is what it was. The daemons, namespaces, cgroup folders and
//! roots go away when the test ends, also when it fails.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::TestStack;

const NODES: usize = 3;

/// The extra daemons; dropping them removes everything the harness made.
struct Nodes {
    root: PathBuf,
    /// (name, address, socket) per node.
    nodes: Vec<(String, String, String)>,
    /// How fleet reaches each node, by node index: `-` (its socket), `tls:DIR` (TCP+TLS with the
    /// client's ca.pem, cert.pem and key.pem in DIR) or `ssh:KEY` (SSH as root with KEY).
    remote: Vec<String>,
}

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/support/swarm_nodes.sh")
}

impl Nodes {
    fn up(count: usize) -> Self {
        let root = std::env::temp_dir().join("fleet-swarm-nodes");
        // A crashed run may have left daemons or namespaces: the harness removes them first.
        let output = Command::new(harness())
            .args(["up", &root.display().to_string(), &count.to_string()])
            .output()
            .expect("run the node harness");
        let lines: Vec<Vec<String>> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| l.split_whitespace().map(String::from).collect())
            .filter(|f: &Vec<String>| f.len() == 4)
            .collect();
        let nodes = Self {
            root,
            nodes: lines
                .iter()
                .map(|f| (f[0].clone(), f[1].clone(), f[2].clone()))
                .collect(),
            remote: lines.iter().map(|f| f[3].clone()).collect(),
        };
        assert!(
            output.status.success() && nodes.nodes.len() == count,
            "the extra Docker daemons did not start (an environment fault): {}",
            String::from_utf8_lossy(&output.stderr)
        );
        nodes
    }

    /// `docker -H <node> args...` stdout, asserting success.
    fn docker(&self, node: usize, args: &[&str]) -> String {
        let host = format!("unix://{}", self.nodes[node].2);
        let output = Command::new("docker")
            .args(["-H", &host])
            .args(args)
            .output()
            .expect("docker CLI runs");
        assert!(
            output.status.success(),
            "docker {args:?} on {}: {}",
            self.nodes[node].0,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `[target.swarm]` as an inline TOML table: the first node a manager holding the
    /// stateful services, the others workers labelled for load; the node that serves TCP+TLS
    /// is reached that way, the others through their sockets.
    fn swarm_toml(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, (name, address, socket))| {
                let (role, labels) = if i == 0 {
                    ("manager", "{ fleet-tier = \"state\" }")
                } else {
                    ("worker", "{ fleet-tier = \"load\" }")
                };
                let remote = &self.remote[i];
                let engine = if let Some(dir) = remote.strip_prefix("tls:") {
                    format!(
                        "{{ url = \"tcp://{address}:2376\", tls_ca = \"{dir}/ca.pem\", tls_cert = \"{dir}/cert.pem\", tls_key = \"{dir}/key.pem\" }}"
                    )
                } else if let Some(key) = remote.strip_prefix("ssh:") {
                    format!("{{ url = \"ssh://root@{address}\", ssh_key = \"{key}\" }}")
                } else {
                    format!("{{ url = \"unix://{socket}\" }}")
                };
                format!(
                    "{{ name = \"{name}\", address = \"{address}\", role = \"{role}\", engine = {engine}, labels = {labels} }}"
                )
            })
            .collect();
        format!(
            "{{ stateful_node = \"{}\", stop_grace = \"3s\", nodes = [{}] }}",
            self.nodes[0].0,
            nodes.join(", ")
        )
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        let status = Command::new(harness())
            .args(["down", &self.root.display().to_string()])
            .status();
        eprintln!("swarm nodes removed: {status:?}");
    }
}

fn main_engine_swarm_state() -> String {
    let output = Command::new("docker")
        .args([
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}",
        ])
        .output()
        .expect("docker CLI runs");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

async fn status(stack: &TestStack) -> serde_json::Value {
    let output = stack.fleet_quiet(&["status", "--json"]).await;
    serde_json::from_slice(&output.stdout).expect("status JSON")
}

/// Running vehicle tasks per node, from `fleet status --json`.
async fn vehicles_per_node(stack: &TestStack) -> Vec<(String, usize)> {
    let status = status(stack).await;
    status["swarm_nodes"]
        .as_array()
        .expect("swarm nodes in the status")
        .iter()
        .map(|n| {
            let vehicles = n["tasks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| t.as_str().unwrap().contains("-vehicle-"))
                .count();
            (n["name"].as_str().unwrap().to_owned(), vehicles)
        })
        .collect()
}

async fn launch_fleet(stack: &TestStack, vehicles: usize) {
    let started = Instant::now();
    stack
        .fleet_ok(&["launch-fleet", "--num-vehicles", &vehicles.to_string()])
        .await;
    let per_node = vehicles_per_node(stack).await;
    eprintln!(
        "{vehicles} vehicle(s) in {:.1} s: {per_node:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        per_node.iter().map(|(_, n)| n).sum::<usize>(),
        vehicles,
        "{per_node:?}"
    );
}

async fn verify(stack: &TestStack) {
    let started = Instant::now();
    stack.fleet_ok(&["verify", "--timeout", "90s"]).await;
    eprintln!("verify passed in {:.1} s", started.elapsed().as_secs_f64());
}

/// Runs `launch-infra` with a consumer that cannot be ready in 1 ms; asserts that it fails and
/// returns its stderr.
/// `launch-infra` with a 1 ms consumer timeout and `extra` settings; it must fail.
async fn failing_launch(stack: &TestStack, extra: &[(&str, &str)]) -> String {
    let mut env = stack.env.clone();
    env.insert("FLEET_CONSUMER__START_TIMEOUT".into(), "1ms".into());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let output = support::fleet(&env, &["launch-infra"]).await;
    assert!(
        !output.status.success(),
        "launch-infra with a 1 ms consumer timeout"
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

async fn rows(stack: &TestStack, address: &str) -> i64 {
    stack
        .postgres_at(address)
        .await
        .query_one("SELECT count(*) FROM diag", &[])
        .await
        .expect("count rows")
        .get(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_fleet_runs_across_three_swarm_nodes() {
    let main_before = main_engine_swarm_state();
    let nodes = Nodes::up(NODES);
    for kind in ["tls:", "ssh:"] {
        assert_eq!(
            nodes.remote.iter().filter(|r| r.starts_with(kind)).count(),
            1,
            "one node reached by {kind} {:?}",
            nodes.remote
        );
    }
    let swarm = nodes.swarm_toml();
    let stack = TestStack::new(
        "swarm",
        &[
            ("FLEET_TARGET__KIND", "swarm"),
            ("FLEET_TARGET__SWARM", &swarm),
            ("FLEET_ZOOKEEPER__START_TIMEOUT", "180s"),
            ("FLEET_POSTGRES__START_TIMEOUT", "180s"),
            ("FLEET_BROKER__START_TIMEOUT", "180s"),
            ("FLEET_INGEST__START_TIMEOUT", "120s"),
            ("FLEET_CONSUMER__START_TIMEOUT", "120s"),
            ("FLEET_VEHICLES__START_TIMEOUT", "120s"),
        ],
    );
    let stateful = nodes.nodes[0].1.clone();

    // A first launch that fails in its last wave (the consumer cannot be ready within 1 ms)
    // puts back everything it made: no service, secret, network or volume of the stack is left.
    let stderr = failing_launch(&stack, &[]).await;
    assert!(stderr.contains("rollback"), "{stderr}");
    assert_nothing_labelled(&nodes, &stack.name);

    let started = Instant::now();
    stack.fleet_ok(&["launch-infra"]).await;
    eprintln!(
        "launch-infra on the swarm: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let listed = nodes.docker(0, &["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
    assert_eq!(
        listed.lines().filter(|l| l.ends_with("Ready")).count(),
        NODES,
        "{listed}"
    );
    // A second launch keeps every service and copies no image.
    let again = stack.fleet_ok(&["launch-infra"]).await;
    assert!(again.contains("is ready on the swarm"), "{again}");

    // A relaunch that changes the consumer and then fails puts the consumer service back to
    // its previous spec (Swarm's rollback) and leaves the others as they were. The new task
    // cannot be ready within 1 ms, while the old one still runs: the wait must tell them apart.
    let consumer = format!("{}-consumer", stack.name);
    let hash = || {
        nodes.docker(
            0,
            &[
                "service",
                "inspect",
                "--format",
                "{{index .Spec.Labels \"io.fleet.config-hash\"}}",
                &consumer,
            ],
        )
    };
    let hash_before = hash();
    let stderr = failing_launch(&stack, &[("FLEET_CONSUMER__BATCH_MAX_RECORDS", "1234")]).await;
    assert!(
        stderr.contains("put 1 service(s) back to their previous spec"),
        "{stderr}"
    );
    assert_eq!(hash(), hash_before, "the consumer's spec is the one before");
    stack.wait_all_ready(Duration::from_secs(120)).await;

    // Vehicles land on at least two nodes, and every event arrives.
    launch_fleet(&stack, 4).await;
    let per_node = vehicles_per_node(&stack).await;
    assert!(
        per_node.iter().filter(|(_, n)| *n > 0).count() >= 2,
        "vehicles on at least two nodes: {per_node:?}"
    );
    // Including the nodes fleet reaches over TCP+TLS and over SSH: their images came that way.
    for (i, remote) in nodes.remote.iter().enumerate().filter(|(_, r)| *r != "-") {
        let name = &nodes.nodes[i].0;
        assert!(
            per_node.iter().any(|(n, count)| n == name && *count > 0),
            "vehicles on {name}, reached by {remote}: {per_node:?}"
        );
    }
    verify(&stack).await;

    // Scaled up and down: the vehicle service's replicas, verified each time.
    launch_fleet(&stack, 6).await;
    verify(&stack).await;
    launch_fleet(&stack, 3).await;
    verify(&stack).await;

    // Drain the worker with the most vehicle tasks: they move, nothing is lost.
    let per_node = vehicles_per_node(&stack).await;
    let drained = per_node
        .iter()
        .filter(|(name, _)| *name != nodes.nodes[0].0)
        .max_by_key(|(_, n)| *n)
        .map(|(name, _)| name.clone())
        .expect("a worker");
    let before = rows(&stack, &stateful).await;
    nodes.docker(0, &["node", "update", "--availability", "drain", &drained]);
    let started = Instant::now();
    loop {
        let per_node = vehicles_per_node(&stack).await;
        let on_drained = per_node
            .iter()
            .find(|(n, _)| *n == drained)
            .map_or(0, |p| p.1);
        let total: usize = per_node.iter().map(|p| p.1).sum();
        if on_drained == 0 && total == 3 {
            eprintln!(
                "drained {drained} in {:.1} s: {per_node:?}",
                started.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "tasks did not leave {drained}: {per_node:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Whatever else ran there moves too (the broker may have been on the drained node: its
    // clients reconnect to the new task within seconds); the stack is ready again.
    let started = Instant::now();
    stack.wait_all_ready(Duration::from_secs(120)).await;
    eprintln!(
        "every service ready {:.1} s after the drain",
        started.elapsed().as_secs_f64()
    );
    // The moved tasks serve again: the same fleet size, every vehicle acknowledged.
    launch_fleet(&stack, 3).await;
    let status = status(&stack).await;
    let node = status["swarm_nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == drained.as_str())
        .unwrap();
    assert_eq!(node["availability"], "drain");
    assert!(node["tasks"].as_array().unwrap().is_empty(), "{node}");
    verify(&stack).await;
    let after = rows(&stack, &stateful).await;
    assert!(after > before, "rows kept and growing: {before} -> {after}");

    // Logs are the service's, from every task.
    let logs = stack.fleet_ok(&["logs", "ingest", "--tail", "20"]).await;
    assert!(!logs.is_empty(), "ingest logs");

    // Teardown leaves nothing labelled with the stack on any daemon.
    stack.fleet_ok(&["teardown"]).await;
    assert_nothing_labelled(&nodes, &stack.name);
    assert_eq!(
        main_engine_swarm_state(),
        main_before,
        "the main engine's swarm state is untouched"
    );
}

/// No container, volume or network on any node, and no service or secret on the swarm, carries
/// `stack`'s label.
fn assert_nothing_labelled(nodes: &Nodes, stack: &str) {
    let label = format!("label=io.fleet.stack={stack}");
    for i in 0..NODES {
        for list in [
            &["ps", "-aq", "--filter", &label][..],
            &["volume", "ls", "-q", "--filter", &label][..],
            &["network", "ls", "-q", "--filter", &label][..],
        ] {
            let left = nodes.docker(i, list);
            assert!(
                left.trim().is_empty(),
                "{list:?} on {}: {left}",
                nodes.nodes[i].0
            );
        }
    }
    for list in [
        &["service", "ls", "-q", "--filter", &label][..],
        &["secret", "ls", "-q", "--filter", &label][..],
    ] {
        let left = nodes.docker(0, list);
        assert!(left.trim().is_empty(), "{list:?}: {left}");
    }
}
