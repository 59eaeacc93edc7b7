//! Per-stack state on the host: generated secrets (the PostgreSQL password, the broker
//! storage's password, ...), each kept in a 0600 file in a 0700 directory and never logged. Every file fleet creates there, and whether
//! it created the directory itself, is recorded in a manifest, so that a teardown removes
//! exactly those and never a file of someone else (the state directory may be any folder the
//! configuration names, e.g. `<state_dir>/<stack>` = `./tests`).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::distr::Alphanumeric;

/// Name of the password file in the state directory.
pub const PASSWORD_FILE: &str = "postgres-password";
/// Name of the file of `fleet_admin`'s password (the schema owner's) in the state directory.
pub const ADMIN_PASSWORD_FILE: &str = "postgres-admin-password";
/// Name of the broker storage's password file in the state directory.
pub const BROKER_STORAGE_PASSWORD_FILE: &str = "broker-storage-password";
/// Name of the file holding the password of the stack's ZooKeeper digest identity.
pub const ZOOKEEPER_PASSWORD_FILE: &str = "zookeeper-password";

/// Name of the manifest: what fleet created in the state directory, one entry per line
/// (`dir` when fleet created the directory, `file <name>` for each file).
pub const MANIFEST_FILE: &str = ".fleet-created";

/// The files fleet writes into a state directory, for directories from before the manifest.
const KNOWN_FILES: [&str; 3] = [
    PASSWORD_FILE,
    ADMIN_PASSWORD_FILE,
    BROKER_STORAGE_PASSWORD_FILE,
];

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

/// What [`remove`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleared {
    /// The files removed.
    pub files: Vec<String>,
    /// Whether the directory itself went (fleet created it and nothing else is left in it).
    pub dir_removed: bool,
}

/// The stack's PostgreSQL password: read from `state_dir`, or generated and stored (0600).
pub fn postgres_password(state_dir: &Path) -> Result<String, StateError> {
    secret(state_dir, PASSWORD_FILE)
}

/// The password of `fleet_admin`, the schema's owner: read from `state_dir`, or generated and
/// stored (0600).
pub fn postgres_admin_password(state_dir: &Path) -> Result<String, StateError> {
    secret(state_dir, ADMIN_PASSWORD_FILE)
}

/// The secret in `state_dir/name`: read, or generated (32 letters and digits, safe in a URL)
/// and stored with mode 0600 in a 0700 directory, and recorded in the manifest.
pub fn secret(state_dir: &Path, name: &str) -> Result<String, StateError> {
    if let Some(secret) = existing_secret(state_dir, name)? {
        return Ok(secret);
    }
    let path = state_dir.join(name);
    ensure_dir(state_dir)?;
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
    // Recorded once created: a name that was already taken is never claimed.
    record(state_dir, &format!("file {name}"))?;
    file.write_all(password.as_bytes())
        .map_err(err("write", &path))?;
    Ok(password)
}

/// The secret in `state_dir/name` if the file exists (its mode made 0600 if it was looser);
/// `None` when it does not: nothing is generated.
pub fn existing_secret(state_dir: &Path, name: &str) -> Result<Option<String>, StateError> {
    let path = state_dir.join(name);
    if !path.exists() {
        return Ok(None);
    }
    let meta = std::fs::metadata(&path).map_err(err("inspect", &path))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(err("restrict permissions of", &path))?;
    }
    let text = std::fs::read_to_string(&path).map_err(err("read", &path))?;
    Ok(Some(text.trim_end().to_owned()))
}

/// Creates `state_dir` (0700) when missing, and records that fleet did.
fn ensure_dir(state_dir: &Path) -> Result<(), StateError> {
    if state_dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = state_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(err("create the parent of state directory", parent))?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(state_dir) {
        Ok(()) => record(state_dir, "dir"),
        // Someone else made it meanwhile: not ours.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(err("create state directory", state_dir)(e)),
    }
}

/// Appends `entry` to the manifest (created 0600).
fn record(state_dir: &Path, entry: &str) -> Result<(), StateError> {
    let path = state_dir.join(MANIFEST_FILE);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&path)
        .map_err(err("open manifest", &path))?;
    writeln!(file, "{entry}").map_err(err("write manifest", &path))
}

/// Whether `name` is a plain file name in the directory (no path, no `.`/`..`).
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

