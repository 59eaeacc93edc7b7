//! What the host must have before the long builds start: the programs the builds run
//! (debootstrap for the base image, a C toolchain and cargo for the broker and our binaries)
//! and disk space for the images and the build cache. Everything is checked first, in seconds,
//! so that nothing fails after minutes of building for a reason that could be known at the
//! start. On a Debian or Ubuntu host where fleet runs as root (or has password-less sudo) the
//! missing Debian packages are installed with apt; elsewhere the error gives the command to run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleet_common::config::{BaseSource, Config, HostPackages};

use super::host_build::{BrokerBuild, run_streaming};
use crate::docker::Docker;
use crate::output::Progress;
use crate::paths::StackPaths;

/// Free space the broker's `cargo install` needs in the cache (its target folder, removed
/// afterwards, peaks at about 4 GB).
const BROKER_BUILD_SPACE: u64 = 6 << 30;
/// Free space the engine needs for the images of a stack that has none yet.
const IMAGES_SPACE: u64 = 3 << 30;

/// A host program a build runs, and the Debian package that brings it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Program {
    /// The program looked up on PATH.
    pub name: &'static str,
    /// The Debian package to install.
    pub package: &'static str,
    /// Which build needs it, for messages.
    pub needed_for: &'static str,
}

/// The host cannot run the builds this command needs.
#[derive(Debug, thiserror::Error)]
pub enum PrerequisiteError {
    /// Programs are missing and fleet may not or cannot install them.
    #[error(
        "missing on this host: {}.\n{reason}\nRun: {command}",
        describe(missing)
    )]
    Missing {
        /// What is missing.
        missing: Vec<Program>,
        /// Why fleet did not install them itself.
        reason: String,
        /// The command that installs them.
        command: String,
    },
    /// apt ran but the programs are still not on PATH.
    #[error(
        "`{command}` ran, but {} still not on PATH ({path}); add its folder to PATH",
        describe(missing)
    )]
    StillMissing {
        /// What is missing.
        missing: Vec<Program>,
        /// The install command that ran.
        command: String,
        /// The PATH searched.
        path: String,
    },
    /// apt failed.
    #[error("install the missing host packages: {0}")]
    Install(#[from] super::HostBuildError),
    /// debootstrap must run as root.
    #[error(
        "the base image must be bootstrapped with debootstrap, which needs root: run this fleet command as root (or with sudo) once, or set `images.base_source = \"pull\"` with a registry that serves `{image}`"
    )]
    NotRoot {
        /// The base image that could not be pulled.
        image: String,
    },
    /// Not enough free disk space.
    #[error(
        "{path} has {free} GiB free, and {what} needs about {need} GiB; free some space (e.g. `docker system prune`) or set `stack.cache_dir`"
    )]
    Disk {
        /// The folder checked.
        path: PathBuf,
        /// Free GiB.
        free: u64,
        /// Needed GiB.
        need: u64,
        /// What needs it.
        what: &'static str,
    },
}

