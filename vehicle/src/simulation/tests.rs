//! Vehicles against a fake ingest on a local port: coalesced batches, order, retries with the
//! same events, per-record failures, failover to another entry, the legacy form, flush, and a
//! run of fixed duration.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use fleet_common::wire::{ErrorBody, IngestReport, RecordResult};
use fleet_common::{TelemetryEvent, Vin};
use tokio::sync::watch;

use super::{Settings, Simulation};
use crate::cli::{DEFAULT_CATALOGUE, parse_catalogue};
use crate::client::Wire;
use crate::faults::FaultRates;
use crate::geo::Origin;
use crate::simulator::World;
use crate::stats::{Phase, StatsReport, Totals};
use crate::timing::Timing;

/// What the fake ingest saw and how it answers.
#[derive(Default)]
struct Fake {
    /// Answer 503 to this many requests first.
    fail_first: usize,
    /// Answer "failed" for events whose seq is a multiple of this on their first attempt (0: none).
    fail_record_every: u64,
    /// Reject events whose seq is a multiple of this (0: none).
    reject_every: u64,
    requests: AtomicUsize,
    /// Every JSON request body with the status it got.
    seen: Mutex<Vec<(StatusCode, Vec<TelemetryEvent>)>>,
    /// Event ids that already got a "failed" record.
    failed_once: Mutex<std::collections::HashSet<uuid::Uuid>>,
    /// Every form body.
    forms: Mutex<Vec<Vec<(String, String)>>>,
}

async fn fake_ingest(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let n = fake.requests.fetch_add(1, Ordering::SeqCst);
    if headers[header::CONTENT_TYPE] == "application/x-www-form-urlencoded" {
        let fields = form_urlencoded::parse(&body).into_owned().collect();
        fake.forms.lock().unwrap().push(fields);
        let report = report(vec![RecordResult::Ok {
            index: 0,
            partition: 0,
            offset: 0,
        }]);
        return (StatusCode::OK, Json(report)).into_response();
    }
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let batch: Vec<TelemetryEvent> = serde_json::from_slice(&body).unwrap();
    if n < fake.fail_first {
        fake.seen
            .lock()
            .unwrap()
            .push((StatusCode::SERVICE_UNAVAILABLE, batch));
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ErrorBody {
                error: "broker down".into(),
            }),
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
                RecordResult::Rejected {
                    index,
                    error: Some("field `speed`: test".into()),
                }
            } else if fake.fail_record_every > 0
                && e.seq % fake.fail_record_every == 0
                && fake.failed_once.lock().unwrap().insert(e.event_id)
            {
                RecordResult::Failed {
                    index,
                    error: "timeout".into(),
                }
            } else {
                RecordResult::Ok {
                    index,
                    partition: 0,
                    offset: 0,
                }
            }
        })
        .collect();
    fake.seen.lock().unwrap().push((StatusCode::OK, batch));
    Json(report(results)).into_response()
}

/// Ingest's report of `results`, with their counts.
fn report(results: Vec<RecordResult>) -> IngestReport {
    let count = |pick: fn(&RecordResult) -> bool| results.iter().filter(|r| pick(r)).count();
    IngestReport {
        error: None,
        accepted: count(|r| matches!(r, RecordResult::Ok { .. })),
        rejected: count(|r| matches!(r, RecordResult::Rejected { .. })),
        rate_limited: 0,
        failed: count(|r| matches!(r, RecordResult::Failed { .. })),
        results,
    }
}

