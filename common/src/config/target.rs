//! `[target]`: where the stack runs. One Docker engine (the default, reached through the local
//! socket, `DOCKER_HOST`, TCP+TLS or SSH), or a Docker Swarm of several engines whose nodes
//! fleet initialises or joins. The checks of these sections live here too.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Where the stack runs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// `engine` (default): every container on one Docker engine. `swarm`: services on the
    /// nodes of `[target.swarm]`.
    #[serde(default)]
    pub kind: TargetKind,
    /// The engine fleet builds images on and, with `kind = "engine"`, runs the stack on.
    #[serde(default)]
    pub engine: EngineConfig,
    /// The swarm, with `kind = "swarm"`.
    #[serde(default)]
    pub swarm: Option<SwarmConfig>,
}

/// Single engine or swarm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    /// One Docker engine runs every container.
    #[default]
    Engine,
    /// A Docker Swarm runs the stack as services.
    Swarm,
}

/// How to reach one Docker engine. The API version is negotiated with the engine (Debian's
/// docker.io speaks 1.41).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Empty: `DOCKER_HOST`, else the local socket. `unix:///path/docker.sock`;
    /// `tcp://host:2376` (TLS with `tls_ca`, `tls_cert`, `tls_key`); `http://host:2375` (plain
    /// TCP, only on a network you trust); `ssh://user@host` (the engine's socket through
    /// `ssh`, which must log in without a prompt).
    #[serde(default)]
    pub url: String,
    /// With `tcp://`: the CA certificate that signed the engine's certificate (PEM file).
    #[serde(default)]
    pub tls_ca: String,
    /// With `tcp://`: fleet's client certificate (PEM file).
    #[serde(default)]
    pub tls_cert: String,
    /// With `tcp://`: fleet's client key (PEM file).
    #[serde(default)]
    pub tls_key: String,
    /// With `ssh://`: the private key to log in with. Empty: ssh's own choice.
    #[serde(default)]
    pub ssh_key: String,
    /// How long one API request may take (an image load is one request).
    #[serde(default = "default_engine_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            tls_ca: String::new(),
            tls_cert: String::new(),
            tls_key: String::new(),
            ssh_key: String::new(),
            timeout: default_engine_timeout(),
        }
    }
}

/// The swarm the stack runs on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmConfig {
    /// The nodes. The first one must be a manager: fleet initialises the swarm there when its
    /// engine is in none, and every other node joins it.
    pub nodes: Vec<SwarmNodeConfig>,
    /// Name of the node that holds the stateful services (ZooKeeper, PostgreSQL, the broker's
    /// storage, the host listener and the front door) and their volumes.
    pub stateful_node: String,
    /// How long a stopping task may drain before it is killed.
    #[serde(default = "default_stop_grace", with = "humantime_serde")]
    pub stop_grace: Duration,
    /// Extra placement constraints for the services spread over the nodes (brokers, ingest,
    /// consumer, vehicles), e.g. `["node.labels.fleet-load == yes"]`.
    #[serde(default)]
    pub spread_constraints: Vec<String>,
}

/// One swarm node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwarmNodeConfig {
    /// fleet's name of the node (messages, `stateful_node`).
    pub name: String,
    /// The node's IP address: the swarm's advertise address, and where fleet reaches the
    /// ports the node's tasks publish.
    pub address: String,
    /// `manager` or `worker`: the role a joining node gets.
    pub role: NodeRole,
    /// How to reach the node's engine.
    pub engine: EngineConfig,
    /// Node labels fleet sets, for placement constraints (`node.labels.<key> == <value>`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// A swarm node's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeRole {
    /// Runs tasks and holds the swarm's state.
    Manager,
    /// Runs tasks.
    Worker,
}

fn default_engine_timeout() -> Duration {
    Duration::from_secs(600)
}

fn default_stop_grace() -> Duration {
    Duration::from_secs(5)
}

type Failure = (String, String);

fn fail(key: impl Into<String>, message: impl Into<String>) -> Result<(), Failure> {
    Err((key.into(), message.into()))
}

/// Checks `[target]`; a failure names the dotted key.
pub(super) fn validate(t: &TargetConfig) -> Result<(), Failure> {
    validate_engine("target.engine", &t.engine)?;
    match (t.kind, &t.swarm) {
        (TargetKind::Engine, _) => Ok(()),
        (TargetKind::Swarm, None) => fail(
            "target.kind",
            "is \"swarm\", but there is no [target.swarm] section with its nodes",
        ),
        (TargetKind::Swarm, Some(swarm)) => validate_swarm(swarm),
    }
}

fn validate_swarm(s: &SwarmConfig) -> Result<(), Failure> {
    let Some(first) = s.nodes.first() else {
        return fail("target.swarm.nodes", "needs at least one node");
    };
    if first.role != NodeRole::Manager {
        fail(
            "target.swarm.nodes[0].role",
            "the first node initialises or leads the swarm: it must be a manager",
        )?;
    }
    let mut names = BTreeSet::new();
    let mut addresses = BTreeSet::new();
    for (i, node) in s.nodes.iter().enumerate() {
        let key = format!("target.swarm.nodes[{i}]");
        if node.name.is_empty()
            || !node
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            fail(
                format!("{key}.name"),
                format!("{:?} must be letters, digits, '-', '_' or '.'", node.name),
            )?;
        }
        if !names.insert(node.name.as_str()) {
            fail(
                format!("{key}.name"),
                format!("{:?} names two nodes", node.name),
            )?;
        }
        if node.address.parse::<std::net::IpAddr>().is_err() {
            fail(
                format!("{key}.address"),
                format!("{:?} is not an IP address", node.address),
            )?;
        }
        if !addresses.insert(node.address.as_str()) {
            fail(
                format!("{key}.address"),
                format!("{} is the address of two nodes", node.address),
            )?;
        }
        validate_engine(&format!("{key}.engine"), &node.engine)?;
    }
    if !names.contains(s.stateful_node.as_str()) {
        fail(
            "target.swarm.stateful_node",
            format!(
                "{:?} is none of the nodes ({})",
                s.stateful_node,
                names.into_iter().collect::<Vec<_>>().join(", ")
            ),
        )?;
    }
    if s.stop_grace < Duration::from_secs(1) || s.stop_grace > Duration::from_secs(120) {
        fail("target.swarm.stop_grace", "must lie between 1s and 2m")?;
    }
    Ok(())
}