fn describe(missing: &[Program]) -> String {
    missing
        .iter()
        .map(|p| format!("`{}` (for {})", p.name, p.needed_for))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where `program` is on `path` (a PATH value), if anywhere.
pub fn find_on_path(program: &str, path: &str) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What the builds of this run need from the host.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Needs {
    /// The base image must be bootstrapped.
    pub debootstrap: bool,
    /// The broker must be compiled.
    pub broker_build: bool,
    /// The engine has none of the stack's images yet (space for them).
    pub images: bool,
}

impl Needs {
    /// The programs these needs call for.
    pub fn programs(&self) -> Vec<Program> {
        let mut programs = Vec::new();
        if self.debootstrap {
            programs.push(Program {
                name: "debootstrap",
                package: "debootstrap",
                needed_for: "the base image, which cannot be pulled",
            });
        }
        if self.broker_build {
            for (name, package) in [("cc", "build-essential"), ("make", "build-essential")] {
                programs.push(Program {
                    name,
                    package,
                    needed_for: "the broker build (C code in its dependencies)",
                });
            }
        }
        programs
    }
}

/// How fleet may install packages here: `Some(prefix)` (empty for root, `sudo -n` otherwise)
/// on a Debian-like host, or why not.
async fn apt_access() -> Result<Vec<&'static str>, String> {
    let path = std::env::var("PATH").unwrap_or_default();
    if !Path::new("/etc/debian_version").exists() || find_on_path("apt-get", &path).is_none() {
        return Err("This is not a Debian or Ubuntu host (no apt-get), so fleet does not install packages itself.".into());
    }
    if is_root() {
        return Ok(Vec::new());
    }
    let sudo = tokio::process::Command::new("sudo")
        .args(["-n", "true"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await;
    match sudo {
        Ok(status) if status.success() => Ok(vec!["sudo", "-n"]),
        _ => Err("fleet runs neither as root nor with password-less sudo, so it does not install packages itself.".into()),
    }
}

fn is_root() -> bool {
    // The owner of /proc/self is the process's effective user.
    std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata("/proc/self").unwrap_or_else(|_| std::fs::metadata("/").expect("/")),
    ) == 0
}

/// The install command for `missing`, as the user would type it.
fn install_command(missing: &[Program]) -> String {
    let mut packages: Vec<&str> = missing.iter().map(|p| p.package).collect();
    packages.sort();
    packages.dedup();
    format!("sudo apt-get install -y {}", packages.join(" "))
}

/// Works out what this run's builds need, then makes sure the host has it: installs missing
/// Debian packages when allowed (one progress line), or fails at once with the command to run.
pub async fn ensure(
    docker: &Docker,
    config: &Config,
    paths: &StackPaths,
    progress: &Progress,
) -> Result<(), PrerequisiteError> {
    let needs = needs(docker, config, paths).await;
    check_disk(docker, paths, &needs).await?;
    if needs.debootstrap && !is_root() {
        return Err(PrerequisiteError::NotRoot {
            image: config.images.base_image.clone(),
        });
    }
    let path = std::env::var("PATH").unwrap_or_default();
    let missing: Vec<Program> = needs
        .programs()
        .into_iter()
        .filter(|p| find_on_path(p.name, &path).is_none())
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let command = install_command(&missing);
    let prefix = match config.images.host_packages {
        HostPackages::Never => Err(
            "fleet installs no host packages itself (`images.host_packages = \"never\"`)."
                .to_owned(),
        ),
        HostPackages::Auto => apt_access().await,
    };
    let prefix = prefix.map_err(|reason| PrerequisiteError::Missing {
        missing: missing.clone(),
        reason,
        command: command.clone(),
    })?;
    install(&prefix, &missing, progress).await?;
    let still: Vec<Program> = missing
        .into_iter()
        .filter(|p| find_on_path(p.name, &path).is_none())
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(PrerequisiteError::StillMissing {
            missing: still,
            command,
            path,
        })
    }
}

/// `apt-get update` and `apt-get install` of the packages of `missing`, in one step.
async fn install(
    prefix: &[&str],
    missing: &[Program],
    progress: &Progress,
) -> Result<(), PrerequisiteError> {
    let mut packages: Vec<&str> = missing.iter().map(|p| p.package).collect();
    packages.sort();
    packages.dedup();
    let step = progress.step(format!(
        "host packages: apt-get install {} (needed by the builds)",
        packages.join(" ")
    ));
    let run = |args: Vec<String>| {
        let mut full: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        full.extend(args);
        let program = full.remove(0);
        (program, full)
    };
    let env_noninteractive = [("DEBIAN_FRONTEND", Path::new("noninteractive"))];
    let mut result = Ok(String::new());
    for args in [
        vec!["apt-get".to_owned(), "update".into(), "-qq".into()],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends"]
            .iter()
            .map(|s| s.to_string())
            .chain(packages.iter().map(|s| s.to_string()))
            .collect(),
    ] {
        let (program, args) = run(args);
        result = run_streaming(&program, Path::new("/"), &args, &env_noninteractive, &step).await;
        if result.is_err() {
            break;
        }
    }
    match result {
        Ok(_) => {
            step.finish("installed");
            Ok(())
        }
        Err(e) => {
            step.fail("apt-get failed");
            Err(e.into())
        }
    }
}

