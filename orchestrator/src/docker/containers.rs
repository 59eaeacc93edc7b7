//! Containers: find, list, create (with their files placed), start, stop, remove, rename and
//! inspect.

use std::collections::{BTreeMap, HashMap};

use bollard::body_full;
use bollard::models::ContainerSummaryStateEnum;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};

use super::client::Docker;
use super::error::{DockerError, api, is_not_found};
use super::labels::{LABEL_CONFIG_HASH, LABEL_SERVICE, LABEL_STACK, stack_filter};
use super::spec::ContainerSpec;

/// Seconds a stopping container gets to drain before it is killed: ingest answers its
/// in-flight requests (up to the produce timeout) and flushes its producer, vehicles flush.
pub const STOP_GRACE_SECS: i32 = 20;

/// What fleet needs to know about an existing container.
#[derive(Debug, Clone)]
pub struct ContainerInfo {
    /// Container id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// `io.fleet.service` label.
    pub service: String,
    /// `io.fleet.config-hash` label.
    pub config_hash: String,
    /// Docker's state word: created, running, exited, restarting, ...
    pub state: String,
    /// Published ports: container port to host port.
    pub ports: HashMap<u16, u16>,
}

impl ContainerInfo {
    /// Whether the container runs.
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

impl Docker {
    /// The container called `name`, if any, with its labels checked against `stack`.
    pub async fn find_container(
        &self,
        name: &str,
        stack: &str,
    ) -> Result<Option<ContainerInfo>, DockerError> {
        let filters = HashMap::from([("name".to_owned(), vec![format!("^/{name}$")])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let found = self
            .inner
            .list_containers(Some(options))
            .await
            .map_err(api("list containers", name))?;
        let Some(summary) = found.into_iter().next() else {
            return Ok(None);
        };
        let labels = summary.labels.clone().unwrap_or_default();
        if labels.get(LABEL_STACK).map(String::as_str) != Some(stack) {
            return Err(DockerError::NotOwned {
                kind: "container",
                name: name.to_owned(),
                stack: stack.to_owned(),
            });
        }
        Ok(Some(summary_to_info(summary)))
    }

    /// The name of a running container (of any owner) that publishes host `port`, if any.
    pub async fn container_publishing(&self, port: u16) -> Result<Option<String>, DockerError> {
        let filters = HashMap::from([("publish".to_owned(), vec![port.to_string()])]);
        let options = ListContainersOptionsBuilder::default()
            .filters(&filters)
            .build();
        Ok(self
            .inner
            .list_containers(Some(options))
            .await
            .map_err(api("list containers publishing port", &port.to_string()))?
            .into_iter()
            .next()
            .map(|c| summary_to_info(c).name))
    }

    /// Every container of `stack` (optionally of one service), running or not.
    pub async fn list_stack_containers(
        &self,
        stack: &str,
        service: Option<&str>,
    ) -> Result<Vec<ContainerInfo>, DockerError> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&stack_filter(stack, service))
            .build();
        let mut list: Vec<ContainerInfo> = self
            .inner
            .list_containers(Some(options))
            .await
            .map_err(api("list containers of stack", stack))?
            .into_iter()
            .map(summary_to_info)
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    /// Creates the container of `spec`, places its files, and returns its id.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String, DockerError> {
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self
            .inner
            .create_container(Some(options), spec.to_create_body())
            .await
            .map_err(api("create container", &spec.name))?;
        for file in &spec.files {
            self.place_file(&created.id, &spec.name, file).await?;
        }
        Ok(created.id)
    }

