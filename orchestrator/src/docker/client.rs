//! The Docker client: each bollard call the orchestrator needs, mapped to an error that names
//! the operation and its target.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{ContainerSummaryStateEnum, NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    BuildImageOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bollard::{body_full, body_try_stream};
use futures::{StreamExt, TryStreamExt};

use super::labels::{LABEL_CONFIG_HASH, LABEL_SERVICE, LABEL_STACK, stack_filter};
use super::spec::ContainerSpec;

/// A failed Docker operation.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine does not answer: an environment fault, not something fleet can work around.
    #[error(
        "the Docker engine does not answer ({0}); start it, or check DOCKER_HOST and the socket permissions"
    )]
    Unreachable(#[source] bollard::errors::Error),
    /// A configured engine does not answer (or its TLS files or SSH login do not work).
    #[error("the Docker engine at {engine} does not answer: {source}")]
    EngineUnreachable {
        /// The engine's URL from the config.
        engine: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An engine URL with a scheme fleet does not know (the config check refuses these).
    #[error("engine url {0:?}: expected unix://, tcp://, http:// or ssh://")]
    BadEngineUrl(String),
    /// An API call failed.
    #[error("{op} {target}: {source}")]
    Api {
        /// The operation, e.g. "create container".
        op: &'static str,
        /// The container, image, network or volume.
        target: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An image build failed; the message is the builder's.
    #[error("build image {image}: {message}")]
    Build {
        /// The tag being built.
        image: String,
        /// What the builder said.
        message: String,
    },
    /// A name is taken by something this stack does not own.
    #[error(
        "{kind} {name} exists but does not carry the label {LABEL_STACK}={stack}; fleet never touches what it does not own: remove or rename it, or choose another stack.name"
    )]
    NotOwned {
        /// container, network or volume.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The stack that wanted the name.
        stack: String,
    },
}

