//! Resolving every image of a stack: an upstream image when the config names one, otherwise the
//! recipe in the repo built on the base image (reused when its hash already has a tag).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use fleet_common::config::{Config, ImageOverride};

use super::context::BuildContext;
use super::host_build::{HostBuildError, build_workspace_binaries, install_tansu};
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

/// Builds (or reuses) every image in parallel: Tansu and our binaries compile on the host
/// while the package-based images build in the engine.
pub async fn ensure_images(
    docker: &Docker,
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
) -> Result<ImageSet, ImageError> {
    let base = super::base::ensure_base(docker, config, &paths.cache, progress).await?;
    let zookeeper = upstream_or_recipe(
        docker,
        config,
        paths,
        progress,
        &base,
        "zookeeper",
        config.zookeeper.upstream.as_ref(),
        Vec::new(),
    );
    let postgres = upstream_or_recipe(
        docker,
        config,
        paths,
        progress,
        &base,
        "postgres",
        config.postgres.upstream.as_ref(),
        Vec::new(),
    );
    let broker = async {
        if config
            .broker
            .upstream
            .as_ref()
            .is_some_and(|u| !u.image.is_empty())
        {
            return upstream_or_recipe(
                docker,
                config,
                paths,
                progress,
                &base,
                "broker",
                config.broker.upstream.as_ref(),
                Vec::new(),
            )
            .await;
        }
        let step = progress.step(format!(
            "tansu {} (cargo install --locked)",
            config.broker.tansu_version
        ));
        let binary = match install_tansu(
            &paths.cache,
            &config.broker.tansu_version,
            &config.broker.tansu_features,
            &step,
        )
        .await
        {
            Ok(b) => {
                step.finish("ready");
                b
            }
            Err(e) => {
                step.fail("cargo install failed");
                return Err(e.into());
            }
        };
        upstream_or_recipe(
            docker,
            config,
            paths,
            progress,
            &base,
            "broker",
            None,
            vec![("tansu".into(), binary)],
        )
        .await
    };
    let runtime = runtime_image(docker, config, paths, progress, &base);
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

/// The runtime image alone (for `launch-fleet`).
pub async fn runtime_image(
    docker: &Docker,
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
    base: &Resolved,
) -> Result<Resolved, ImageError> {
    let step = progress.step(format!(
        "cargo build --profile {}",
        config.images.cargo_profile
    ));
    let binaries =
        match build_workspace_binaries(&paths.workspace, &config.images.cargo_profile, &step).await
        {
            Ok(b) => {
                step.finish("up to date");
                b
            }
            Err(e) => {
                step.fail("cargo build failed");
                return Err(e.into());
            }
        };
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
    upstream_or_recipe(
        docker, config, paths, progress, base, "runtime", None, extra,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn upstream_or_recipe(
    docker: &Docker,
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
    base: &Resolved,
    name: &str,
    upstream: Option<&ImageOverride>,
    extra_files: Vec<(String, PathBuf)>,
) -> Result<Resolved, ImageError> {
    if let Some(upstream) = upstream.filter(|u| !u.image.is_empty()) {
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
        return Ok(Resolved::new(&upstream.image, id));
    }
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
