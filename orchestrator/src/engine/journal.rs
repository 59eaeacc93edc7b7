//! What one run changed on the engine, written down before each change is made, so that a run
//! that fails or is interrupted puts back exactly what it changed: it removes the containers,
//! volumes and network it created, brings back a container it replaced (the same container,
//! kept aside under another name until the run succeeds) and starts again what it stopped.
//! Nothing that existed before the run is removed by a rollback.

use std::sync::Mutex;

use crate::docker::{Docker, DockerError};

/// One change, in the order made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The network was created.
    Network(String),
    /// The volume was created.
    Volume(String),
    /// The container `name` was created (it did not exist).
    Created {
        /// Its name.
        name: String,
    },
    /// The container `id`, called `name`, was stopped and renamed to `backup`, and a new
    /// container took its name.
    Replaced {
        /// The name both containers have in turn.
        name: String,
        /// The replaced container's id.
        id: String,
        /// Its name while it is kept aside.
        backup: String,
        /// Whether it ran before the run.
        was_running: bool,
    },
    /// The existing, stopped container `name` was started.
    Started {
        /// Its name.
        name: String,
    },
    /// The running container `name` was stopped.
    Stopped {
        /// Its name.
        name: String,
    },
}

/// What a rollback did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Undone {
    /// Containers, volumes and networks removed.
    pub removed: usize,
    /// Replaced containers brought back.
    pub restored: usize,
    /// Containers started or stopped again as they were.
    pub reverted: usize,
    /// What could not be undone.
    pub errors: Vec<String>,
}

/// The changes of one run, shared by its concurrent tasks.
#[derive(Debug, Default)]
pub struct Journal {
    stack: String,
    changes: Mutex<Vec<Change>>,
}

/// The name a replaced container is kept under until the run succeeds.
pub fn backup_name(name: &str) -> String {
    format!("{name}-replaced")
}

impl Journal {
    /// An empty journal for `stack`.
    pub fn new(stack: &str) -> Self {
        Self {
            stack: stack.to_owned(),
            changes: Mutex::default(),
        }
    }

    /// Writes `change` down (before it is made).
    pub fn record(&self, change: Change) {
        self.lock().push(change);
    }

    /// The changes so far.
    pub fn changes(&self) -> Vec<Change> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Change>> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The run succeeded: removes the replaced containers kept aside.
    pub async fn commit(&self, docker: &Docker) -> Result<(), DockerError> {
        let changes = std::mem::take(&mut *self.lock());
        for change in changes {
            if let Change::Replaced { id, .. } = change {
                docker.remove_container(&id).await?;
            }
        }
        Ok(())
    }

    /// Undoes every change, newest first, going on past failures (listed in the result).
    pub async fn rollback(&self, docker: &Docker) -> Undone {
        let changes = std::mem::take(&mut *self.lock());
        let mut undone = Undone::default();
        for change in changes.into_iter().rev() {
            if let Err(e) = self.undo(docker, &change, &mut undone).await {
                undone.errors.push(format!("{change:?}: {e}"));
            }
        }
        undone
    }

    async fn undo(
        &self,
        docker: &Docker,
        change: &Change,
        undone: &mut Undone,
    ) -> Result<(), String> {
        let e = |e: DockerError| e.to_string();
        match change {
            Change::Network(name) => {
                docker.remove_network(name).await.map_err(e)?;
                undone.removed += 1;
            }
            Change::Volume(name) => {
                docker.remove_volume(name).await.map_err(e)?;
                undone.removed += 1;
            }
            Change::Created { name } => {
                // Only ours: a same-named container of someone else is an error here.
                if docker
                    .find_container(name, &self.stack)
                    .await
                    .map_err(e)?
                    .is_some()
                {
                    docker.remove_container(name).await.map_err(e)?;
                    undone.removed += 1;
                }
            }
            Change::Replaced {
                name,
                id,
                was_running,
                ..
            } => {
                let Some(current) = docker.name_of(id).await.map_err(e)? else {
                    return Err(format!("the replaced container {name} ({id}) is gone"));
                };
                if current != *name {
                    // The new container (if it was made) goes; the old one takes its name back.
                    if let Some(new) = docker.find_container(name, &self.stack).await.map_err(e)?
                        && new.id != *id
                    {
                        docker.remove_container(&new.id).await.map_err(e)?;
                    }
                    docker.rename(id, name).await.map_err(e)?;
                }
                if *was_running {
                    self.start(docker, name).await.map_err(e)?;
                }
                undone.restored += 1;
            }
            Change::Started { name } => {
                docker.stop(name).await.map_err(e)?;
                undone.reverted += 1;
            }
            Change::Stopped { name } => {
                if self.start(docker, name).await.map_err(e)? {
                    undone.reverted += 1;
                }
            }
        }
        Ok(())
    }
}

impl Journal {
    /// Starts the container `name` of this stack unless it runs; whether it exists.
    async fn start(&self, docker: &Docker, name: &str) -> Result<bool, DockerError> {
        match docker.find_container(name, &self.stack).await? {
            Some(info) if info.is_running() => Ok(true),
            Some(_) => docker.start(name).await.map(|()| true),
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_kept_in_order_and_taken_once() {
        let journal = Journal::new("s");
        journal.record(Change::Network("s-net".into()));
        journal.record(Change::Stopped {
            name: "s-ingest".into(),
        });
        assert_eq!(journal.changes().len(), 2);
        assert_eq!(journal.changes()[0], Change::Network("s-net".into()));
        assert_eq!(backup_name("s-zookeeper"), "s-zookeeper-replaced");
    }
}
