//! One `fleet` run at a time per stack: the commands that change a stack (`launch-infra`,
//! `launch-fleet`, `up`, `teardown`) hold an exclusive lock on `<cache>/locks/<stack>.lock`
//! for their whole run, so that two runs never undo each other's containers. The file says who
//! holds it (pid, command, since); a second run reports that and gives up at once.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// The held lock; dropping it (or the process ending, however it ends) releases it.
#[derive(Debug)]
pub struct StackLock {
    _file: File,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another run holds it.
    #[error("stack {stack} is busy: another fleet run holds its lock ({holder}; lock file {})", path.display())]
    Busy {
        /// The stack.
        stack: String,
        /// Who holds it, as the holder wrote it.
        holder: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be used.
    #[error("{op} lock file {}: {source}", path.display())]
    Io {
        /// What was done.
        op: &'static str,
        /// The lock file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// The lock file of `stack` under the cache folder `cache`.
pub fn lock_path(cache: &Path, stack: &str) -> PathBuf {
    cache.join("locks").join(format!("{stack}.lock"))
}

/// Takes the lock of `stack` (file under `cache`) for `command`, or says who holds it.
pub fn acquire(cache: &Path, stack: &str, command: &str) -> Result<StackLock, LockError> {
    let path = lock_path(cache, stack);
    let io = |op: &'static str| {
        let path = path.clone();
        move |source| LockError::Io { op, path, source }
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io("create the folder of"))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io("open"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(LockError::Busy {
                stack: stack.to_owned(),
                holder: if holder.is_empty() {
                    "holder unknown".to_owned()
                } else {
                    holder.to_owned()
                },
                path,
            });
        }
        Err(TryLockError::Error(e)) => return Err(io("lock")(e)),
    }
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let holder = format!(
        "pid {}, `fleet {command}`, since {since}",
        std::process::id()
    );
    file.set_len(0).map_err(io("truncate"))?;
    file.rewind().map_err(io("rewind"))?;
    file.write_all(holder.as_bytes()).map_err(io("write"))?;
    Ok(StackLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_is_told_who_holds_the_stack() {
        let cache = std::env::temp_dir().join(format!("fleet-stack-lock-{}", std::process::id()));
        let first = acquire(&cache, "demo", "launch-infra").unwrap();
        // Another stack is independent.
        let other = acquire(&cache, "other", "teardown").unwrap();
        let err = acquire(&cache, "demo", "teardown").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, LockError::Busy { .. }), "{text}");
        assert!(text.contains("stack demo is busy"), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(
            text.contains("`fleet launch-infra`") && text.contains("since "),
            "{text}"
        );
        drop(first);
        drop(other);
        let again = acquire(&cache, "demo", "teardown").unwrap();
        drop(again);
        std::fs::remove_dir_all(&cache).unwrap();
    }
}
