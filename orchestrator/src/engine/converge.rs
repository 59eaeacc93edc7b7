//! Converging one container: keep it if its config hash matches and it runs, start it if it
//! only stopped, replace it if its spec changed, create it if it is missing. Each change is
//! written into the run's [`Journal`] before it is made; a replaced container is only stopped
//! and set aside under another name, so that a rollback can bring it back.

use crate::docker::{ContainerInfo, ContainerSpec, Docker, DockerError};
use crate::engine::journal::{Change, Journal, backup_name};

/// What converging did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Matching and running: untouched.
    Kept,
    /// Matching but stopped: started.
    Started,
    /// Changed: a new container took the old one's place.
    Recreated,
    /// Missing: created.
    Created,
}

impl Action {
    /// Whether this run made a new container (the old one, if any, is kept aside in the
    /// journal until the run succeeds).
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

/// Brings the container of `spec` to its spec and running state, writing each change into
/// `journal` first.
pub async fn converge(
    docker: &Docker,
    spec: &ContainerSpec,
    journal: &Journal,
) -> Result<Applied, DockerError> {
    let wanted = spec.config_hash();
    let action = match docker.find_container(&spec.name, &spec.stack).await? {
        Some(info) if info.config_hash == wanted && info.is_running() => Action::Kept,
        Some(info) if info.config_hash == wanted => {
            journal.record(Change::Started {
                name: info.name.clone(),
            });
            docker.start(&info.name).await?;
            Action::Started
        }
        Some(info) => {
            tracing::info!(container = %info.name, old = %info.config_hash, new = %wanted, "spec changed, replacing");
            let backup = backup_name(&info.name);
            // A backup left by an earlier run that could not finish is not needed any more.
            if let Some(stale) = docker.find_container(&backup, &spec.stack).await? {
                docker.remove_container(&stale.id).await?;
            }
            journal.record(Change::Replaced {
                name: info.name.clone(),
                id: info.id.clone(),
                backup: backup.clone(),
                was_running: info.is_running(),
            });
            docker.stop(&info.id).await?;
            docker.rename(&info.id, &backup).await?;
            docker.create_container(spec).await?;
            docker.start(&spec.name).await?;
            Action::Recreated
        }
        None => {
            journal.record(Change::Created {
                name: spec.name.clone(),
            });
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