/// A fake ingest on a local port; returns its base URL.
async fn serve(fake: Arc<Fake>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new()
        .route("/events", post(fake_ingest))
        .with_state(fake);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

fn settings(count: u64, wire: Wire, flush_timeout: Duration) -> Settings {
    Settings {
        world: World::new(
            7,
            Origin {
                lat: 59.0,
                lon: 18.0,
            },
            1_000.0,
        ),
        catalogue: parse_catalogue(DEFAULT_CATALOGUE).unwrap(),
        first_index: 3,
        count,
        faults: FaultRates::NONE,
        wire,
        batch_max: 50,
        batch_wait: Duration::from_millis(30),
        max_in_flight: 2,
        outbox_capacity: 1_000,
        flush_timeout,
        duration: None,
    }
}

/// Runs `settings` against `urls` for `run_for`, then stops; returns the final report and totals.
async fn drive(settings: Settings, urls: Vec<String>, run_for: Duration) -> (StatsReport, Totals) {
    let flush_timeout = settings.flush_timeout;
    let (_timing_tx, timing) = watch::channel(Timing {
        interval: Duration::from_millis(20),
        jitter: 0.05,
    });
    let (_urls_tx, urls) = watch::channel(urls);
    let simulation = Simulation::new(settings, timing, urls).unwrap();
    let stats = simulation.stats();
    let task = tokio::spawn(simulation.run(tokio::time::sleep(run_for)));
    let totals = tokio::time::timeout(run_for + flush_timeout + Duration::from_secs(1), task)
        .await
        .expect("the vehicles stop within the flush timeout")
        .unwrap();
    (stats.report(), totals)
}

/// Events of `seen` by VIN, in the order they were sent successfully.
fn delivered_by_vin(
    seen: &[(StatusCode, Vec<TelemetryEvent>)],
) -> HashMap<Vin, Vec<&TelemetryEvent>> {
    let mut by_vin: HashMap<Vin, Vec<&TelemetryEvent>> = HashMap::new();
    for (_, batch) in seen.iter().filter(|(s, _)| s.is_success()) {
        for event in batch {
            by_vin.entry(event.vin.clone()).or_default().push(event);
        }
    }
    by_vin
}

#[tokio::test]
async fn vehicles_share_batches_and_retries_resend_the_same_events_in_order() {
    let fake = Arc::new(Fake {
        fail_first: 3,
        ..Fake::default()
    });
    let url = serve(fake.clone()).await;
    let (report, totals) = drive(
        settings(20, Wire::Json, Duration::from_secs(3)),
        vec![url],
        Duration::from_millis(1_500),
    )
    .await;

    let seen = fake.seen.lock().unwrap();
    let failed: Vec<&Vec<TelemetryEvent>> = seen
        .iter()
        .filter(|(s, _)| !s.is_success())
        .map(|(_, b)| b)
        .collect();
    assert_eq!(failed.len(), 3);
    let resent: std::collections::HashSet<uuid::Uuid> = seen
        .iter()
        .filter(|(s, _)| s.is_success())
        .flat_map(|(_, b)| b.iter().map(|e| e.event_id))
        .collect();
    for event in failed.iter().flat_map(|b| b.iter()) {
        assert!(
            resent.contains(&event.event_id),
            "a failed event went again with the same id"
        );
    }
    assert!(
        seen.iter().any(|(_, b)| {
            b.iter()
                .map(|e| &e.vin)
                .collect::<std::collections::HashSet<_>>()
                .len()
                > 1
        }),
        "vehicles share requests"
    );
    assert!(
        seen.iter().all(|(_, b)| b.len() <= 50),
        "batches hold at most batch_max events"
    );
    for (vin, events) in delivered_by_vin(&seen) {
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "{vin}: in order, no gaps, no repeats"
        );
        let stats = report
            .vehicles
            .iter()
            .find(|v| v.vin == vin.as_str())
            .unwrap();
        assert_eq!(stats.books.acknowledged, seqs.len() as u64);
        assert_eq!(stats.last_acked_seq, Some(seqs.len() as u64 - 1));
    }
    assert_eq!(
        totals.generated, totals.acknowledged,
        "everything flushed: {totals:?}"
    );
    assert!(totals.retried >= 3, "{totals:?}");
    assert_eq!((totals.dropped, totals.rejected, totals.pending), (0, 0, 0));
    assert!(
        totals.generated >= 20 * 40,
        "about one event per 20 ms per vehicle: {totals:?}"
    );
    assert!(
        seen.len() < (totals.generated / 5) as usize,
        "{} requests for {} events",
        seen.len(),
        totals.generated
    );
}

#[tokio::test]
async fn failed_records_are_retried_and_rejected_ones_counted_once() {
    let fake = Arc::new(Fake {
        fail_record_every: 3,
        reject_every: 5,
        ..Fake::default()
    });
    let url = serve(fake.clone()).await;
    let (report, totals) = drive(
        settings(4, Wire::Json, Duration::from_secs(3)),
        vec![url],
        Duration::from_millis(600),
    )
    .await;
    let seen = fake.seen.lock().unwrap();
    let sent: usize = seen.iter().map(|(_, b)| b.len()).sum();
    let failed_once = fake.failed_once.lock().unwrap().len();
    assert!(failed_once > 0);
    assert_eq!(
        sent as u64,
        totals.generated + failed_once as u64,
        "each event sent once, failed records once more"
    );
    assert_eq!(totals.retried, failed_once as u64);
    let expected_rejected: u64 = report
        .vehicles
        .iter()
        .map(|v| v.books.generated.div_ceil(5))
        .sum();
    assert_eq!(totals.rejected, expected_rejected);
    assert_eq!(totals.acknowledged + totals.rejected, totals.generated);
    assert_eq!(totals.dropped, 0);
}

