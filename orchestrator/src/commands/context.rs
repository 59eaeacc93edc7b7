//! What every subcommand starts from: the loaded config, the host paths and the progress
//! display. A command connects to the Docker engine itself when it needs to ([`Ctx::docker`]).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fleet_common::config::Config;

use crate::docker::Docker;
use crate::output::{Progress, ProgressMode};
use crate::paths::StackPaths;

/// The shared context of a command.
#[derive(Debug)]
pub struct Ctx {
    /// The config file.
    pub config_file: PathBuf,
    /// The configuration.
    pub config: Config,
    /// Host paths.
    pub paths: StackPaths,
    /// Progress display.
    pub progress: Progress,
}

impl Ctx {
    /// Loads the config at `config_file` (with `FLEET_*` overrides).
    pub fn load(config_file: &Path, progress: ProgressMode) -> anyhow::Result<Self> {
        let config = fleet_common::config::load(config_file)?;
        Ok(Self {
            paths: StackPaths::new(config_file, &config),
            config_file: config_file.to_owned(),
            config,
            progress: Progress::new(progress),
        })
    }

    /// Connects to the Docker engine of `[target.engine]` (the one that builds the images; with
    /// a swarm target, the swarm's engines are reached through [`crate::swarm::Cluster`]).
    pub async fn docker(&self) -> anyhow::Result<Docker> {
        Docker::connect_to(&self.config.target.engine, &self.paths.workspace)
            .await
            .context("connect to the Docker engine")
    }

    /// The swarm the stack runs on, with `target.kind = "swarm"`.
    pub fn swarm(&self) -> Option<&fleet_common::config::SwarmConfig> {
        match self.config.target.kind {
            fleet_common::config::TargetKind::Swarm => self.config.target.swarm.as_ref(),
            fleet_common::config::TargetKind::Engine => None,
        }
    }

    /// The address the host reaches the stack's published ports at: `stack.bind_address` on
    /// one engine; on a swarm, the address of the node that holds the stateful services
    /// (ZooKeeper, PostgreSQL, the host listener and the front door).
    pub fn host(&self) -> std::net::IpAddr {
        if let Some(swarm) = self.swarm()
            && let Some(node) = swarm.nodes.iter().find(|n| n.name == swarm.stateful_node)
            && let Ok(ip) = node.address.parse()
        {
            return ip;
        }
        crate::engine::connect_host(&self.config.stack.bind_address)
    }

    /// The stack's name.
    pub fn stack(&self) -> &str {
        &self.config.stack.name
    }

    /// The URL of the events endpoint.
    pub fn events_url(&self) -> String {
        let host = match self.host() {
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        format!("http://{host}:{}/events", self.config.ingest.host_port)
    }
}
