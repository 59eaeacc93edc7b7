//! The Docker client: each bollard call the orchestrator needs, mapped to an error that names
//! the operation and its target. This file holds the client and its connection; the calls are
//! grouped by what they act on in the sibling modules `images`, `containers`, `networks`,
//! `volumes` and `logs`.

use super::error::{DockerError, api};

/// The orchestrator's Docker client.
#[derive(Debug, Clone)]
pub struct Docker {
    /// The bollard client; the sibling modules make their calls through it.
    pub(super) inner: bollard::Docker,
}

impl Docker {
    /// Connects to the local engine (or `DOCKER_HOST`), negotiates the API version and pings.
    pub async fn connect() -> Result<Self, DockerError> {
        let inner = bollard::Docker::connect_with_local_defaults()
            .map_err(DockerError::Unreachable)?
            .negotiate_version()
            .await
            .map_err(DockerError::Unreachable)?;
        inner.ping().await.map_err(DockerError::Unreachable)?;
        Ok(Self { inner })
    }

    /// Connects to the engine `engine` describes (see [`super::connect`]); relative paths in
    /// it are taken from `base`.
    pub async fn connect_to(
        engine: &fleet_common::config::EngineConfig,
        base: &std::path::Path,
    ) -> Result<Self, DockerError> {
        if engine.url.is_empty() && std::env::var_os("DOCKER_HOST").is_none() {
            // The local socket, as before `[target]` existed.
            return Self::connect().await;
        }
        let inner = super::connect::connect_engine(engine, base).await?;
        Ok(Self { inner })
    }

    /// The bollard client underneath, for the swarm backend's own calls.
    pub fn bollard(&self) -> &bollard::Docker {
        &self.inner
    }

    /// The engine's data folder (`DockerRootDir`), where images and volumes take space.
    pub async fn root_dir(&self) -> Result<Option<String>, DockerError> {
        let info = self
            .inner
            .info()
            .await
            .map_err(api("read the engine's info", "docker"))?;
        Ok(info.docker_root_dir)
    }
}
