//! A driver against a fake ingest on a local port: order, retries with the same events, flush.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fleet_common::TelemetryEvent;
use serde_json::json;

use super::{Driver, DriverConfig};
use crate::cli::{DEFAULT_CATALOGUE, parse_catalogue};
use crate::client::IngestClient;
use crate::geo::Origin;
use crate::identity::Identity;
use crate::simulator::{Simulator, World};
use crate::stats::{DeliveryHealth, VehicleReport, VehicleStats};

/// What the fake ingest saw and how it answers.
#[derive(Default)]
struct Fake {
    /// Answer 503 to this many requests first.
    fail_first: usize,
    /// Reject events whose seq is a multiple of this (0: none).
    reject_every: u64,
    requests: AtomicUsize,
    /// Every request body with the status it got.
    seen: Mutex<Vec<(StatusCode, Vec<TelemetryEvent>)>>,
}

async fn fake_ingest(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(batch): Json<Vec<TelemetryEvent>>,
) -> Response {
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let n = fake.requests.fetch_add(1, Ordering::SeqCst);
    if n < fake.fail_first {
        fake.seen
            .lock()
            .unwrap()
            .push((StatusCode::SERVICE_UNAVAILABLE, batch));
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "broker down"})),
        )
            .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
        return response;
    }
    let results: Vec<_> = batch
        .iter()
        .enumerate()
        .map(|(index, e)| {
            if fake.reject_every > 0 && e.seq % fake.reject_every == 0 {
                json!({"index": index, "status": "rejected", "error": "field `speed`: test"})
            } else {
                json!({"index": index, "status": "ok", "partition": 0, "offset": 0})
            }
        })
        .collect();
    fake.seen.lock().unwrap().push((StatusCode::OK, batch));
    Json(json!({"results": results})).into_response()
}

/// Runs one vehicle against `fake` for `run_for`, then stops it; returns its final counters.
async fn drive(fake: Arc<Fake>, run_for: Duration, flush_timeout: Duration) -> VehicleReport {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/events", post(fake_ingest))
        .with_state(fake);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let world = Arc::new(World::new(
        7,
        Origin {
            lat: 59.0,
            lon: 18.0,
        },
        1_000.0,
    ));
    let identity = Identity::of(&parse_catalogue(DEFAULT_CATALOGUE).unwrap(), 7, 3);
    let stats = Arc::new(VehicleStats::new(&identity));
    let driver = Driver::new(
        world.clone(),
        Simulator::new(&world, identity, 3),
        3,
        IngestClient::new(&url).unwrap(),
        stats.clone(),
        Arc::new(DeliveryHealth::default()),
        DriverConfig {
            report_interval: Duration::from_millis(20),
            flush_timeout,
            outbox_capacity: 1_000,
        },
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(driver.run(stopped));
    tokio::time::sleep(run_for).await;
    stop.send(true).unwrap();
    tokio::time::timeout(flush_timeout + Duration::from_secs(1), task)
        .await
        .expect("the driver stops within the flush timeout")
        .unwrap();
    stats.snapshot()
}

#[tokio::test]
async fn retries_resend_the_same_events_in_order_without_gaps() {
    let fake = Arc::new(Fake {
        fail_first: 3,
        ..Fake::default()
    });
    let stats = drive(
        fake.clone(),
        Duration::from_millis(1_500),
        Duration::from_secs(3),
    )
    .await;

    let seen = fake.seen.lock().unwrap();
    let failed: Vec<&Vec<TelemetryEvent>> = seen
        .iter()
        .filter(|(s, _)| !s.is_success())
        .map(|(_, b)| b)
        .collect();
    assert_eq!(failed.len(), 3);
    // Every failed attempt started with the very first event, same id.
    for batch in &failed {
        assert_eq!(batch[0].seq, 0);
        assert_eq!(batch[0].event_id, failed[0][0].event_id);
    }
    let delivered: Vec<&TelemetryEvent> = seen
        .iter()
        .filter(|(s, _)| s.is_success())
        .flat_map(|(_, b)| b)
        .collect();
    assert_eq!(
        delivered[0].event_id, failed[0][0].event_id,
        "the retried event is the same event"
    );
    let seqs: Vec<u64> = delivered.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "in order, no gaps, no repeats"
    );
    assert!(
        seen.iter().any(|(_, b)| b.len() > 1),
        "the backlog went as a batch"
    );

    assert_eq!(stats.acknowledged, seqs.len() as u64);
    assert_eq!(
        stats.generated, stats.acknowledged,
        "everything flushed: {stats:?}"
    );
    assert_eq!(stats.last_acked_seq, Some(seqs.len() as u64 - 1));
    assert!(stats.retried >= 3, "{stats:?}");
    assert_eq!((stats.dropped, stats.rejected, stats.pending), (0, 0, 0));
    assert!(
        stats.generated >= 40,
        "about one event per 20 ms: {stats:?}"
    );
}

#[tokio::test]
async fn rejected_events_are_counted_and_not_resent() {
    let fake = Arc::new(Fake {
        reject_every: 5,
        ..Fake::default()
    });
    let stats = drive(
        fake.clone(),
        Duration::from_millis(500),
        Duration::from_secs(3),
    )
    .await;
    let seen = fake.seen.lock().unwrap();
    let total: usize = seen.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(total as u64, stats.generated, "each event sent once");
    assert_eq!(stats.rejected, stats.generated.div_ceil(5));
    assert_eq!(stats.acknowledged + stats.rejected, stats.generated);
}

#[tokio::test]
async fn shutdown_gives_up_after_the_flush_timeout() {
    let fake = Arc::new(Fake {
        fail_first: usize::MAX,
        ..Fake::default()
    });
    let started = tokio::time::Instant::now();
    let stats = drive(fake, Duration::from_millis(300), Duration::from_millis(500)).await;
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_eq!(stats.acknowledged, 0);
    assert_eq!(stats.dropped, stats.generated, "{stats:?}");
    assert!(stats.generated > 0);
}
