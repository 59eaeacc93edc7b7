//! What keeps the balancer alive under load and bad clients: a cap on proxied connections
//! (more are closed at once), an idle timeout (a connection with no byte either way for that
//! long is closed), TCP keepalive on both sides (a peer that vanished without a FIN is found
//! out by the kernel), and backoff between failing accepts (e.g. out of file descriptors).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use socket2::{SockRef, TcpKeepalive};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// First pause after a failed accept; doubled up to [`ACCEPT_BACKOFF_CAP`].
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(5);
/// Longest pause between failing accepts.
const ACCEPT_BACKOFF_CAP: Duration = Duration::from_secs(1);

/// The balancer's limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections proxied at once; a connection beyond is closed at once.
    pub max_connections: usize,
    /// A connection with no byte in either direction for this long is closed.
    pub idle_timeout: Duration,
    /// Idle time before the first TCP keepalive probe, and the time between probes.
    pub keepalive: Duration,
}

/// Sets TCP keepalive (probes after `keepalive` of silence, then every `keepalive`) and
/// no-delay on `stream`.
pub fn tune(stream: &TcpStream, keepalive: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let params = TcpKeepalive::new()
        .with_time(keepalive)
        .with_interval(keepalive);
    SockRef::from(stream).set_tcp_keepalive(&params)
}

/// Pauses between failing accepts: short at first, doubling up to a second.
#[derive(Debug)]
pub struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(ACCEPT_BACKOFF_FIRST)
    }
}

impl Backoff {
    /// The next pause.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(ACCEPT_BACKOFF_CAP);
        delay
    }

    /// Starts again from the shortest pause (after a successful accept).
    pub fn reset(&mut self) {
        self.0 = ACCEPT_BACKOFF_FIRST;
    }
}

/// When a connection last carried a byte.
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    /// Activity now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last_ms.load(Ordering::Relaxed)))
    }

    /// Resolves once no byte moved for `timeout`.
    pub async fn idle(&self, timeout: Duration) {
        loop {
            let idle = self.idle_for();
            if idle >= timeout {
                return;
            }
            tokio::time::sleep(timeout - idle).await;
        }
    }
}

/// A stream that notes in an [`Activity`] every byte read from or written to it.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Tracks `inner` in `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Self { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keepalive_is_set_on_a_tuned_stream() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let socket = SockRef::from(&stream);
        assert!(!socket.keepalive().unwrap(), "off by default");
        tune(&stream, Duration::from_secs(17)).unwrap();
        assert!(socket.keepalive().unwrap());
        assert_eq!(
            socket.tcp_keepalive_time().unwrap(),
            Duration::from_secs(17)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().unwrap(),
            Duration::from_secs(17)
        );
        assert!(stream.nodelay().unwrap());
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<_> = (0..10).map(|_| backoff.next_delay()).collect();
        assert_eq!(delays[0], ACCEPT_BACKOFF_FIRST);
        assert_eq!(delays[1], ACCEPT_BACKOFF_FIRST * 2);
        assert_eq!(*delays.last().unwrap(), ACCEPT_BACKOFF_CAP);
        backoff.reset();
        assert_eq!(backoff.next_delay(), ACCEPT_BACKOFF_FIRST);
    }

    #[tokio::test]
    async fn idle_resolves_only_after_a_silent_timeout() {
        let activity = Activity::new();
        let timeout = Duration::from_millis(200);
        let started = Instant::now();
        let toucher = {
            let activity = activity.clone();
            tokio::spawn(async move {
                for _ in 0..4 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    activity.touch();
                }
            })
        };
        activity.idle(timeout).await;
        // Touched until ~400 ms, so idle no earlier than ~600 ms.
        assert!(
            started.elapsed() >= Duration::from_millis(550),
            "{:?}",
            started.elapsed()
        );
        toucher.await.unwrap();
    }
}
