//! Accepting connections and copying bytes both ways between a client and its backend, within
//! the [`Limits`]: a failing accept is retried after a pause, a connection beyond the cap is
//! closed at once, an idle one is closed after the idle timeout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::limits::{Activity, Backoff, Limits, Tracked, tune};
use crate::pool::Pool;

/// How often, at most, a shed connection or a failing accept is logged.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Where connections come from: a listener (a test may fail some accepts on purpose).
pub trait Accept {
    /// The next connection.
    fn accept(&mut self) -> impl Future<Output = std::io::Result<(TcpStream, SocketAddr)>> + Send;
}

impl Accept for TcpListener {
    async fn accept(&mut self) -> std::io::Result<(TcpStream, SocketAddr)> {
        TcpListener::accept(self).await
    }
}

/// Logs at most once per [`LOG_EVERY`], counting what it kept quiet about.
struct Throttled {
    last: Option<Instant>,
    quiet: u64,
}

impl Throttled {
    fn new() -> Self {
        Self {
            last: None,
            quiet: 0,
        }
    }

    /// Whether to log now, and how many were not logged since the last time.
    fn tick(&mut self) -> Option<u64> {
        if self.last.is_some_and(|t| t.elapsed() < LOG_EVERY) {
            self.quiet += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.quiet))
    }
}

/// Accepts connections forever, each proxied on its own task. Never gives up: an accept error
/// (out of file descriptors, a connection aborted before it was taken) is logged and retried
/// after a growing pause.
pub async fn serve(mut listener: impl Accept, pool: Pool, limits: Limits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = Backoff::default();
    let (mut accept_log, mut shed_log) = (Throttled::new(), Throttled::new());
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => {
                backoff.reset();
                accepted
            }
            Err(e) => {
                let delay = backoff.next_delay();
                if let Some(quiet) = accept_log.tick() {
                    tracing::warn!(error = %e, retry_in = ?delay, failed_since_last_log = quiet,
                        "accept failed; retrying");
                }
                tokio::time::sleep(delay).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(quiet) = shed_log.tick() {
                tracing::warn!(%peer, max_connections = limits.max_connections,
                    shed_since_last_log = quiet, "at the connection cap; closing new connections");
            }
            drop(client);
            continue;
        };
        let pool = pool.clone();
        tokio::spawn(async move {
            let _slot = slot;
            proxy(client, peer, &pool, limits).await;
        });
    }
}

/// Proxies one client to the next backend that accepts.
async fn proxy(client: TcpStream, peer: SocketAddr, pool: &Pool, limits: Limits) {
    if let Err(e) = tune(&client, limits.keepalive) {
        tracing::debug!(%peer, error = %e, "cannot tune the client's socket");
    }
    match pool.connect().await {
        Ok((backend, upstream)) => {
            tracing::debug!(%peer, %backend, "proxying");
            if let Err(e) = tune(&upstream, limits.keepalive) {
                tracing::debug!(%backend, error = %e, "cannot tune the backend's socket");
            }
            if let Err(e) = pipe(client, upstream, limits.idle_timeout).await {
                tracing::debug!(%peer, %backend, error = %e, "connection ended");
            }
        }
        Err(failures) => {
            tracing::warn!(%peer, %failures, "no backend accepts; closing the connection");
        }
    }
}