#[tokio::test]
async fn a_failing_entry_is_skipped_and_no_event_is_lost() {
    let fake = Arc::new(Fake::default());
    let good = serve(fake.clone()).await;
    // Nothing listens on port 9 of localhost: every request to it fails to connect.
    let dead = "http://127.0.0.1:9".to_owned();
    let (_, totals) = drive(
        settings(10, Wire::Json, Duration::from_secs(3)),
        vec![dead, good],
        Duration::from_millis(800),
    )
    .await;
    assert!(totals.generated > 100);
    assert_eq!(totals.acknowledged, totals.generated, "{totals:?}");
    assert_eq!(totals.dropped, 0);
    let seen = fake.seen.lock().unwrap();
    for (vin, events) in delivered_by_vin(&seen) {
        let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "{vin}");
    }
}

#[tokio::test]
async fn legacy_mode_posts_one_form_per_event_with_old_vins() {
    let fake = Arc::new(Fake::default());
    let url = serve(fake.clone()).await;
    let (report, totals) = drive(
        settings(3, Wire::LegacyForm, Duration::from_secs(3)),
        vec![url],
        Duration::from_millis(300),
    )
    .await;
    let forms = fake.forms.lock().unwrap();
    assert!(fake.seen.lock().unwrap().is_empty(), "no JSON at all");
    assert_eq!(
        forms.len() as u64,
        totals.generated,
        "one event per request"
    );
    assert_eq!(totals.acknowledged, totals.generated);
    for form in forms.iter() {
        let names: Vec<&str> = form.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, fleet_common::event::LEGACY_FORM_FIELDS);
        let vin = &form[7].1;
        Vin::parse_legacy(vin).unwrap();
        assert!(report.vehicles.iter().any(|v| &v.vin == vin));
    }
    for vehicle in &report.vehicles {
        assert!(vehicle.books.acknowledged > 0);
        assert_eq!(vehicle.last_acked_seq, None, "ingest assigns seq");
    }
}

#[tokio::test]
async fn shutdown_gives_up_after_the_flush_timeout() {
    let fake = Arc::new(Fake {
        fail_first: usize::MAX,
        ..Fake::default()
    });
    let url = serve(fake).await;
    let started = tokio::time::Instant::now();
    let (_, totals) = drive(
        settings(5, Wire::Json, Duration::from_millis(500)),
        vec![url],
        Duration::from_millis(300),
    )
    .await;
    assert!(started.elapsed() < Duration::from_millis(1_500));
    assert_eq!(totals.acknowledged, 0);
    assert_eq!(totals.dropped, totals.generated, "{totals:?}");
    assert!(totals.generated > 0);
}

#[tokio::test]
async fn after_the_duration_everything_is_delivered_and_the_books_stay_readable() {
    let fake = Arc::new(Fake {
        fail_first: 2,
        ..Fake::default()
    });
    let url = serve(fake.clone()).await;
    let mut settings = settings(10, Wire::Json, Duration::from_secs(3));
    settings.duration = Some(Duration::from_millis(400));
    let (_timing_tx, timing) = watch::channel(Timing {
        interval: Duration::from_millis(20),
        jitter: 0.05,
    });
    let (_urls_tx, urls) = watch::channel(vec![url]);
    let simulation = Simulation::new(settings, timing, urls).unwrap();
    let stats = simulation.stats();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(simulation.run(async {
        let _ = stop_rx.await;
    }));
    assert_eq!(stats.phase.get(), Phase::Generating);

    let started = tokio::time::Instant::now();
    while stats.phase.get() != Phase::Done {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "delivered within 5 s: {:?}",
            stats.report().totals
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(400));
    let done = stats.report();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!task.is_finished(), "the process keeps serving its books");
    assert_eq!(stats.report(), done, "no event after the duration");

    let started_at = done.started_at.expect("the books show the start");
    let t = &done.totals;
    assert_eq!(t.acknowledged, t.generated, "{t:?}");
    assert_eq!((t.pending, t.dropped, t.rejected), (0, 0, 0));
    assert!(t.retried > 0, "the 503s were retried: {t:?}");
    for v in &done.vehicles {
        // About 400 ms / 20 ms reports, the first one within the first interval.
        assert!(
            (10..=22).contains(&v.books.generated),
            "{}: {} events",
            v.vin,
            v.books.generated
        );
        assert_eq!(v.last_acked_seq, Some(v.books.generated - 1));
    }
    {
        let seen = fake.seen.lock().unwrap();
        let delivered = delivered_by_vin(&seen);
        assert_eq!(
            delivered.values().map(Vec::len).sum::<usize>() as u64,
            t.acknowledged
        );
        assert!(
            delivered.values().flatten().all(|e| e.ts.0 >= started_at),
            "every event is stamped at or after the start the books show"
        );
    }

    stop_tx.send(()).unwrap();
    let totals = tokio::time::timeout(Duration::from_secs(1), task)
        .await
        .expect("stops at once: nothing to flush")
        .unwrap();
    assert_eq!(&totals, t);
}