/// Removes what fleet created in the stack's state directory (after a full teardown): the
/// files its manifest lists, the manifest, and the directory when fleet created it and it is
/// empty then. A directory without a manifest (from before it existed) loses its fleet files
/// only when it holds nothing else. Nothing else is ever touched.
pub fn remove(state_dir: &Path) -> Result<Cleared, StateError> {
    let manifest = state_dir.join(MANIFEST_FILE);
    let text = match std::fs::read_to_string(&manifest) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(err("read manifest", &manifest)(e)),
    };
    let (files, created_dir) = match &text {
        Some(text) => {
            let files: Vec<String> = text
                .lines()
                .filter_map(|line| line.strip_prefix("file "))
                .filter(|name| plain_name(name))
                .map(str::to_owned)
                .collect();
            (files, text.lines().any(|line| line == "dir"))
        }
        None => match legacy_files(state_dir)? {
            Some(files) => (files, true),
            None => return Ok(Cleared::default()),
        },
    };
    let mut cleared = Cleared::default();
    for name in files {
        let path = state_dir.join(&name);
        match std::fs::remove_file(&path) {
            Ok(()) => cleared.files.push(name),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err("remove", &path)(e)),
        }
    }
    if text.is_some() {
        match std::fs::remove_file(&manifest) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(err("remove", &manifest)(e));
            }
            _ => {}
        }
    }
    if created_dir {
        cleared.dir_removed = match std::fs::remove_dir(state_dir) {
            Ok(()) => true,
            // Not empty (someone else's files), or already gone.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::DirectoryNotEmpty | std::io::ErrorKind::NotFound
                ) =>
            {
                false
            }
            Err(e) => return Err(err("remove state directory", state_dir)(e)),
        };
    }
    Ok(cleared)
}

/// The files of a state directory without a manifest when it holds only fleet's own files;
/// `None` when it is missing or holds anything else.
fn legacy_files(state_dir: &Path) -> Result<Option<Vec<String>>, StateError> {
    let entries = match std::fs::read_dir(state_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err("list", state_dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(err("list", state_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !is_file || !KNOWN_FILES.contains(&name.as_str()) {
            return Ok(None);
        }
        files.push(name);
    }
    Ok(Some(files))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fleet-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn password_is_generated_once_private_and_reused() {
        let root = scratch("fresh");
        let dir = root.join("stack");
        let first = postgres_password(&dir).unwrap();
        assert_eq!(first.len(), 32);
        let mode = std::fs::metadata(dir.join(PASSWORD_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(postgres_password(&dir).unwrap(), first);
        let cleared = remove(&dir).unwrap();
        assert_eq!(cleared.files, [PASSWORD_FILE]);
        assert!(cleared.dir_removed);
        assert!(!dir.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_folder_fleet_did_not_create_keeps_everything_but_fleet_files() {
        // `state_dir = "."` in a repository and a stack named `tests`: the state directory is
        // the repository's own `tests/`.
        let repo = scratch("repo");
        let tests = repo.join("tests");
        std::fs::create_dir_all(tests.join("support")).unwrap();
        std::fs::write(tests.join("end_to_end.rs"), "fn main() {}").unwrap();
        std::fs::write(tests.join("support/mod.rs"), "// support").unwrap();
        let password = postgres_password(&tests).unwrap();
        assert_eq!(password.len(), 32);
        let cleared = remove(&tests).unwrap();
        assert_eq!(cleared.files, [PASSWORD_FILE]);
        assert!(!cleared.dir_removed);
        assert_eq!(
            std::fs::read_to_string(tests.join("end_to_end.rs")).unwrap(),
            "fn main() {}"
        );
        assert!(tests.join("support/mod.rs").exists());
        assert!(!tests.join(PASSWORD_FILE).exists());
        assert!(!tests.join(MANIFEST_FILE).exists());
        std::fs::remove_dir_all(&repo).unwrap();
    }

    #[test]
    fn a_file_added_to_fleets_folder_keeps_the_folder() {
        let root = scratch("added");
        let dir = root.join("stack");
        postgres_password(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let cleared = remove(&dir).unwrap();
        assert!(!cleared.dir_removed);
        assert_eq!(
            std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
            "mine"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn without_a_manifest_only_a_folder_of_fleet_files_goes() {
        let root = scratch("legacy");
        let old = root.join("old");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join(PASSWORD_FILE), "pw").unwrap();
        assert!(remove(&old).unwrap().dir_removed);
        assert!(!old.exists());
        let mixed = root.join("mixed");
        std::fs::create_dir_all(&mixed).unwrap();
        std::fs::write(mixed.join(PASSWORD_FILE), "pw").unwrap();
        std::fs::write(mixed.join("data.csv"), "1,2").unwrap();
        assert_eq!(remove(&mixed).unwrap(), Cleared::default());
        assert!(mixed.join(PASSWORD_FILE).exists() && mixed.join("data.csv").exists());
        // A tampered manifest cannot reach outside the folder.
        let dir = root.join("tampered");
        postgres_password(&dir).unwrap();
        std::fs::write(root.join("precious"), "keep").unwrap();
        record(&dir, "file ../precious").unwrap();
        remove(&dir).unwrap();
        assert!(root.join("precious").exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
