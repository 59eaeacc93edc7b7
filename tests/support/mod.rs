//! What the tests that drive the real `fleet` binary share: a stack of the test's own (unique
//! name, free host ports, private state directory) that is torn down when dropped, also after
//! a failed assertion.

#![allow(dead_code)] // Each test file uses a different part.

pub mod scenarios;
pub mod stream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Output;

/// A free TCP port on 127.0.0.1, never one this process handed out before (the kernel may
/// offer a just-released port again, and a stack needs distinct ports).
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// `data` as a gzip member (RFC 1952), compressed by `flate2`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).expect("gzip into memory");
    encoder.finish().expect("gzip into memory")
}

/// The repository's config file.
pub fn config_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config.master.toml")
}

/// Runs `fleet args...` with `env`, without echoing its output.
pub async fn fleet_quiet(env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["--progress", "plain", "--config"])
        .arg(config_file())
        .args(args)
        .envs(env)
        .output()
        .await
        .expect("fleet runs")
}

/// Runs `fleet args...` with `env`, echoing its output into the test log.
pub async fn fleet(env: &BTreeMap<String, String>, args: &[&str]) -> Output {
    let output = fleet_quiet(env, args).await;
    eprintln!(
        "$ fleet {} -> {}\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A stack of the test's own; dropping it tears it down.
pub struct TestStack {
    /// Stack name (`io.fleet.stack`).
    pub name: String,
    /// `FLEET_*` overrides that select this stack.
    pub env: BTreeMap<String, String>,
    /// The folder holding the state directory; removed after a clean teardown.
    pub state_root: PathBuf,
    /// The stack's state directory (password file).
    pub state_dir: PathBuf,
    /// PostgreSQL's host port.
    pub pg_port: u16,
    /// ingest's host port.
    pub ingest_port: u16,
}

impl TestStack {
    /// A stack named `<prefix>-<pid>` with free ports; `extra` adds or replaces overrides.
    pub fn new(prefix: &str, extra: &[(&str, &str)]) -> Self {
        let name = format!("{prefix}-{}", std::process::id());
        let state_root = std::env::temp_dir().join(format!("fleet-{name}-state"));
        let (pg_port, ingest_port) = (free_port(), free_port());
        let mut env = BTreeMap::from([
            ("FLEET_STACK__NAME".to_owned(), name.clone()),
            (
                "FLEET_STACK__STATE_DIR".to_owned(),
                state_root.display().to_string(),
            ),
            (
                "FLEET_ZOOKEEPER__HOST_PORT".to_owned(),
                free_port().to_string(),
            ),
            (
                "FLEET_BROKER__HOST_PORT".to_owned(),
                free_port().to_string(),
            ),
            ("FLEET_POSTGRES__HOST_PORT".to_owned(), pg_port.to_string()),
            (
                "FLEET_INGEST__HOST_PORT".to_owned(),
                ingest_port.to_string(),
            ),
        ]);
        for (key, value) in extra {
            env.insert((*key).to_owned(), (*value).to_owned());
        }
        let ingest_port = env["FLEET_INGEST__HOST_PORT"].parse().expect("a port");
        Self {
            state_dir: state_root.join(&name),
            state_root,
            name,
            env,
            pg_port,
            ingest_port,
        }
    }

    /// Runs `fleet args...` against this stack.
    pub async fn fleet(&self, args: &[&str]) -> Output {
        fleet(&self.env, args).await
    }

    /// Runs `fleet args...` against this stack without echoing its output.
    pub async fn fleet_quiet(&self, args: &[&str]) -> Output {
        fleet_quiet(&self.env, args).await
    }

    /// Runs `fleet args...` and asserts success; returns stdout.
    pub async fn fleet_ok(&self, args: &[&str]) -> String {
        let output = self.fleet(args).await;
        assert!(output.status.success(), "fleet {} failed", args.join(" "));
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// The events endpoint on the host.
    pub fn events_url(&self) -> String {
        format!("http://127.0.0.1:{}/events", self.ingest_port)
    }

    /// The Kafka bootstrap address for clients on the host, from `fleet status --json`.
    pub async fn kafka_bootstrap(&self) -> String {
        let status: serde_json::Value =
            serde_json::from_str(&self.fleet_ok(&["status", "--json"]).await).expect("status JSON");
        status["kafka_bootstrap"]
            .as_str()
            .expect("kafka_bootstrap in status")
            .to_owned()
    }

    /// Waits until every service is ready in `fleet status --json`, at most `limit`.
    pub async fn wait_all_ready(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        loop {
            let output = self.fleet_quiet(&["status", "--json"]).await;
            let status: serde_json::Value =
                serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
            let services = status["services"].as_array().cloned().unwrap_or_default();
            let not_ready: Vec<String> = services
                .iter()
                .filter(|s| s["ready"] != true)
                .map(|s| format!("{}: {}", s["service"], s["detail"]))
                .collect();
            if !services.is_empty() && not_ready.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < limit,
                "not ready after {limit:?}: {not_ready:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// A client of the stack's PostgreSQL, from the host.
    pub async fn postgres(&self) -> tokio_postgres::Client {
        self.postgres_at("127.0.0.1").await
    }

    /// A client of the stack's PostgreSQL published on `host` (a swarm's stateful node).
    pub async fn postgres_at(&self, host: &str) -> tokio_postgres::Client {
        let password = std::fs::read_to_string(self.state_dir.join("postgres-password"))
            .expect("the password file exists after launch");
        let (client, connection) = tokio_postgres::Config::new()
            .host(host)
            .port(self.pg_port)
            .user("fleet")
            .password(password.trim_end())
            .dbname("av_telemetry")
            .connect(tokio_postgres::NoTls)
            .await
            .expect("connect to the stack's PostgreSQL from the host");
        tokio::spawn(connection);
        client
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        // Always tear down, also after a failed assertion.
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
            .args(["--progress", "plain", "--config"])
            .arg(config_file())
            .arg("teardown")
            .envs(&self.env)
            .status();
        eprintln!("teardown of {}: {status:?}", self.name);
        let clean = status.as_ref().is_ok_and(|s| s.success()) || remove_by_label(&self.name);
        if clean {
            let _ = std::fs::remove_dir_all(&self.state_root);
        }
    }
}

/// Fallback when `fleet teardown` fails (e.g. the config file was changed under the running
/// test): removes the containers, networks and volumes labelled with `stack` through the
/// `docker` CLI. Whether everything went.
fn remove_by_label(stack: &str) -> bool {
    let filter = format!("label=io.fleet.stack={stack}");
    let mut clean = true;
    for (list, remove) in [
        (&["ps", "-aq"][..], &["rm", "-f"][..]),
        (&["network", "ls", "-q"][..], &["network", "rm"][..]),
        (&["volume", "ls", "-q"][..], &["volume", "rm", "-f"][..]),
    ] {
        let Ok(ids) = std::process::Command::new("docker")
            .args(list)
            .args(["--filter", &filter])
            .output()
        else {
            return false;
        };
        let ids = String::from_utf8_lossy(&ids.stdout).into_owned();
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            continue;
        }
        let removed = std::process::Command::new("docker")
            .args(remove)
            .args(&ids)
            .status();
        eprintln!("fallback removal of {ids:?}: {removed:?}");
        clean &= removed.is_ok_and(|s| s.success());
    }
    clean
}