/// Copies both directions until both sides are done, or until no byte moved for `idle`.
async fn pipe(client: TcpStream, mut upstream: TcpStream, idle: Duration) -> std::io::Result<()> {
    let activity = Activity::new();
    // Every byte either way passes through the client's socket.
    let mut client = Tracked::new(client, activity.clone());
    tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut upstream) => copied.map(drop),
        () = activity.idle(idle) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("idle for {idle:?}; closed"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn limits() -> Limits {
        Limits {
            max_connections: 64,
            idle_timeout: Duration::from_secs(60),
            keepalive: Duration::from_secs(30),
        }
    }

    /// A backend that answers every connection with its own name.
    async fn named_backend(name: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 4];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(name.as_bytes()).await.unwrap();
            }
        });
        addr
    }

    /// A backend that echoes every connection until the client closes it.
    async fn echo_backend() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn front(listener: impl Accept + Send + 'static, backends: Vec<String>, limits: Limits) {
        tokio::spawn(serve(
            listener,
            Pool::new(backends, Duration::from_secs(1)),
            limits,
        ));
    }

    /// Sends `ping` and expects it back, within a second.
    async fn echoes(c: &mut TcpStream) -> bool {
        let exchange = async {
            c.write_all(b"ping").await?;
            let mut buf = [0u8; 4];
            c.read_exact(&mut buf).await?;
            std::io::Result::Ok(&buf == b"ping")
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), exchange).await,
            Ok(Ok(true))
        )
    }

    /// Whether the balancer closed `c` (EOF or reset) within `within`.
    async fn closed_within(c: &mut TcpStream, within: Duration) -> bool {
        let mut buf = [0u8; 16];
        matches!(
            tokio::time::timeout(within, c.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn connections_alternate_between_backends() {
        let backends = vec![named_backend("one").await, named_backend("two").await];
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        front(listener, backends, limits()).await;
        let mut seen = Vec::new();
        for _ in 0..4 {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"ping").await.unwrap();
            let mut answer = String::new();
            c.read_to_string(&mut answer).await.unwrap();
            seen.push(answer);
        }
        assert_eq!(seen, ["one", "two", "one", "two"]);
    }

    /// A listener whose first accepts fail as when the process is out of file descriptors.
    struct Exhausted {
        listener: TcpListener,
        failures: usize,
    }

    impl Accept for Exhausted {
        async fn accept(&mut self) -> std::io::Result<(TcpStream, SocketAddr)> {
            if self.failures > 0 {
                self.failures -= 1;
                // EMFILE: too many open files.
                return Err(std::io::Error::from_raw_os_error(24));
            }
            self.listener.accept().await
        }
    }

    #[tokio::test]
    async fn failing_accepts_are_survived() {
        let backend = echo_backend().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let flaky = Exhausted {
            listener,
            failures: 5,
        };
        front(flaky, vec![backend], limits()).await;
        let mut c = TcpStream::connect(addr).await.unwrap();
        assert!(echoes(&mut c).await, "served after the accept errors");
        let mut again = TcpStream::connect(addr).await.unwrap();
        assert!(echoes(&mut again).await);
    }

    #[tokio::test]
    async fn connections_beyond_the_cap_are_shed_until_one_ends() {
        let backend = echo_backend().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let capped = Limits {
            max_connections: 2,
            ..limits()
        };
        front(listener, vec![backend], capped).await;
        let mut first = TcpStream::connect(addr).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        assert!(echoes(&mut first).await && echoes(&mut second).await);
        let mut third = TcpStream::connect(addr).await.unwrap();
        assert!(
            closed_within(&mut third, Duration::from_secs(2)).await,
            "a third connection is closed at once"
        );
        assert!(echoes(&mut second).await, "the held ones keep working");
        drop(first);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut fourth = TcpStream::connect(addr).await.unwrap();
        assert!(echoes(&mut fourth).await, "a freed slot takes a new one");
    }

    #[tokio::test]
    async fn idle_connections_are_closed_busy_ones_are_not() {
        let backend = echo_backend().await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let idle = Duration::from_millis(400);
        front(
            listener,
            vec![backend],
            Limits {
                idle_timeout: idle,
                ..limits()
            },
        )
        .await;
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut busy = TcpStream::connect(addr).await.unwrap();
        assert!(echoes(&mut silent).await && echoes(&mut busy).await);
        // The busy one talks every 150 ms for 3 idle timeouts.
        let started = Instant::now();
        while started.elapsed() < idle * 3 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            assert!(echoes(&mut busy).await, "a busy connection stays open");
        }
        assert!(
            closed_within(&mut silent, Duration::from_millis(100)).await,
            "the silent one was closed after {idle:?}"
        );
    }
}
