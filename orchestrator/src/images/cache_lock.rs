//! An exclusive lock on a file in fleet's cache, held while one artefact (the broker binary, the
//! bootstrapped base) is built, so that two `fleet` processes (test binaries run in parallel,
//! two terminals) never build the same artefact into the same folders at once: the second
//! waits, then finds the artefact built and reuses it.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

use crate::output::Step;

/// The held lock; dropping it releases it.
#[derive(Debug)]
pub struct CacheLock {
    _file: File,
}

/// Takes the exclusive lock on `path` (created if missing), waiting for another process that
/// holds it and saying so in `step`.
pub async fn acquire(path: &Path, step: &Step) -> std::io::Result<CacheLock> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match file.try_lock() {
        Ok(()) => return Ok(CacheLock { _file: file }),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(e)) => return Err(e),
    }
    step.update(&format!(
        "waiting for another fleet process building the same artefact ({})",
        path.display()
    ));
    let file = tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(std::io::Error::other)??;
    Ok(CacheLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_holder_waits_for_the_first() {
        let dir = std::env::temp_dir().join(format!("fleet-lock-{}", std::process::id()));
        let path = dir.join("artefact.lock");
        let progress = crate::output::Progress::new(crate::output::ProgressMode::Plain);
        let step = progress.step("lock");
        let first = acquire(&path, &step).await.unwrap();
        let waiting = tokio::spawn({
            let path = path.clone();
            async move {
                let progress = crate::output::Progress::new(crate::output::ProgressMode::Plain);
                let step = progress.step("lock");
                acquire(&path, &step).await.map(|_| ())
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "the second holder waits");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the second holder gets the lock once the first lets go")
            .unwrap()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