    /// The environment the container was created with.
    pub async fn container_env(&self, name: &str) -> Result<BTreeMap<String, String>, DockerError> {
        let inspect = self
            .inner
            .inspect_container(name, None)
            .await
            .map_err(api("inspect container", name))?;
        Ok(inspect
            .config
            .and_then(|c| c.env)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
            })
            .collect())
    }

    /// How often the engine restarted the container (its restart policy at work).
    pub async fn restart_count(&self, name: &str) -> Result<i64, DockerError> {
        let inspect = self
            .inner
            .inspect_container(name, None)
            .await
            .map_err(api("inspect container", name))?;
        Ok(inspect.restart_count.unwrap_or(0))
    }

    /// Places `file` into a created container: into its parent folder (which may be a volume,
    /// the only writable place of a read-only container), or, where that folder does not
    /// exist, at `/` with the folders made on the way.
    async fn place_file(
        &self,
        id: &str,
        name: &str,
        file: &super::spec::SecretFile,
    ) -> Result<(), DockerError> {
        let path = std::path::Path::new(&file.path);
        let parent = path.parent().map(|p| p.to_string_lossy().into_owned());
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let pack = |entry: &str| {
            file_archive(file, entry).map_err(|e| DockerError::Build {
                image: name.to_owned(),
                message: format!("pack {}: {e}", file.path),
            })
        };
        if let Some(parent) = parent.filter(|p| p != "/") {
            let options = UploadToContainerOptionsBuilder::default()
                .path(&parent)
                .build();
            match self
                .inner
                .upload_to_container(id, Some(options), body_full(pack(&file_name)?.into()))
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(api("place file in container", name)(e)),
            }
        }
        let options = UploadToContainerOptionsBuilder::default().path("/").build();
        self.inner
            .upload_to_container(
                id,
                Some(options),
                body_full(pack(file.path.trim_start_matches('/'))?.into()),
            )
            .await
            .map_err(api("place file in container", name))
    }

    /// Starts a container.
    pub async fn start(&self, name: &str) -> Result<(), DockerError> {
        self.inner
            .start_container(name, None)
            .await
            .map_err(api("start container", name))
    }

    /// Stops a container (with [`STOP_GRACE_SECS`] to drain); stopped or gone is fine.
    pub async fn stop(&self, name: &str) -> Result<(), DockerError> {
        let stop = StopContainerOptionsBuilder::default()
            .t(STOP_GRACE_SECS)
            .build();
        match self.inner.stop_container(name, Some(stop)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => Ok(()),
            Err(e) => Err(api("stop container", name)(e)),
        }
    }

    /// Stops (with [`STOP_GRACE_SECS`] to drain) and removes a container with its anonymous
    /// volumes; gone is fine.
    pub async fn remove_container(&self, name: &str) -> Result<(), DockerError> {
        self.stop(name).await?;
        let remove = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.inner.remove_container(name, Some(remove)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: removal already in progress.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(api("remove container", name)(e)),
        }
    }

    /// Renames the container `id_or_name` to `new_name`.
    pub async fn rename(&self, id_or_name: &str, new_name: &str) -> Result<(), DockerError> {
        let options = bollard::query_parameters::RenameContainerOptionsBuilder::default()
            .name(new_name)
            .build();
        self.inner
            .rename_container(id_or_name, options)
            .await
            .map_err(api("rename container", id_or_name))
    }

    /// The current name (without `/`) of the container with id `id`, `None` when it is gone.
    pub async fn name_of(&self, id: &str) -> Result<Option<String>, DockerError> {
        match self.inner.inspect_container(id, None).await {
            Ok(details) => Ok(details.name.map(|n| n.trim_start_matches('/').to_owned())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api("inspect container", id)(e)),
        }
    }
}

/// The [`ContainerInfo`] of a listed container.
fn summary_to_info(summary: bollard::models::ContainerSummary) -> ContainerInfo {
    let labels = summary.labels.unwrap_or_default();
    let ports = summary
        .ports
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| Some((p.private_port, p.public_port?)))
        .collect();
    let state = match summary.state {
        Some(ContainerSummaryStateEnum::EMPTY) | None => "unknown".to_owned(),
        Some(s) => s.to_string(),
    };
    ContainerInfo {
        id: summary.id.unwrap_or_default(),
        name: summary
            .names
            .unwrap_or_default()
            .first()
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        service: labels.get(LABEL_SERVICE).cloned().unwrap_or_default(),
        config_hash: labels.get(LABEL_CONFIG_HASH).cloned().unwrap_or_default(),
        state,
        ports,
    }
}

/// A tar archive holding `file` as `entry`.
fn file_archive(file: &super::spec::SecretFile, entry: &str) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_size(file.content.len() as u64);
    header.set_mode(file.mode);
    header.set_uid(file.uid);
    header.set_gid(file.uid);
    header.set_mtime(0);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, entry, file.content.as_slice())?;
    builder.into_inner()
}
