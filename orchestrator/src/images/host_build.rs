//! Binaries built by cargo on the host and copied into images: the pinned Nisshi broker
//! (`cargo install --locked`, cached across stacks) and our own service binaries.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::output::Step;

/// The binaries of the runtime image (each the only binary of the package of its name).
pub const SERVICE_BINARIES: [&str; 4] = ["ingest", "consumer", "vehicle", "balancer"];

/// A host command (cargo, debootstrap, tar) that failed.
#[derive(Debug, thiserror::Error)]
pub enum HostBuildError {
    /// cargo could not be started.
    #[error("run `{command}`: {source}; is the program installed and on PATH?")]
    Spawn {
        /// The command line.
        command: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// cargo failed; the tail of its output is attached.
    #[error("`{command}` failed ({status}); its last lines:\n{tail}")]
    Failed {
        /// The command line.
        command: String,
        /// Exit status.
        status: std::process::ExitStatus,
        /// Last lines of output.
        tail: String,
    },
    /// The cache's lock for the artefact could not be taken.
    #[error("lock {path} (held while the artefact is built): {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// cargo succeeded but the expected binary is missing.
    #[error("`{command}` succeeded but {path} is missing")]
    Missing {
        /// The command line.
        command: String,
        /// The binary that should exist.
        path: PathBuf,
    },
}

/// Runs `cargo args...` in `dir`, streaming its output into `step`. Returns the command line.
async fn run_cargo(
    dir: &Path,
    args: &[String],
    envs: &[(&str, &Path)],
    step: &Step,
) -> Result<String, HostBuildError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_streaming(&cargo, dir, args, envs, step).await
}

/// Runs `program args...` in `dir`, showing its output (both streams) in `step` and keeping
/// the last lines for the error. Returns the command line.
pub(super) async fn run_streaming(
    program: &str,
    dir: &Path,
    args: &[String],
    envs: &[(&str, &Path)],
    step: &Step,
) -> Result<String, HostBuildError> {
    let command = format!("{program} {}", args.join(" "));
    tracing::debug!(%command, dir = %dir.display(), "running");
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (key, value) in envs {
        cmd.env(key, value);
    }
    let mut child = cmd.spawn().map_err(|source| HostBuildError::Spawn {
        command: command.clone(),
        source,
    })?;
    let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
    let stderr = BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut lines = futures::stream::select(
        tokio_stream::wrappers::LinesStream::new(stdout),
        tokio_stream::wrappers::LinesStream::new(stderr),
    );
    let mut tail = VecDeque::with_capacity(40);
    while let Some(Ok(line)) = futures::StreamExt::next(&mut lines).await {
        step.update(line.trim());
        tracing::trace!(target: "cargo", "{line}");
        if tail.len() == 40 {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    let status = child.wait().await.map_err(|source| HostBuildError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !status.success() {
        return Err(HostBuildError::Failed {
            command,
            status,
            tail: tail.into_iter().collect::<Vec<_>>().join("\n"),
        });
    }
    Ok(command)
}

/// What the broker build installs: `cargo install nisshi` of a pinned version and features.
#[derive(Debug, Clone)]
pub struct BrokerBuild<'a> {
    /// The crate's version.
    pub version: &'a str,
    /// Cargo features (storage engines); default features are off.
    pub features: &'a [String],
    /// The newest `rust-version` a locked dependency declares.
    pub rust_version: &'a str,
}

/// How long the broker build usually takes on this project's 2-core machines, for the
/// progress line.
pub const BROKER_BUILD_ESTIMATE: &str = "usually 15-25 min on 2 cores";

impl BrokerBuild<'_> {
    /// The cache folder of this version and feature set (features sorted, so their order in
    /// the config does not matter).
    pub fn root(&self, cache_dir: &Path) -> PathBuf {
        let mut features = self.features.to_vec();
        features.sort();
        cache_dir.join("cargo-install").join(format!(
            "nisshi-{}-{}",
            self.version,
            features.join("+")
        ))
    }

    /// The installed binary, when it is in the cache.
    pub fn cached(&self, cache_dir: &Path) -> Option<PathBuf> {
        let binary = self.root(cache_dir).join("bin").join("nisshi");
        binary.is_file().then_some(binary)
    }
}

/// The Nisshi binary of `build`, installed once under `cache_dir` and reused. `rustc` is the
/// host compiler's version, when known: older than the declared minimum is said in `step`.
pub async fn install_broker(
    cache_dir: &Path,
    build: &BrokerBuild<'_>,
    step: &Step,
) -> Result<PathBuf, HostBuildError> {
    if let Some(binary) = build.cached(cache_dir) {
        return Ok(binary);
    }
    // Another fleet process may be installing it into the same folders: wait for it.
    let lock_path = cache_dir.join("locks").join("nisshi.lock");
    let _lock = super::cache_lock::acquire(&lock_path, step)
        .await
        .map_err(|source| HostBuildError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    if let Some(binary) = build.cached(cache_dir) {
        return Ok(binary);
    }
    let root = build.root(cache_dir);
    let args: Vec<String> = [
        "install",
        "nisshi",
        "--locked",
        // The locked tree declares a newer rust-version than stable may have (see
        // `broker.nisshi_rust_version`); it builds and runs on the older one.
        "--ignore-rust-version",
        "--no-default-features",
        "--version",
        build.version,
        "--features",
        &build.features.join(","),
        "--root",
        &root.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let target = cache_dir.join("cargo-target-nisshi");
    let command = run_cargo(cache_dir, &args, &[("CARGO_TARGET_DIR", &target)], step).await?;
    match build.cached(cache_dir) {
        Some(binary) => {
            // The intermediate artefacts take gigabytes and are never used again.
            if let Err(e) = std::fs::remove_dir_all(&target) {
                tracing::warn!("could not remove {}: {e}", target.display());
            }
            Ok(binary)
        }
        None => Err(HostBuildError::Missing {
            command,
            path: root.join("bin").join("nisshi"),
        }),
    }
}

/// Builds `ingest`, `consumer`, `vehicle` and `balancer` with `profile` in the workspace at
/// `root` and returns their paths. Cargo is not asked when every binary is newer than every
/// source file of the workspace (see [`super::freshness`]); otherwise cargo makes this a no-op
/// when nothing changed.
pub async fn build_workspace_binaries(
    root: &Path,
    profile: &str,
    step: &Step,
) -> Result<Vec<PathBuf>, HostBuildError> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let dir = target.join(if profile == "dev" { "debug" } else { profile });
    let paths: Vec<PathBuf> = SERVICE_BINARIES.iter().map(|bin| dir.join(bin)).collect();
    if super::freshness::binaries_newer_than_sources(root, &paths) {
        step.update("binaries newer than every source file: cargo not needed");
        return Ok(paths);
    }
    let mut args: Vec<String> = vec!["build".into(), "--profile".into(), profile.into()];
    for bin in SERVICE_BINARIES {
        args.extend(["-p".into(), bin.into()]);
    }
    let command = run_cargo(root, &args, &[], step).await?;
    paths
        .into_iter()
        .map(|path| {
            if path.is_file() {
                Ok(path)
            } else {
                Err(HostBuildError::Missing {
                    command: command.clone(),
                    path,
                })
            }
        })
        .collect()
}
