//! [`BalancerSettings`]: what the orchestrator starts the TCP balancer in front of the ingest
//! replicas with.

use std::net::SocketAddr;

use clap::Args;

use super::SettingsError;
use super::env::*;
use super::ports::{INGEST_PORT, listen_on};

/// The balancer's settings: every field is a flag and an environment variable.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct BalancerSettings {
    /// Address to accept connections on.
    #[arg(long, env = BALANCER_LISTEN, default_value_t = listen_on(INGEST_PORT))]
    pub listen: SocketAddr,
    /// Backends as `host:port`, comma-separated; host names are resolved at each connection.
    #[arg(long, env = BALANCER_BACKENDS, value_delimiter = ',', required = true)]
    pub backends: Vec<String>,
}

impl BalancerSettings {
    /// The balancer on ingest's port in front of `backends`.
    pub fn new(backends: Vec<String>) -> Self {
        Self {
            listen: listen_on(INGEST_PORT),
            backends,
        }
    }

    /// Checks that there is a backend and that none is empty.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.backends.is_empty() || self.backends.iter().any(|b| b.trim().is_empty()) {
            return Err(SettingsError::Invalid {
                var: BALANCER_BACKENDS,
                reason: format!(
                    "{:?} must name at least one backend, none empty",
                    self.backends
                ),
            });
        }
        Ok(())
    }

    /// The environment that gives a container these settings.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (BALANCER_LISTEN, self.listen.to_string()),
            (BALANCER_BACKENDS, self.backends.join(",")),
        ]
    }
}
