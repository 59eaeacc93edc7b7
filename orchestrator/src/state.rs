//! Per-stack state on the host: generated secrets (the PostgreSQL password, the broker
//! storage's password, ...), each kept in a 0600 file in a 0700 directory and never logged.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::distr::Alphanumeric;

/// Name of the password file in the state directory.
pub const PASSWORD_FILE: &str = "postgres-password";
/// Name of the broker storage's password file in the state directory.
pub const BROKER_STORAGE_PASSWORD_FILE: &str = "broker-storage-password";

/// A state file problem.
#[derive(Debug, thiserror::Error)]
#[error("{op} {path}: {source}")]
pub struct StateError {
    op: &'static str,
    path: PathBuf,
    source: std::io::Error,
}

fn err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StateError {
    let path = path.to_owned();
    move |source| StateError { op, path, source }
}

/// The stack's PostgreSQL password: read from `state_dir`, or generated and stored (0600).
pub fn postgres_password(state_dir: &Path) -> Result<String, StateError> {
    secret(state_dir, PASSWORD_FILE)
}

/// The secret in `state_dir/file`: read, or generated (32 letters and digits, safe in a URL)
/// and stored with mode 0600 in a 0700 directory.
pub fn secret(state_dir: &Path, file: &str) -> Result<String, StateError> {
    let path = state_dir.join(file);
    if path.exists() {
        let meta = std::fs::metadata(&path).map_err(err("inspect", &path))?;
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(err("restrict permissions of", &path))?;
        }
        let text = std::fs::read_to_string(&path).map_err(err("read", &path))?;
        return Ok(text.trim_end().to_owned());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(err("create state directory", state_dir))?;
    let password: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(err("create", &path))?;
    file.write_all(password.as_bytes())
        .map_err(err("write", &path))?;
    Ok(password)
}

/// Removes the stack's state directory (after a full teardown).
pub fn remove(state_dir: &Path) -> Result<(), StateError> {
    match std::fs::remove_dir_all(state_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(err("remove", state_dir)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_generated_once_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("fleet-state-{}", std::process::id()));
        let first = postgres_password(&dir).unwrap();
        assert_eq!(first.len(), 32);
        let mode = std::fs::metadata(dir.join(PASSWORD_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(postgres_password(&dir).unwrap(), first);
        remove(&dir).unwrap();
        assert!(!dir.exists());
    }
}