fn api(op: &'static str, target: &str) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let target = target.to_owned();
    move |source| DockerError::Api { op, target, source }
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

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

/// The orchestrator's Docker client.
#[derive(Debug, Clone)]
pub struct Docker {
    inner: bollard::Docker,
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

    /// The id of an image, or `None` if the engine does not have it.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, DockerError> {
        match self.inner.inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api("inspect image", reference)(e)),
        }
    }

    /// Pulls `reference` (`name:tag`).
    pub async fn pull(&self, reference: &str) -> Result<(), DockerError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        self.inner
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(api("pull image", reference))
    }

    /// Imports a root file system tarball as image `repo:tag`.
    pub async fn import_rootfs(
        &self,
        tarball: &std::path::Path,
        repo: &str,
        tag: &str,
    ) -> Result<(), DockerError> {
        let target = format!("{repo}:{tag}");
        let file = tokio::fs::File::open(tarball)
            .await
            .map_err(|e| DockerError::Build {
                image: target.clone(),
                message: format!("open {}: {e}", tarball.display()),
            })?;
        let stream = tokio_util::io::ReaderStream::new(file);
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .build();
        self.inner
            .create_image(Some(options), Some(body_try_stream(stream)), None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(api("import image", &target))
    }

    /// Builds `tag` from a tar build context; `on_line` receives each line of builder output.
    /// Returns the new image's id.
    pub async fn build(
        &self,
        tag: &str,
        context: Vec<u8>,
        build_args: &HashMap<String, String>,
        mut on_line: impl FnMut(&str),
    ) -> Result<String, DockerError> {
        let options = BuildImageOptionsBuilder::default()
            .t(tag)
            .dockerfile("Dockerfile")
            .rm(true)
            .forcerm(true)
            .buildargs(build_args)
            .build();
        let mut stream = self
            .inner
            .build_image(options, None, Some(body_full(context.into())));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| DockerError::Build {
                image: tag.to_owned(),
                message: e.to_string(),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(DockerError::Build {
                    image: tag.to_owned(),
                    message: detail.message.unwrap_or_default(),
                });
            }
            if let Some(line) = info.stream {
                for l in line.lines().filter(|l| !l.trim().is_empty()) {
                    on_line(l);
                }
            }
        }
        self.image_id(tag).await?.ok_or_else(|| DockerError::Build {
            image: tag.to_owned(),
            message: "the builder finished but the image is missing".into(),
        })
    }

    /// Creates the stack network unless it exists (true when created); refuses one that the
    /// stack does not own.
    pub async fn ensure_network(&self, name: &str, stack: &str) -> Result<bool, DockerError> {
        match self.inner.inspect_network(name, None).await {
            Ok(net) => {
                let owned = net
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_STACK))
                    .is_some_and(|s| s == stack);
                if owned {
                    Ok(false)
                } else {
                    Err(DockerError::NotOwned {
                        kind: "network",
                        name: name.to_owned(),
                        stack: stack.to_owned(),
                    })
                }
            }
            Err(e) if is_not_found(&e) => {
                let request = NetworkCreateRequest {
                    name: name.to_owned(),
                    driver: Some("bridge".into()),
                    labels: Some(HashMap::from([(LABEL_STACK.to_owned(), stack.to_owned())])),
                    ..Default::default()
                };
                self.inner
                    .create_network(request)
                    .await
                    .map_err(api("create network", name))?;
                Ok(true)
            }
            Err(e) => Err(api("inspect network", name)(e)),
        }
    }

    /// Creates a named volume unless it exists (true when created); refuses one that the
    /// stack does not own.
    pub async fn ensure_volume(
        &self,
        name: &str,
        stack: &str,
        service: &str,
    ) -> Result<bool, DockerError> {
        match self.inner.inspect_volume(name).await {
            Ok(volume) => {
                if volume.labels.get(LABEL_STACK).is_some_and(|s| s == stack) {
                    Ok(false)
                } else {
                    Err(DockerError::NotOwned {
                        kind: "volume",
                        name: name.to_owned(),
                        stack: stack.to_owned(),
                    })
                }
            }
            Err(e) if is_not_found(&e) => {
                let request = VolumeCreateRequest {
                    name: Some(name.to_owned()),
                    labels: Some(HashMap::from([
                        (LABEL_STACK.to_owned(), stack.to_owned()),
                        (LABEL_SERVICE.to_owned(), service.to_owned()),
                    ])),
                    ..Default::default()
                };
                self.inner
                    .create_volume(request)
                    .await
                    .map_err(api("create volume", name))?;
                Ok(true)
            }
            Err(e) => Err(api("inspect volume", name)(e)),
        }
    }

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

    /// Names of the stack's networks.
    pub async fn list_stack_networks(&self, stack: &str) -> Result<Vec<String>, DockerError> {
        let options = ListNetworksOptionsBuilder::default()
            .filters(&stack_filter(stack, None))
            .build();
        Ok(self
            .inner
            .list_networks(Some(options))
            .await
            .map_err(api("list networks of stack", stack))?
            .into_iter()
            .filter_map(|n| n.name)
            .collect())
    }

    /// Names of the stack's volumes.
    pub async fn list_stack_volumes(&self, stack: &str) -> Result<Vec<String>, DockerError> {
        let options = ListVolumesOptionsBuilder::default()
            .filters(&stack_filter(stack, None))
            .build();
        Ok(self
            .inner
            .list_volumes(Some(options))
            .await
            .map_err(api("list volumes of stack", stack))?
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
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

    /// Removes a network; gone is fine.
    pub async fn remove_network(&self, name: &str) -> Result<(), DockerError> {
        match self.inner.remove_network(name).await {
            Err(e) if !is_not_found(&e) => Err(api("remove network", name)(e)),
            _ => Ok(()),
        }
    }

    /// Removes a volume; gone is fine.
    pub async fn remove_volume(&self, name: &str) -> Result<(), DockerError> {
        match self
            .inner
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Err(e) if !is_not_found(&e) => Err(api("remove volume", name)(e)),
            _ => Ok(()),
        }
    }

    /// The last `lines` lines of a container's output (stdout and stderr).
    pub async fn logs_tail(&self, name: &str, lines: usize) -> Result<String, DockerError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let chunks: Vec<_> = self
            .inner
            .logs(name, Some(options))
            .try_collect()
            .await
            .map_err(api("read logs of container", name))?;
        Ok(chunks.iter().map(|c| c.to_string()).collect())
    }

    /// Follows a container's output, calling `on_chunk` with each piece of text.
    pub async fn logs_follow(
        &self,
        name: &str,
        tail: usize,
        mut on_chunk: impl FnMut(&str),
    ) -> Result<(), DockerError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .tail(&tail.to_string())
            .build();
        let mut stream = self.inner.logs(name, Some(options));
        while let Some(chunk) = stream.next().await {
            on_chunk(
                &chunk
                    .map_err(api("follow logs of container", name))?
                    .to_string(),
            );
        }
        Ok(())
    }
}

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
