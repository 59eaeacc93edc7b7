//! Safety of the orchestrator, through the real `fleet` binary and Docker engine: an occupied
//! host port fails before anything is created; a launch that fails part way removes what it
//! created and shows the failing service's logs; fleet never touches what it does not own.
//!
//! Each test runs under a stack name of its own and cleans up after itself.

mod support;

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerCreateBody, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use fleet_orchestrator::docker::{Docker, LABEL_STACK};
use support::{TestStack, fleet};
use tokio::sync::OnceCell;

/// The images of the stack, built once for all tests of this file.
async fn images() -> &'static HashMap<String, String> {
    static IMAGES: OnceCell<HashMap<String, String>> = OnceCell::const_new();
    IMAGES
        .get_or_init(|| async {
            let output = fleet(&BTreeMap::new(), &["build"]).await;
            assert!(output.status.success(), "fleet build");
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|l| {
                    let mut words = l.split_whitespace();
                    Some((words.next()?.to_owned(), words.next()?.to_owned()))
                })
                .collect()
        })
        .await
}

async fn assert_nothing_left(docker: &Docker, stack: &str) {
    assert!(
        docker
            .list_stack_containers(stack, None)
            .await
            .unwrap()
            .is_empty(),
        "containers of {stack} left"
    );
    assert!(
        docker.list_stack_networks(stack).await.unwrap().is_empty(),
        "networks of {stack} left"
    );
    assert!(
        docker.list_stack_volumes(stack).await.unwrap().is_empty(),
        "volumes of {stack} left"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn occupied_port_fails_before_anything_is_created() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let stack = TestStack::new(
        "safe-port",
        &[("FLEET_INGEST__HOST_PORT", &port.to_string())],
    );

    let output = stack.fleet(&["launch-infra"]).await;
    assert_eq!(
        output.status.code(),
        Some(2),
        "an infrastructure error exits 2"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(&format!("host port {port}")), "{stderr}");
    assert!(
        stderr.contains("ingest.host_port"),
        "names the key: {stderr}"
    );
    assert!(
        stderr.contains("FLEET_INGEST__HOST_PORT"),
        "names the override: {stderr}"
    );
    let docker = Docker::connect().await.unwrap();
    assert_nothing_left(&docker, &stack.name).await;
    drop(holder);
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_launch_rolls_back_and_shows_the_logs() {
    let images = images().await;
    // Inject a failure: ZooKeeper's container runs a command that prints and exits.
    let stack = TestStack::new(
        "safe-fail",
        &[
            ("FLEET_ZOOKEEPER__UPSTREAM__IMAGE", &images["runtime"]),
            (
                "FLEET_ZOOKEEPER__UPSTREAM__COMMAND",
                r#"["sh", "-c", "echo injected-failure-marker; exit 3"]"#,
            ),
        ],
    );
    let output = stack.fleet(&["launch-infra"]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("service zookeeper"),
        "names the service: {stderr}"
    );
    assert!(stderr.contains("ruok"), "names the probe: {stderr}");
    assert!(stderr.contains("last 30 log lines"), "{stderr}");
    assert!(
        stderr.contains("injected-failure-marker"),
        "shows the container's output: {stderr}"
    );
    assert!(stderr.contains("rollback"), "{stderr}");
    let docker = Docker::connect().await.unwrap();
    assert_nothing_left(&docker, &stack.name).await;
}

/// Decoys of another stack and of nobody; removed when dropped.
struct Decoys {
    docker: bollard::Docker,
    containers: Vec<String>,
    network: String,
    volume: String,
}

impl Decoys {
    async fn exist(&self) -> bool {
        for c in &self.containers {
            if self.docker.inspect_container(c, None).await.is_err() {
                return false;
            }
        }
        self.docker
            .inspect_network(&self.network, None)
            .await
            .is_ok()
            && self.docker.inspect_volume(&self.volume).await.is_ok()
    }
}

impl Drop for Decoys {
    fn drop(&mut self) {
        let docker = self.docker.clone();
        let (containers, network, volume) = (
            self.containers.clone(),
            self.network.clone(),
            self.volume.clone(),
        );
        // Clean up on a runtime of its own: Drop may run while the test's runtime unwinds.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    for c in containers {
                        let options = RemoveContainerOptionsBuilder::default().force(true).build();
                        let _ = docker.remove_container(&c, Some(options)).await;
                    }
                    let _ = docker.remove_network(&network).await;
                    let _ = docker
                        .remove_volume(
                            &volume,
                            None::<bollard::query_parameters::RemoveVolumeOptions>,
                        )
                        .await;
                });
        })
        .join()
        .ok();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn fleet_never_touches_what_it_does_not_own() {
    let images = images().await;
    let stack = TestStack::new("safe-own", &[]);
    let name = stack.name.clone();
    let other = format!("{name}-other");
    let raw = bollard::Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let labels = HashMap::from([(LABEL_STACK.to_owned(), other.clone())]);
    let create = |container: String, labels: Option<HashMap<String, String>>| {
        let raw = raw.clone();
        let image = images["runtime"].clone();
        async move {
            let options = CreateContainerOptionsBuilder::default()
                .name(&container)
                .build();
            let body = ContainerCreateBody {
                image: Some(image),
                cmd: Some(vec!["sleep".into(), "600".into()]),
                labels,
                ..Default::default()
            };
            raw.create_container(Some(options), body)
                .await
                .expect("create decoy");
            container
        }
    };
    let decoys = Decoys {
        containers: vec![
            // Same name as the stack's ZooKeeper, but nobody's.
            create(format!("{name}-zookeeper"), None).await,
            // Another stack's.
            create(format!("{other}-ingest"), Some(labels.clone())).await,
        ],
        network: format!("{other}-net"),
        volume: format!("{other}-data"),
        docker: raw.clone(),
    };
    raw.create_network(NetworkCreateRequest {
        name: decoys.network.clone(),
        labels: Some(labels.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    raw.create_volume(VolumeCreateRequest {
        name: Some(decoys.volume.clone()),
        labels: Some(labels),
        ..Default::default()
    })
    .await
    .unwrap();

    // A launch refuses to take over a same-named container it does not own.
    let output = stack.fleet(&["launch-infra"]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("does not carry the label"), "{stderr}");
    assert!(decoys.exist().await, "the launch touched a decoy");

    // Teardown of this stack leaves the decoys, including the other stack's.
    let output = stack.fleet(&["teardown"]).await;
    assert!(output.status.success());
    assert!(decoys.exist().await, "teardown touched a decoy");
    let docker = Docker::connect().await.unwrap();
    assert_nothing_left(&docker, &name).await;
    assert_eq!(
        docker
            .list_stack_containers(&other, None)
            .await
            .unwrap()
            .len(),
        1
    );
}

/// The id of every container of `stack`, by name, and whether it runs.
async fn containers(docker: &Docker, stack: &str) -> BTreeMap<String, (String, bool)> {
    docker
        .list_stack_containers(stack, None)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.name.clone(), (c.id.clone(), c.is_running())))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_relaunch_keeps_what_ran_before() {
    let images = images().await;
    let stack = TestStack::new("safe-relaunch", &[]);
    stack.fleet_ok(&["launch-infra"]).await;
    let docker = Docker::connect().await.unwrap();
    let before = containers(&docker, &stack.name).await;
    assert!(before.values().all(|(_, running)| *running), "{before:?}");

    // The same stack with a changed ZooKeeper that cannot start: the launch replaces ZooKeeper
    // and stops what depends on it, then fails.
    let mut changed = stack.env.clone();
    changed.insert(
        "FLEET_ZOOKEEPER__UPSTREAM__IMAGE".into(),
        images["runtime"].clone(),
    );
    changed.insert(
        "FLEET_ZOOKEEPER__UPSTREAM__COMMAND".into(),
        r#"["sh", "-c", "echo injected-failure-marker; exit 3"]"#.into(),
    );
    let output = fleet(&changed, &["launch-infra"]).await;
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("injected-failure-marker"), "{stderr}");
    assert!(stderr.contains("restored 1"), "{stderr}");

    // Every container that ran before the failed launch is there again, the same container
    // (same id), running; nothing of the failed launch is left.
    let after = containers(&docker, &stack.name).await;
    assert_eq!(
        after, before,
        "the containers before and after the failed launch"
    );

    // And the stack is whole: a launch with the original configuration changes nothing.
    let again = stack.fleet_ok(&["launch-infra"]).await;
    assert!(again.contains("is ready"), "{again}");
    assert_eq!(containers(&docker, &stack.name).await, before);
}

/// Starts `fleet launch-infra` of `stack` with a ZooKeeper that never gets ready (it sleeps),
/// and waits until that container exists: the launch then waits on its probe.
async fn hanging_launch(stack: &TestStack, docker: &Docker) -> tokio::process::Child {
    let images = images().await;
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["--progress", "plain", "--config"])
        .arg(support::config_file())
        .arg("launch-infra")
        .envs(&stack.env)
        .env("FLEET_ZOOKEEPER__UPSTREAM__IMAGE", &images["runtime"])
        .env("FLEET_ZOOKEEPER__UPSTREAM__COMMAND", r#"["sleep", "600"]"#)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("fleet starts");
    let zookeeper = format!("{}-zookeeper", stack.name);
    let started = std::time::Instant::now();
    while docker
        .find_container(&zookeeper, &stack.name)
        .await
        .unwrap()
        .is_none_or(|c| !c.is_running())
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the launch did not start ZooKeeper"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    child
}

/// Sends `signal` (e.g. `-INT`) to `child` and returns its exit code and stderr.
async fn signal(child: tokio::process::Child, signal: &str) -> (Option<i32>, String) {
    let pid = child.id().expect("running").to_string();
    let sent = std::process::Command::new("kill")
        .args([signal, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        child.wait_with_output(),
    )
    .await
    .expect("fleet ends after the signal")
    .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_on_a_busy_stack_names_the_holder_and_exits_2() {
    let stack = TestStack::new("safe-lock", &[]);
    let docker = Docker::connect().await.unwrap();
    let first = hanging_launch(&stack, &docker).await;
    let holder = first.id().unwrap();
    for args in [&["launch-infra"][..], &["teardown"][..]] {
        let output = stack.fleet(args).await;
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("is busy"), "{stderr}");
        assert!(stderr.contains(&format!("pid {holder}")), "{stderr}");
        assert!(stderr.contains("`fleet launch-infra`"), "{stderr}");
        assert!(stderr.contains("since "), "{stderr}");
    }
    // The second runs changed nothing: the first still waits on its ZooKeeper.
    assert!(
        docker
            .find_container(&format!("{}-zookeeper", stack.name), &stack.name)
            .await
            .unwrap()
            .is_some_and(|c| c.is_running())
    );
    signal(first, "-TERM").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigint_during_a_launch_rolls_it_back() {
    let stack = TestStack::new("safe-sigint", &[]);
    let docker = Docker::connect().await.unwrap();
    let launch = hanging_launch(&stack, &docker).await;
    assert!(
        !docker
            .list_stack_containers(&stack.name, None)
            .await
            .unwrap()
            .is_empty()
    );
    let (code, stderr) = signal(launch, "-INT").await;
    assert_eq!(
        code,
        Some(130),
        "exit code of a process ended by SIGINT: {stderr}"
    );
    assert!(stderr.contains("SIGINT"), "{stderr}");
    assert!(stderr.contains("rollback"), "{stderr}");
    assert_nothing_left(&docker, &stack.name).await;
}
