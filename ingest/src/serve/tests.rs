//! The accept loop on a real socket: the connection cap answers 503 with `Retry-After` and
//! frees up when connections go, and a connection that never finishes its headers is closed.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ConnectionLimits, serve};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: ingest\r\nConnection: close\r\n\r\n";

/// Serves a router answering `GET /` with "ok" under `limits`; its address.
async fn start(limits: ConnectionLimits) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new().route("/", get(|| async { "ok" }));
    tokio::spawn(serve(listener, router, limits, std::future::pending()));
    address
}

/// A connection that sent the start of a request and holds on to it.
async fn trickle(address: std::net::SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"POST /events HTTP/1.1\r\nHost: ingest\r\n")
        .await
        .unwrap();
    stream
}

/// The whole answer to `GET /` on a new connection.
async fn get_root(address: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(GET).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn connections_over_the_cap_get_503_with_retry_after_until_some_close() {
    let address = start(ConnectionLimits {
        max_connections: 3,
        header_read_timeout: Duration::from_secs(30),
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(trickle(address).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = get_root(address).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1\r\n"), "{answer}");
    assert!(lower.contains("connection: close\r\n"), "{answer}");
    assert!(answer.contains("ingest.max_connections"), "{answer}");

    // Once the held connections are gone, new ones are served again.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let answer = get_root(address).await;
        if answer.starts_with("HTTP/1.1 200") {
            assert!(answer.ends_with("ok"), "{answer}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn beyond_twice_the_cap_a_connection_is_closed_at_once() {
    let address = start(ConnectionLimits {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(30),
    })
    .await;
    let _served = trickle(address).await;
    let _refused = trickle(address).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(address).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), third.read(&mut buf))
        .await
        .expect("closed at once, not left hanging");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_headers_is_closed() {
    let address = start(ConnectionLimits {
        max_connections: 8,
        header_read_timeout: Duration::from_millis(500),
    })
    .await;
    let mut slow = trickle(address).await;
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    // Closed: the read ends (with end of file or a reset) instead of waiting forever.
    let _ended = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest))
        .await
        .expect("closed after the header read timeout");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert!(get_root(address).await.starts_with("HTTP/1.1 200"));
}
