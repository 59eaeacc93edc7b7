//! Checks made before anything is created: every published host port is free, or already held
//! by this stack's own container.

use std::net::{SocketAddr, TcpListener};

use crate::docker::{ContainerSpec, Docker, DockerError};

/// A preflight check that failed.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// A host port is taken.
    #[error(
        "host port {port} ({key}) is already in use by {holder}; stop it, or choose another port with `{key}` in the config (or {env}=...)"
    )]
    PortInUse {
        /// The port.
        port: u16,
        /// The config key that sets it.
        key: String,
        /// The environment override of that key.
        env: String,
        /// Who holds it.
        holder: String,
    },
    /// Docker could not be asked.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// The config key that sets the published port of `service`.
fn port_key(service: &str) -> String {
    let section = match service {
        "broker-host" => "broker",
        "ingest-lb" => "ingest",
        other => other,
    };
    format!("{section}.host_port")
}

/// Fails if a fixed host port of `specs` is held by anything other than the stack's own
/// container of that name.
pub async fn check_ports(docker: &Docker, specs: &[&ContainerSpec]) -> Result<(), PreflightError> {
    for spec in specs {
        let ours = docker.find_container(&spec.name, &spec.stack).await?;
        for port in spec.ports.iter().filter(|p| p.host != 0) {
            let held_by_us = ours.as_ref().is_some_and(|c| {
                c.is_running() && c.ports.get(&port.container) == Some(&port.host)
            });
            if held_by_us {
                continue;
            }
            let ip = port.host_ip.parse().unwrap_or([127, 0, 0, 1].into());
            if TcpListener::bind(SocketAddr::new(ip, port.host)).is_ok() {
                continue;
            }
            let holder = match docker.container_publishing(port.host).await? {
                Some(name) => format!("container {name}"),
                None => format!(
                    "a process outside Docker (see `ss -ltnp 'sport = :{}'`)",
                    port.host
                ),
            };
            let key = port_key(&spec.service);
            return Err(PreflightError::PortInUse {
                port: port.host,
                env: format!("FLEET_{}", key.to_uppercase().replace('.', "__")),
                key,
                holder,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_the_config() {
        assert_eq!(port_key("broker-host"), "broker.host_port");
        assert_eq!(port_key("ingest"), "ingest.host_port");
        assert_eq!(port_key("ingest-lb"), "ingest.host_port");
    }
}
