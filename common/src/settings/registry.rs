//! [`RegistrySettings`]: how every member of the stack's registry (ingest, consumer, vehicles)
//! is pointed at ZooKeeper.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::SettingsError;
use super::env::*;
use super::limits;
use super::limits::duration_text;
use crate::config::Config;

/// A member's registry settings. Without `ZOOKEEPER_CONNECT` the service runs without a
/// registry, on its own settings.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RegistrySettings {
    /// ZooKeeper connect string, e.g. `fleet-zookeeper:2181`.
    #[arg(long, env = ZOOKEEPER_CONNECT)]
    pub zookeeper_connect: Option<String>,
    /// The stack whose registry (`/fleet/<stack>`) this service joins.
    #[arg(long, env = REGISTRY_STACK, default_value = "fleet")]
    pub registry_stack: String,
    /// ZooKeeper session timeout: how long a crashed member stays listed.
    #[arg(long, env = ZOOKEEPER_SESSION_TIMEOUT, default_value = "6s",
          value_parser = limits::SESSION_TIMEOUT.parser())]
    pub zookeeper_session_timeout: Duration,
    /// This member's id within its role (default: the host name).
    #[arg(long, env = REGISTRY_MEMBER_ID)]
    pub registry_member_id: Option<String>,
    /// Where this member is reached inside the stack network, e.g. `http://fleet-ingest:8080`.
    #[arg(long, env = REGISTRY_ADDRESS)]
    pub registry_address: Option<String>,
    /// A file holding the stack's ZooKeeper digest identity as `user:password` (a secret
    /// file, e.g. `/run/secrets/zookeeper-auth`); without it the member's nodes are open.
    #[arg(long, env = ZOOKEEPER_AUTH_FILE)]
    pub zookeeper_auth_file: Option<PathBuf>,
}

/// What a member's registry settings take from the stack's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryWiring {
    /// ZooKeeper's in-network `host:port`.
    pub zookeeper_connect: String,
    /// The member's id (its container's name).
    pub member_id: String,
    /// The member's in-network address, `http://<container>:<port>`.
    pub address: String,
}

impl RegistrySettings {
    /// The registry settings `config` gives a member, wired by `wiring`. The identity file is
    /// added when the plan hands the credentials over.
    pub fn from_config(config: &Config, wiring: RegistryWiring) -> Self {
        Self {
            zookeeper_connect: Some(wiring.zookeeper_connect),
            registry_stack: config.stack.name.clone(),
            zookeeper_session_timeout: config.zookeeper.session_timeout,
            registry_member_id: Some(wiring.member_id),
            registry_address: Some(wiring.address),
            zookeeper_auth_file: None,
        }
    }

    /// Checks the session timeout.
    pub fn validate(&self) -> Result<(), SettingsError> {
        limits::SESSION_TIMEOUT.check(ZOOKEEPER_SESSION_TIMEOUT, self.zookeeper_session_timeout)
    }

    /// The environment that gives a container these settings.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let optional = [
            (ZOOKEEPER_CONNECT, self.zookeeper_connect.clone()),
            (REGISTRY_MEMBER_ID, self.registry_member_id.clone()),
            (REGISTRY_ADDRESS, self.registry_address.clone()),
            (
                ZOOKEEPER_AUTH_FILE,
                self.zookeeper_auth_file
                    .as_ref()
                    .map(|p| p.display().to_string()),
            ),
        ];
        let mut env = vec![
            (REGISTRY_STACK, self.registry_stack.clone()),
            (
                ZOOKEEPER_SESSION_TIMEOUT,
                duration_text(self.zookeeper_session_timeout),
            ),
        ];
        env.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?))),
        );
        env
    }
}
