//! Whether the host-built binaries are newer than every source they are built from, so that a
//! launch can skip asking cargo (which waits for cargo's lock while anything else builds in
//! the same target folder). The rule is cargo's own for path crates, by modification time, and
//! deliberately coarse: any `.rs`, `Cargo.toml` or `Cargo.lock` anywhere in the workspace
//! (outside `target/` and hidden folders) that is newer than the oldest binary sends the launch
//! to cargo.

use std::path::Path;
use std::time::SystemTime;

/// Folders never searched for sources.
const SKIPPED: [&str; 3] = ["target", "results", "docs"];

/// True when every one of `binaries` exists and is newer than every source file under
/// `workspace`.
pub fn binaries_newer_than_sources(workspace: &Path, binaries: &[std::path::PathBuf]) -> bool {
    let oldest_binary = binaries
        .iter()
        .map(|b| std::fs::metadata(b).and_then(|m| m.modified()).ok())
        .try_fold(None::<SystemTime>, |oldest, modified| {
            let modified = modified?;
            Some(Some(oldest.map_or(modified, |o| o.min(modified))))
        });
    let Some(Some(oldest_binary)) = oldest_binary else {
        return false;
    };
    match newest_source(workspace) {
        Some(newest) => newest < oldest_binary,
        None => false,
    }
}

/// The newest modification time of a source file under `dir`; `None` when one cannot be read
/// (then cargo decides).
fn newest_source(dir: &Path) -> Option<SystemTime> {
    let mut newest = SystemTime::UNIX_EPOCH;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).ok()? {
            let entry = entry.ok()?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let kind = entry.file_type().ok()?;
            if kind.is_dir() {
                if !name.starts_with('.') && !SKIPPED.contains(&name.as_ref()) {
                    pending.push(entry.path());
                }
            } else if name.ends_with(".rs") || name == "Cargo.toml" || name == "Cargo.lock" {
                newest = newest.max(entry.metadata().ok()?.modified().ok()?);
            }
        }
    }
    Some(newest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn touch(path: &Path, at: SystemTime) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::fs::File::create(path).unwrap();
        file.set_modified(at).unwrap();
    }

    #[test]
    fn a_source_newer_than_a_binary_sends_the_launch_to_cargo() {
        let root = std::env::temp_dir().join(format!("fleet-fresh-{}", std::process::id()));
        let now = SystemTime::now();
        let old = now - Duration::from_secs(60);
        touch(&root.join("Cargo.toml"), old);
        touch(&root.join("consumer/src/main.rs"), old);
        touch(&root.join("target/release/consumer"), now);
        touch(&root.join("target/release/ingest"), now);
        // Ignored: build output, hidden folders, results.
        touch(&root.join(".git/x.rs"), now + Duration::from_secs(10));
        touch(
            &root.join("results/notes.rs"),
            now + Duration::from_secs(10),
        );
        let binaries = vec![
            root.join("target/release/consumer"),
            root.join("target/release/ingest"),
        ];
        assert!(binaries_newer_than_sources(&root, &binaries));
        touch(
            &root.join("consumer/src/main.rs"),
            now + Duration::from_secs(5),
        );
        assert!(!binaries_newer_than_sources(&root, &binaries));
        let missing = vec![root.join("target/release/vehicle")];
        assert!(!binaries_newer_than_sources(&root, &missing));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
