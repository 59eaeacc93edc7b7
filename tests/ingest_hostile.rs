//! ingest against hostile clients on a real stack, with its limits set through
//! `config.master.toml` keys: a body that trickles in is answered 408 after
//! `ingest.request_timeout`; a flood of connections that promise 1 MB each and send it a byte
//! at a time fills `ingest.max_connections`, a normal POST meanwhile gets 503 with
//! `Retry-After` instead of hanging, and once the flood is cut off ingest serves normal POSTs
//! again.

mod support;

use std::time::Duration;

use fleet_common::{EventTime, TelemetryEvent, Vin};
use support::TestStack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use uuid::Uuid;

/// Connections ingest serves at once in this test.
const MAX_CONNECTIONS: usize = 16;

/// A connection that sent the headers of a 1 MB POST and then trickles its body a byte every
/// half second, until ingest closes it or the task is aborted. Resolves to the start of
/// ingest's answer, if any.
fn trickle(port: u16) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
            return String::new();
        };
        let head = "POST /events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\nContent-Length: 1048576\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return String::new();
        }
        let mut answer = vec![0u8; 256];
        loop {
            tokio::select! {
                read = stream.read(&mut answer) => {
                    let n = read.unwrap_or(0);
                    return String::from_utf8_lossy(&answer[..n]).into_owned();
                }
                () = tokio::time::sleep(Duration::from_millis(500)) => {
                    if stream.write_all(b" ").await.is_err() {
                        return String::new();
                    }
                }
            }
        }
    })
}

fn event(seq: u64) -> TelemetryEvent {
    TelemetryEvent::example(
        Uuid::new_v4(),
        Vin::from_serial("YV1", 7),
        seq,
        EventTime(chrono::Utc::now()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_bodies_time_out_and_a_connection_flood_is_shed() {
    let stack = TestStack::new(
        "ingest-hostile",
        &[
            ("FLEET_INGEST__REQUEST_TIMEOUT", "12s"),
            (
                "FLEET_INGEST__MAX_CONNECTIONS",
                &MAX_CONNECTIONS.to_string(),
            ),
            ("FLEET_INGEST__MAX_CONCURRENT_REQUESTS", "64"),
        ],
    );
    stack.fleet_ok(&["launch-infra"]).await;
    let port = stack.ingest_port;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let post = |seq| http.post(stack.events_url()).json(&event(seq)).send();
    assert_eq!(post(0).await.unwrap().status(), 200, "a normal POST");

    // One slow body: 408 after the request timeout, not a connection held forever.
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(30), trickle(port))
        .await
        .expect("answered within the request timeout and a margin")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    assert!(
        started.elapsed() >= Duration::from_secs(11),
        "{:?}",
        started.elapsed()
    );

    // A flood: the cap and as many again, all trickling.
    let flood: Vec<_> = (0..MAX_CONNECTIONS + MAX_CONNECTIONS / 2)
        .map(|_| trickle(port))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = post(1).await.expect("answered, not hung or reset");
    assert_eq!(during.status(), 503, "over the connection cap");
    let retry_after: u64 = during.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: serde_json::Value = during.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("ingest.max_connections"),
        "{body}"
    );

    // The flood is cut off; ingest serves again within a few seconds.
    for connection in &flood {
        connection.abort();
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut seq = 2;
    loop {
        match post(seq).await {
            Ok(response) if response.status() == 200 => break,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "ingest does not serve again after the flood: {other:?}"
            ),
        }
        seq += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ready = http
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}
