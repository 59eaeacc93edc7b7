//! Resolving every image of a stack: an upstream image when the config names one, otherwise the
//! recipe in the repo built on the base image (reused when its hash already has a tag).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fleet_common::config::{Config, ImageOverride};

use super::context::BuildContext;
use super::host_build::{
    BROKER_BUILD_ESTIMATE, BrokerBuild, HostBuildError, build_workspace_binaries, install_broker,
};
use crate::docker::{Docker, DockerError};
use crate::output::Progress;
use crate::paths::StackPaths;

/// Why an image could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A Docker call failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// A host build failed.
    #[error(transparent)]
    HostBuild(#[from] HostBuildError),
    /// A file of a recipe could not be read.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was done.
        op: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Bootstrapping the base image failed.
    #[error("bootstrap the base image: {0}")]
    Bootstrap(String),
    /// The host lacks what the builds need.
    #[error(transparent)]
    Prerequisite(#[from] super::prerequisites::PrerequisiteError),
    /// The base image, which several builds wait for, could not be had.
    #[error(transparent)]
    Base(#[from] std::sync::Arc<ImageError>),
}

impl ImageError {
    pub(super) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

/// An image reference with the id it resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// What containers are created from.
    pub reference: String,
    /// The image id.
    pub id: String,
}

impl Resolved {
    pub(super) fn new(reference: &str, id: String) -> Self {
        Self {
            reference: reference.to_owned(),
            id,
        }
    }
}

/// The images of the infrastructure and of our services.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// ZooKeeper.
    pub zookeeper: Resolved,
    /// The broker (also runs the host listener).
    pub broker: Resolved,
    /// PostgreSQL.
    pub postgres: Resolved,
    /// ingest, consumer and vehicle.
    pub runtime: Resolved,
}

impl ImageSet {
    /// Placeholders without ids, for checks that need only names and ports (preflight).
    pub fn unresolved() -> Self {
        let r = |name: &str| Resolved::new(name, String::new());
        Self {
            zookeeper: r("zookeeper"),
            broker: r("broker"),
            postgres: r("postgres"),
            runtime: r("runtime"),
        }
    }
}

/// The base image as a future that several builds await; it runs once.
type SharedBase<'a> = futures::future::Shared<
    futures::future::BoxFuture<'a, Result<Resolved, std::sync::Arc<ImageError>>>,
>;

/// Builds (or reuses) every image in parallel. The host builds (the broker's `cargo install`,
/// our binaries) start at once, beside the base image's pull or bootstrap; each recipe is
/// built in the engine as soon as the base and its binaries are there.
pub async fn ensure_images(
    docker: &Docker,
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
) -> Result<ImageSet, ImageError> {
    use futures::FutureExt as _;
    super::prerequisites::ensure(docker, config, paths, progress).await?;
    let base: SharedBase<'_> =
        async move { super::base::ensure_base(docker, config, &paths.cache, progress).await }
            .map(|r| r.map_err(std::sync::Arc::new))
            .boxed()
            .shared();
    // Upstream images need no base: pull them without waiting for it.
    let upstream = |u: Option<&ImageOverride>| u.filter(|u| !u.image.is_empty()).cloned();
    let image = |name: &'static str, over: Option<ImageOverride>| {
        let base = base.clone();
        async move {
            if let Some(over) = over {
                return pull_upstream(docker, progress, &over).await;
            }
            let base = base.await?;
            recipe_image(docker, config, paths, progress, &base, name, Vec::new()).await
        }
    };
    let zookeeper = image("zookeeper", upstream(config.zookeeper.upstream.as_ref()));
    let postgres = image("postgres", upstream(config.postgres.upstream.as_ref()));
    let broker = {
        let base = base.clone();
        async move {
            if let Some(over) = upstream(config.broker.upstream.as_ref()) {
                return pull_upstream(docker, progress, &over).await;
            }
            let binary = broker_binary(config, paths, progress).await?;
            let base = base.await?;
            recipe_image(
                docker,
                config,
                paths,
                progress,
                &base,
                "broker",
                vec![("nisshi".into(), binary)],
            )
            .await
        }
    };
    let runtime = {
        let base = base.clone();
        async move {
            let binaries = service_binaries(config, paths, progress).await?;
            let base = base.await?;
            runtime_from(docker, config, paths, progress, &base, binaries).await
        }
    };
    // Every build runs to its end even when another fails, so that a broken service build
    // does not throw away a long broker build.
    let (zookeeper, postgres, broker, runtime) = tokio::join!(zookeeper, postgres, broker, runtime);
    Ok(ImageSet {
        zookeeper: zookeeper?,
        broker: broker?,
        postgres: postgres?,
        runtime: runtime?,
    })
}

