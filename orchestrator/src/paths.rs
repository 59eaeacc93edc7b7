//! Where things live on the host: the workspace (for cargo), the recipes, the cache of build
//! artefacts shared by all stacks, and the per-stack state directory.

use std::path::{Path, PathBuf};

use fleet_common::config::Config;

/// The host paths a command uses.
#[derive(Debug, Clone)]
pub struct StackPaths {
    /// The cargo workspace holding our services (the config file's folder).
    pub workspace: PathBuf,
    /// The image recipes.
    pub recipes: PathBuf,
    /// Build artefacts shared by all stacks.
    pub cache: PathBuf,
    /// This stack's state (generated secrets); created 0700.
    pub state: PathBuf,
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"))
}

fn xdg(var: &str, fallback: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .unwrap_or_else(|| home().join(fallback))
        .join("fleet")
}

impl StackPaths {
    /// Paths for `config`, loaded from the file at `config_file`.
    pub fn new(config_file: &Path, config: &Config) -> Self {
        let config_dir = config_file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let config_dir = std::fs::canonicalize(&config_dir).unwrap_or(config_dir);
        let or = |set: &str, default: PathBuf| {
            if set.is_empty() {
                default
            } else {
                config_dir.join(set)
            }
        };
        Self {
            recipes: config_dir.join(&config.stack.recipes_dir),
            cache: or(&config.stack.cache_dir, xdg("XDG_CACHE_HOME", ".cache")),
            state: or(
                &config.stack.state_dir,
                xdg("XDG_STATE_HOME", ".local/state"),
            )
            .join(&config.stack.name),
            workspace: config_dir,
        }
    }
}
