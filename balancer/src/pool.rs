//! The backends and the round-robin choice among them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;

/// The backends, shared by every connection.
#[derive(Debug, Clone)]
pub struct Pool {
    backends: Arc<[String]>,
    next: Arc<AtomicUsize>,
    connect_timeout: Duration,
}

impl Pool {
    /// A pool over `backends` (`host:port`), trying each for at most `connect_timeout`.
    pub fn new(backends: Vec<String>, connect_timeout: Duration) -> Self {
        Self {
            backends: backends.into(),
            next: Arc::new(AtomicUsize::new(0)),
            connect_timeout,
        }
    }

    /// The order in which backends are tried for the next connection: the next in turn first,
    /// then the others.
    pub fn order(&self) -> Vec<&str> {
        let n = self.backends.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        (0..n)
            .map(|i| self.backends[(start + i) % n].as_str())
            .collect()
    }

    /// Connects to the next backend in turn, or to the first of the others that accepts.
    pub async fn connect(&self) -> Result<(String, TcpStream), String> {
        let mut failures = Vec::new();
        for backend in self.order() {
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(backend)).await {
                Ok(Ok(stream)) => return Ok((backend.to_owned(), stream)),
                Ok(Err(e)) => failures.push(format!("{backend}: {e}")),
                Err(_) => failures.push(format!(
                    "{backend}: no answer within {:?}",
                    self.connect_timeout
                )),
            }
        }
        Err(failures.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_rotates_and_covers_every_backend() {
        let pool = Pool::new(
            vec!["a:1".into(), "b:1".into(), "c:1".into()],
            Duration::from_secs(1),
        );
        assert_eq!(pool.order(), ["a:1", "b:1", "c:1"]);
        assert_eq!(pool.order(), ["b:1", "c:1", "a:1"]);
        assert_eq!(pool.order(), ["c:1", "a:1", "b:1"]);
        assert_eq!(pool.order(), ["a:1", "b:1", "c:1"]);
    }

    #[tokio::test]
    async fn a_refusing_backend_is_skipped() {
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap().to_string();
        // A port that was free a moment ago refuses connections.
        let dead_addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let pool = Pool::new(vec![dead_addr, live_addr.clone()], Duration::from_secs(1));
        for _ in 0..4 {
            let (chosen, _) = pool.connect().await.unwrap();
            assert_eq!(chosen, live_addr);
        }
    }
}