/// The broker binary, from the cache or built now, with an estimate and the elapsed time in
/// its progress line.
async fn broker_binary(
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
) -> Result<PathBuf, ImageError> {
    let build = BrokerBuild {
        version: &config.broker.nisshi_version,
        features: &config.broker.nisshi_features,
        rust_version: &config.broker.nisshi_rust_version,
    };
    if let Some(binary) = build.cached(&paths.cache) {
        return Ok(binary);
    }
    if let Some(rustc) = super::prerequisites::rustc_version().await
        && super::prerequisites::older_than(&rustc, build.rust_version)
    {
        progress.line(format!(
            "note: rustc {rustc} is older than the {} that a dependency of nisshi {} declares; building with --ignore-rust-version, which builds and runs on 1.95 (`broker.nisshi_rust_version`)",
            build.rust_version, build.version
        ));
    }
    let step = progress.step(format!(
        "broker: cargo install nisshi {} ({BROKER_BUILD_ESTIMATE})",
        build.version
    ));
    match install_broker(&paths.cache, &build, &step).await {
        Ok(binary) => {
            step.finish("installed");
            Ok(binary)
        }
        Err(e) => {
            step.fail("cargo install failed");
            Err(e.into())
        }
    }
}

/// Our service binaries, built by cargo (a no-op when they are up to date).
async fn service_binaries(
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
) -> Result<Vec<PathBuf>, ImageError> {
    let step = progress.step(format!(
        "cargo build --profile {}",
        config.images.cargo_profile
    ));
    match build_workspace_binaries(&paths.workspace, &config.images.cargo_profile, &step).await {
        Ok(b) => {
            step.finish("up to date");
            Ok(b)
        }
        Err(e) => {
            step.fail("cargo build failed");
            Err(e.into())
        }
    }
}

/// The runtime image alone (for `launch-fleet`).
pub async fn runtime_image(
    docker: &Docker,
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
    base: &Resolved,
) -> Result<Resolved, ImageError> {
    let binaries = service_binaries(config, paths, progress).await?;
    runtime_from(docker, config, paths, progress, base, binaries).await
}

/// The runtime image carrying `binaries`.
async fn runtime_from(
    docker: &Docker,
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
    base: &Resolved,
    binaries: Vec<PathBuf>,
) -> Result<Resolved, ImageError> {
    let extra = binaries
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .expect("a binary path")
                .to_string_lossy()
                .into_owned();
            (name, path)
        })
        .collect();
    recipe_image(docker, config, paths, progress, base, "runtime", extra).await
}

/// An upstream image: reused when the engine has it, pulled otherwise.
async fn pull_upstream(
    docker: &Docker,
    progress: &Progress,
    upstream: &ImageOverride,
) -> Result<Resolved, ImageError> {
    if let Some(id) = docker.image_id(&upstream.image).await? {
        return Ok(Resolved::new(&upstream.image, id));
    }
    let step = progress.step(format!("pull {}", upstream.image));
    if let Err(e) = docker.pull(&upstream.image).await {
        step.fail(&e.to_string());
        return Err(e.into());
    }
    step.finish("pulled");
    let id = docker.image_id(&upstream.image).await?.unwrap_or_default();
    Ok(Resolved::new(&upstream.image, id))
}

/// The recipe `name` built on `base` with `extra_files` added to its context, reused when
/// an image with its hash exists.
async fn recipe_image(
    docker: &Docker,
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
    base: &Resolved,
    name: &str,
    extra_files: Vec<(String, PathBuf)>,
) -> Result<Resolved, ImageError> {
    let dir = paths.recipes.join(name);
    let mut context =
        BuildContext::from_dir(&dir).map_err(|e| ImageError::io("read recipe", &dir, e))?;
    for (file, source) in &extra_files {
        context
            .add_file(file, source)
            .map_err(|e| ImageError::io("read", source, e))?;
    }
    let hash = context.hash(&[&base.id, name]);
    let reference = format!("{}/{name}:{hash}", config.images.tag_prefix);
    if let Some(id) = docker.image_id(&reference).await? {
        tracing::debug!(%reference, "image exists, reused");
        return Ok(Resolved::new(&reference, id));
    }
    let step = progress.step(format!("build image {reference}"));
    let tar = context
        .to_tar()
        .map_err(|e| ImageError::io("pack build context", &dir, e))?;
    let args = HashMap::from([("BASE".to_owned(), base.reference.clone())]);
    match docker
        .build(&reference, tar, &args, |line| step.update(line))
        .await
    {
        Ok(id) => {
            step.finish("built");
            Ok(Resolved::new(&reference, id))
        }
        Err(e) => {
            step.fail("build failed");
            Err(e.into())
        }
    }
}
