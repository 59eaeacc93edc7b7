//! Binaries built by cargo on the host and copied into images: the pinned Tansu broker
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

/// The Tansu binary `version` with `features`, installed once under `cache_dir` and reused.
pub async fn install_tansu(
    cache_dir: &Path,
    version: &str,
    features: &[String],
    step: &Step,
) -> Result<PathBuf, HostBuildError> {
    let root = cache_dir
        .join("cargo-install")
        .join(format!("tansu-{version}-{}", features.join("+")));
    let binary = root.join("bin").join("tansu");
    if binary.is_file() {
        return Ok(binary);
    }
    // Another fleet process may be installing it into the same folders: wait for it.
    let lock_path = cache_dir.join("locks").join("tansu.lock");
    let _lock = super::cache_lock::acquire(&lock_path, step)
        .await
        .map_err(|source| HostBuildError::Lock {
            path: lock_path.clone(),
            source,
        })?;
    if binary.is_file() {
        return Ok(binary);
    }
    let args: Vec<String> = [
        "install",
        "tansu",
        "--locked",
        "--version",
        version,
        "--features",
        &features.join(","),
        "--root",
        &root.to_string_lossy(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let target = cache_dir.join("cargo-target-tansu");
    let command = run_cargo(cache_dir, &args, &[("CARGO_TARGET_DIR", &target)], step).await?;
    if binary.is_file() {
        // The intermediate artefacts take gigabytes and are never used again.
        if let Err(e) = std::fs::remove_dir_all(&target) {
            tracing::warn!("could not remove {}: {e}", target.display());
        }
        Ok(binary)
    } else {
        Err(HostBuildError::Missing {
            command,
            path: binary,
        })
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