/// What the builds of `config` need on this host now: only what is not already built.
pub async fn needs(docker: &Docker, config: &Config, paths: &StackPaths) -> Needs {
    let images = &config.images;
    let base_present = async {
        if images.base_source != BaseSource::Debootstrap
            && docker
                .image_id(&images.base_image)
                .await
                .ok()
                .flatten()
                .is_some()
        {
            return true;
        }
        let reference = super::base::bootstrapped_reference(config);
        docker.image_id(&reference).await.ok().flatten().is_some()
    };
    let mut debootstrap = false;
    if images.base_source != BaseSource::Pull && !base_present.await {
        debootstrap = images.base_source == BaseSource::Debootstrap
            || !pull_works(docker, &images.base_image).await;
    }
    let broker_upstream = config
        .broker
        .upstream
        .as_ref()
        .is_some_and(|u| !u.image.is_empty());
    let build = BrokerBuild {
        version: &config.broker.nisshi_version,
        features: &config.broker.nisshi_features,
        rust_version: &config.broker.nisshi_rust_version,
    };
    let broker_build = !broker_upstream && build.cached(&paths.cache).is_none();
    Needs {
        debootstrap,
        broker_build,
        images: debootstrap || broker_build,
    }
}

/// Whether the base image can be pulled (tried with a short bound: a registry that answers
/// does so in seconds; the pull itself happens later, in the base image's step).
async fn pull_works(docker: &Docker, image: &str) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_secs(30), docker.pull(image)).await,
        Ok(Ok(()))
    )
}

async fn check_disk(
    docker: &Docker,
    paths: &StackPaths,
    needs: &Needs,
) -> Result<(), PrerequisiteError> {
    let gib = |b: u64| b >> 30;
    let mut checks: Vec<(PathBuf, u64, &'static str)> = Vec::new();
    if needs.broker_build {
        checks.push((paths.cache.clone(), BROKER_BUILD_SPACE, "the broker build"));
    }
    if needs.images
        && let Ok(Some(root)) = docker.root_dir().await
    {
        checks.push((PathBuf::from(root), IMAGES_SPACE, "the stack's images"));
    }
    for (path, need, what) in checks {
        // The folder may not exist yet: measure its nearest existing ancestor.
        let Some(existing) = path.ancestors().find(|p| p.exists()) else {
            continue;
        };
        // A root folder of a remote engine is not ours to measure.
        let Ok(free) = fs4::available_space(existing) else {
            continue;
        };
        if free < need {
            return Err(PrerequisiteError::Disk {
                path,
                free: gib(free),
                need: gib(need),
                what,
            });
        }
    }
    Ok(())
}

/// The host's rustc version (`rustc --version`, or `$RUSTC`), e.g. `1.95.0`.
pub async fn rustc_version() -> Option<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = tokio::process::Command::new(rustc)
        .arg("--version")
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace().nth(1).map(str::to_owned)
}

/// Whether version `have` (`1.95.0`) is older than `want` (`1.96`), comparing numerically.
pub fn older_than(have: &str, want: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.split(['.', '-'])
            .map_while(|part| part.parse().ok())
            .collect()
    };
    let (have, want) = (parse(have), parse(want));
    for i in 0..want.len().max(have.len()) {
        let (h, w) = (
            have.get(i).copied().unwrap_or(0),
            want.get(i).copied().unwrap_or(0),
        );
        if h != w {
            return h < w;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert!(older_than("1.95.0", "1.96"));
        assert!(!older_than("1.96.0", "1.96"));
        assert!(!older_than("1.100.1", "1.96"));
        assert!(older_than("1.9.0", "1.10"));
        assert!(!older_than("1.96.0-nightly", "1.96"));
    }

    #[test]
    fn programs_follow_the_needs() {
        let none = Needs::default();
        assert!(none.programs().is_empty());
        let base = Needs {
            debootstrap: true,
            ..Needs::default()
        };
        assert_eq!(base.programs()[0].package, "debootstrap");
        let broker = Needs {
            broker_build: true,
            ..Needs::default()
        };
        assert!(broker.programs().iter().any(|p| p.name == "cc"));
    }

    #[test]
    fn the_install_command_names_each_package_once() {
        let needs = Needs {
            debootstrap: true,
            broker_build: true,
            images: true,
        };
        assert_eq!(
            install_command(&needs.programs()),
            "sudo apt-get install -y build-essential debootstrap"
        );
    }

    #[test]
    fn path_lookup_finds_only_executables() {
        let dir = std::env::temp_dir().join(format!("fleet-path-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("not-a-program");
        std::fs::write(&plain, "").unwrap();
        let path = dir.to_string_lossy().into_owned();
        assert!(find_on_path("not-a-program", &path).is_none());
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(find_on_path("not-a-program", &path), Some(plain));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