fn validate_engine(key: &str, e: &EngineConfig) -> Result<(), Failure> {
    let scheme = e.url.split_once("://").map(|(s, _)| s);
    let tls = [&e.tls_ca, &e.tls_cert, &e.tls_key];
    match (e.url.is_empty(), scheme) {
        (true, _) => {}
        (false, Some("unix" | "http" | "ssh")) => {}
        (false, Some("tcp")) => {
            if tls.iter().any(|f| f.is_empty()) {
                fail(
                    format!("{key}.url"),
                    "tcp:// is TLS: set tls_ca, tls_cert and tls_key (http:// is plain TCP)",
                )?;
            }
        }
        _ => fail(
            format!("{key}.url"),
            format!(
                "{:?} must start with unix://, tcp://, http:// or ssh://",
                e.url
            ),
        )?,
    }
    if scheme != Some("tcp") && tls.iter().any(|f| !f.is_empty()) {
        fail(
            format!("{key}.tls_ca"),
            "TLS files go with a tcp:// url only",
        )?;
    }
    if scheme != Some("ssh") && !e.ssh_key.is_empty() {
        fail(format!("{key}.ssh_key"), "goes with an ssh:// url only")?;
    }
    if e.timeout < Duration::from_secs(1) {
        fail(format!("{key}.timeout"), "must be at least 1s")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swarm(text: &str) -> Result<TargetConfig, String> {
        let t: TargetConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        validate(&t).map_err(|(k, m)| format!("{k}: {m}"))?;
        Ok(t)
    }

    const NODES: &str = r#"
kind = "swarm"
[swarm]
stateful_node = "a"
[[swarm.nodes]]
name = "a"
address = "10.0.0.1"
role = "manager"
engine = { url = "unix:///run/a.sock" }
[[swarm.nodes]]
name = "b"
address = "10.0.0.2"
role = "worker"
engine = { url = "tcp://10.0.0.2:2376", tls_ca = "ca.pem", tls_cert = "cert.pem", tls_key = "key.pem" }
labels = { tier = "load" }
"#;

    #[test]
    fn the_default_is_one_engine() {
        let t = swarm("").unwrap();
        assert_eq!(t.kind, TargetKind::Engine);
        assert!(t.engine.url.is_empty());
    }

    #[test]
    fn a_swarm_parses_with_its_nodes() {
        let t = swarm(NODES).unwrap();
        let s = t.swarm.unwrap();
        assert_eq!(s.nodes.len(), 2);
        assert_eq!(s.nodes[1].role, NodeRole::Worker);
        assert_eq!(s.nodes[1].labels["tier"], "load");
        assert_eq!(s.stop_grace, Duration::from_secs(5));
    }

    #[test]
    fn the_master_file_takes_a_swarm_from_the_environment() {
        let swarm = r#"{ stateful_node = "n1", nodes = [{ name = "n1", address = "192.168.213.11", role = "manager", engine = { url = "unix:///tmp/n1.sock" }, labels = { fleet-tier = "state" } }] }"#;
        let config = crate::config::load_from_str(
            include_str!("../../../config.master.toml"),
            "config.master.toml",
            [
                ("FLEET_TARGET__KIND".to_owned(), "swarm".to_owned()),
                ("FLEET_TARGET__SWARM".to_owned(), swarm.to_owned()),
            ],
        )
        .unwrap();
        assert_eq!(config.target.kind, TargetKind::Swarm);
        let s = config.target.swarm.unwrap();
        assert_eq!(s.nodes[0].engine.url, "unix:///tmp/n1.sock");
        assert_eq!(s.nodes[0].labels["fleet-tier"], "state");
        let master = crate::config::load_from_str(
            include_str!("../../../config.master.toml"),
            "config.master.toml",
            Vec::new(),
        )
        .unwrap();
        assert_eq!(
            master.target.kind,
            TargetKind::Engine,
            "one engine by default"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let err =
            swarm(&NODES.replace("stateful_node = \"a\"", "stateful_node = \"z\"")).unwrap_err();
        assert!(err.starts_with("target.swarm.stateful_node"), "{err}");
        let err = swarm(&NODES.replace(", tls_key = \"key.pem\"", "")).unwrap_err();
        assert!(err.starts_with("target.swarm.nodes[1].engine.url"), "{err}");
        let err = swarm(&NODES.replace("10.0.0.2\"", "not-an-ip\"")).unwrap_err();
        assert!(err.starts_with("target.swarm.nodes[1].address"), "{err}");
        let err = swarm(&NODES.replacen("role = \"manager\"", "role = \"worker\"", 1)).unwrap_err();
        assert!(err.starts_with("target.swarm.nodes[0].role"), "{err}");
        let err = swarm("kind = \"swarm\"").unwrap_err();
        assert!(err.starts_with("target.kind"), "{err}");
        let err = swarm(&NODES.replace("labels =", "colour = \"red\"\nlabels =")).unwrap_err();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }
}
