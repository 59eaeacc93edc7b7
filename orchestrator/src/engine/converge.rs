//! Converging one container: keep it if its config hash matches and it runs, start it if it
//! only stopped, recreate it if its spec changed, create it if it is missing.

use crate::docker::{ContainerInfo, ContainerSpec, Docker, DockerError};

/// What converging did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Matching and running: untouched.
    Kept,
    /// Matching but stopped: started.
    Started,
    /// Changed: removed and created anew.
    Recreated,
    /// Missing: created.
    Created,
}

impl Action {
    /// Whether this run made the container (so a rollback removes it).
    pub fn created_it(self) -> bool {
        matches!(self, Action::Created | Action::Recreated)
    }

    /// A word for the user.
    pub fn word(self) -> &'static str {
        match self {
            Action::Kept => "unchanged",
            Action::Started => "started",
            Action::Recreated => "recreated (config changed)",
            Action::Created => "created",
        }
    }
}

/// A converged container.
#[derive(Debug, Clone)]
pub struct Applied {
    /// What was done.
    pub action: Action,
    /// The container as it is now.
    pub info: ContainerInfo,
}

/// Brings the container of `spec` to its spec and running state.
pub async fn converge(docker: &Docker, spec: &ContainerSpec) -> Result<Applied, DockerError> {
    let wanted = spec.config_hash();
    let action = match docker.find_container(&spec.name, &spec.stack).await? {
        Some(info) if info.config_hash == wanted && info.is_running() => Action::Kept,
        Some(info) if info.config_hash == wanted => {
            docker.start(&info.name).await?;
            Action::Started
        }
        Some(info) => {
            tracing::info!(container = %info.name, old = %info.config_hash, new = %wanted, "spec changed, recreating");
            docker.remove_container(&info.name).await?;
            docker.create_container(spec).await?;
            docker.start(&spec.name).await?;
            Action::Recreated
        }
        None => {
            docker.create_container(spec).await?;
            docker.start(&spec.name).await?;
            Action::Created
        }
    };
    let info = docker
        .find_container(&spec.name, &spec.stack)
        .await?
        .expect("the container was just converged");
    Ok(Applied { action, info })
}
