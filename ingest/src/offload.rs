//! CPU-bound request work (inflating and decoding a body) off the async workers: it runs on
//! tokio's blocking pool, at most as many bodies at once as the machine has cores. A burst of
//! large bodies thus neither stalls the workers that serve every other request (probes,
//! dashboard, small posts) nor piles up blocking threads; the requests over the bound wait their
//! turn without holding a thread.
//!
//! A small plain body (at most [`INLINE_BYTES`], no content coding) is decoded where it is: the
//! work is a few microseconds, less than the hop to another thread and back, and its size bounds
//! it (a gzip body is always sent away, since its size says nothing about what it inflates to).

use std::sync::{Arc, LazyLock};

use axum::http::StatusCode;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The process's slots for blocking work: one per core.
static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Arc::new(Semaphore::new(cores))
});

/// Plain bodies up to this size are decoded on the async worker that received them.
pub const INLINE_BYTES: usize = 16 * 1024;

/// Runs `work` at once when `plain_bytes` (the size of a body without content coding, `None`
/// for a coded one) is at most [`INLINE_BYTES`], else as [`run`] does.
pub async fn run_sized<T, F>(plain_bytes: Option<usize>, work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match plain_bytes {
        Some(n) if n <= INLINE_BYTES => Ok(work()),
        _ => run(work).await,
    }
}

/// Runs `work` on the blocking pool once a slot is free and returns its result. The slot is
/// held until `work` returns, even when the request is dropped meanwhile, so the bound holds.
pub async fn run<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = SLOTS
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("decoding the request body failed: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_runs_within_the_bound() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                tokio::spawn(run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                }))
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap().unwrap(), i);
        }
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert!(most.load(Ordering::SeqCst) <= cores);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn small_plain_bodies_stay_on_the_worker_and_the_rest_go_away() {
        let here = std::thread::current().id();
        let small = run_sized(Some(INLINE_BYTES), move || std::thread::current().id());
        assert_eq!(small.await.unwrap(), here);
        let large = run_sized(Some(INLINE_BYTES + 1), move || std::thread::current().id());
        assert_ne!(large.await.unwrap(), here);
        let coded = run_sized(None, move || std::thread::current().id());
        assert_ne!(coded.await.unwrap(), here);
    }
}
