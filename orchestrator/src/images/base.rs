//! The base image every recipe builds on: `debian:bookworm-slim` when the engine can pull it,
//! otherwise a `debootstrap --variant=minbase` root file system imported as an image.

use std::path::Path;

use fleet_common::config::{BaseSource, Config};

use super::host_build::run_streaming;
use super::set::{ImageError, Resolved};
use crate::docker::Docker;
use crate::output::Progress;

/// The base image, reused when present, otherwise pulled or bootstrapped.
pub async fn ensure_base(
    docker: &Docker,
    config: &Config,
    cache_dir: &Path,
    progress: &Progress,
) -> Result<Resolved, ImageError> {
    let images = &config.images;
    if images.base_source != BaseSource::Debootstrap
        && let Some(id) = docker.image_id(&images.base_image).await?
    {
        return Ok(Resolved::new(&images.base_image, id));
    }
    let (repo, tag) = bootstrapped_name(config);
    let reference = format!("{repo}:{tag}");
    if let Some(id) = docker.image_id(&reference).await? {
        return Ok(Resolved::new(&reference, id));
    }
    if images.base_source != BaseSource::Debootstrap {
        let step = progress.step(format!("pull {}", images.base_image));
        match tokio::time::timeout(
            std::time::Duration::from_secs(120),
            docker.pull(&images.base_image),
        )
        .await
        {
            Ok(Ok(())) => {
                step.finish("pulled");
                let id = docker
                    .image_id(&images.base_image)
                    .await?
                    .unwrap_or_default();
                return Ok(Resolved::new(&images.base_image, id));
            }
            Ok(Err(e)) if images.base_source == BaseSource::Pull => {
                step.fail(&e.to_string());
                return Err(e.into());
            }
            Ok(Err(e)) => step.finish(&format!(
                "not available ({e}); bootstrapping with debootstrap"
            )),
            Err(_) => step.finish("timed out; bootstrapping with debootstrap"),
        }
    }
    let step = progress.step(format!("bootstrap base image {reference}"));
    let result = bootstrap(docker, config, cache_dir, &repo, &tag, &step).await;
    match result {
        Ok(id) => {
            step.finish("imported");
            Ok(Resolved::new(&reference, id))
        }
        Err(e) => {
            step.fail(&e.to_string());
            Err(e)
        }
    }
}

/// The repository and tag of the bootstrapped base of `config` (its suite and mirror).
fn bootstrapped_name(config: &Config) -> (String, String) {
    let images = &config.images;
    let hash = crate::docker::hex_digest(
        &{
            use sha2::Digest;
            sha2::Sha256::digest(format!("{}|{}", images.debian_suite, images.debian_mirror))
        }[..6],
    );
    (
        format!("{}/base", images.tag_prefix),
        format!("{}-{hash}", images.debian_suite),
    )
}

/// The reference of the bootstrapped base of `config`.
pub fn bootstrapped_reference(config: &Config) -> String {
    let (repo, tag) = bootstrapped_name(config);
    format!("{repo}:{tag}")
}

async fn bootstrap(
    docker: &Docker,
    config: &Config,
    cache_dir: &Path,
    repo: &str,
    tag: &str,
    step: &crate::output::Step,
) -> Result<String, ImageError> {
    let images = &config.images;
    let work = cache_dir.join("rootfs");
    let rootfs = work.join(tag);
    let tarball = work.join(format!("{tag}.tar"));
    std::fs::create_dir_all(&work).map_err(|e| ImageError::io("create", &work, e))?;
    // Another fleet process may be bootstrapping into the same folder: wait for it.
    let lock_path = cache_dir.join("locks").join(format!("base-{tag}.lock"));
    let _lock = super::cache_lock::acquire(&lock_path, step)
        .await
        .map_err(|e| ImageError::io("lock", &lock_path, e))?;
    if !tarball.is_file() {
        if rootfs.exists() {
            // A bootstrap that was interrupted: start over.
            std::fs::remove_dir_all(&rootfs).map_err(|e| ImageError::io("remove", &rootfs, e))?;
        }
        let args: Vec<String> = vec![
            "--variant=minbase".into(),
            images.debian_suite.clone(),
            rootfs.to_string_lossy().into_owned(),
            images.debian_mirror.clone(),
        ];
        run_streaming("debootstrap", &work, &args, &[], step)
            .await
            .map_err(|e| ImageError::Bootstrap(format!("{e}\n(debootstrap must be installed and run as root: `sudo apt-get install debootstrap`)")))?;
        for cache in ["var/cache/apt/archives", "var/lib/apt/lists"] {
            let dir = rootfs.join(cache);
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry.path().is_file() {
                        let _ = std::fs::remove_file(entry.path());
                    }
                }
            }
        }
        let partial = work.join(format!("{tag}.tar.partial"));
        let args: Vec<String> = vec![
            "--numeric-owner".into(),
            "-C".into(),
            rootfs.to_string_lossy().into_owned(),
            "-cf".into(),
            partial.to_string_lossy().into_owned(),
            ".".into(),
        ];
        run_streaming("tar", &work, &args, &[], step)
            .await
            .map_err(|e| ImageError::Bootstrap(e.to_string()))?;
        std::fs::rename(&partial, &tarball).map_err(|e| ImageError::io("rename", &partial, e))?;
        std::fs::remove_dir_all(&rootfs).map_err(|e| ImageError::io("remove", &rootfs, e))?;
    }
    step.update("importing into the Docker engine");
    docker.import_rootfs(&tarball, repo, tag).await?;
    let reference = format!("{repo}:{tag}");
    docker
        .image_id(&reference)
        .await?
        .ok_or_else(|| ImageError::Bootstrap(format!("{reference} missing after import")))
}
