//! The HTTP load on ingest's `POST /events`: closed loop (a fixed number of connections, one
//! request in flight on each, as fast as answers come: the saturated rate) or open loop (requests
//! started on a fixed schedule whatever the answers do: an offered rate). Every event is valid
//! and fresh; a sample of the accepted events is handed to the row tracker with the instant its
//! request was sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use fleet_common::wire::IngestReport;
use fleet_common::{EventTime, TelemetryEvent, Vin};
use tokio::sync::{Mutex, Semaphore, mpsc};
use uuid::Uuid;

/// World manufacturer identifier of the benchmark's vehicles.
const WMI: &str = "YS2";

/// Vehicles the load is spread over.
const VEHICLES: u64 = 10_000;

/// How the load is generated.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// `connections` connections, one request in flight on each.
    Closed {
        /// Connections.
        connections: usize,
    },
    /// `events_per_s` events per second offered, in requests of the batch size, with at most
    /// `connections` requests in flight (a request that cannot start on time starts late, and
    /// is counted).
    Open {
        /// Offered events per second.
        events_per_s: f64,
        /// Requests in flight at most.
        connections: usize,
    },
}

/// One run of the load.
#[derive(Debug, Clone)]
pub struct Load {
    /// Ingest's events endpoint.
    pub url: String,
    /// Events per request (1: a single JSON object; more: a JSON array).
    pub batch: usize,
    /// How requests are started.
    pub pace: Pace,
    /// Time before the measured window (connections, producer, consumer warm up).
    pub warmup: Duration,
    /// Measured window.
    pub duration: Duration,
    /// Accepted events handed to the row tracker per second, at most (0: none).
    pub samples_per_s: f64,
    /// Keeps the events of different runs apart (first VIN serial).
    pub run: u64,
}

/// An accepted event to look for in `diag`, with when its request was sent.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// The event's id.
    pub event_id: Uuid,
    /// When the request carrying it was sent.
    pub sent_at: Instant,
}

/// What a run measured inside its window.
#[derive(Debug, Default, Clone)]
pub struct Measured {
    /// Requests sent in the window.
    pub requests: u64,
    /// Events ingest accepted (200 with `accepted`) in the window.
    pub accepted: u64,
    /// Requests by status (`timeout`/`error` when no answer came).
    pub statuses: BTreeMap<String, u64>,
    /// Answer times of 200 requests, sorted.
    pub latencies: Vec<Duration>,
    /// Open loop: requests that started later than scheduled because every connection was
    /// busy.
    pub late_starts: u64,
}

/// Events of one request: vehicles `run*VEHICLES + (k*batch + i) % VEHICLES`, `seq` = k.
fn events(run: u64, k: u64, batch: usize) -> Vec<TelemetryEvent> {
    (0..batch as u64)
        .map(|i| {
            let vehicle = (k * batch as u64 + i) % VEHICLES;
            TelemetryEvent::example(
                Uuid::new_v4(),
                Vin::from_serial(WMI, (run % 100) * VEHICLES + vehicle),
                k,
                EventTime(Utc::now()),
            )
        })
        .collect()
}

struct Shared {
    load: Load,
    client: reqwest::Client,
    measure_from: Instant,
    end: Instant,
    next_request: AtomicU64,
    measured: Mutex<Measured>,
    samples: Option<mpsc::UnboundedSender<Sample>>,
    /// One sample per this many accepted requests.
    sample_every: u64,
}

impl Shared {
    /// Sends request number `k`; records it if it was sent inside the window.
    async fn request(&self, k: u64, sent_at: Instant, late: bool) {
        let batch = events(self.load.run, k, self.load.batch);
        let body = if self.load.batch == 1 {
            serde_json::to_vec(&batch[0])
        } else {
            serde_json::to_vec(&batch)
        }
        .expect("events serialize");
        let answer = self
            .client
            .post(&self.load.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        let (status, accepted) = match answer {
            Ok(response) => {
                let status = response.status().as_u16().to_string();
                let accepted = match response.bytes().await {
                    Ok(bytes) => match serde_json::from_slice::<IngestReport>(&bytes) {
                        Ok(report) => report.accepted as u64,
                        Err(_) => 0,
                    },
                    Err(_) => 0,
                };
                (status, accepted)
            }
            Err(e) if e.is_timeout() => ("timeout".to_owned(), 0),
            Err(_) => ("error".to_owned(), 0),
        };
        let took = sent_at.elapsed();
        if sent_at < self.measure_from || sent_at >= self.end {
            return;
        }
        if accepted == batch.len() as u64
            && k.is_multiple_of(self.sample_every)
            && let Some(samples) = &self.samples
        {
            let _ = samples.send(Sample {
                event_id: batch[0].event_id,
                sent_at,
            });
        }
        let mut m = self.measured.lock().await;
        m.requests += 1;
        m.accepted += accepted;
        m.late_starts += u64::from(late);
        if status == "200" {
            m.latencies.push(took);
        }
        *m.statuses.entry(status).or_default() += 1;
    }
}

/// Runs `load` for its warm-up and window; accepted samples go to `samples`.
pub async fn run(
    load: Load,
    samples: Option<mpsc::UnboundedSender<Sample>>,
) -> anyhow::Result<Measured> {
    let connections = match load.pace {
        Pace::Closed { connections } | Pace::Open { connections, .. } => connections.max(1),
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()
        .context("creating the HTTP client")?;
    let requests_per_s = match load.pace {
        // A guess for the sampling interval only; corrected below for the open loop.
        Pace::Closed { .. } => 1_000.0,
        Pace::Open { events_per_s, .. } => events_per_s / load.batch as f64,
    };
    let sample_every = if load.samples_per_s > 0.0 {
        ((requests_per_s / load.samples_per_s).floor() as u64).max(1)
    } else {
        u64::MAX
    };
    let start = Instant::now();
    let shared = Arc::new(Shared {
        measure_from: start + load.warmup,
        end: start + load.warmup + load.duration,
        client,
        next_request: AtomicU64::new(0),
        measured: Mutex::new(Measured::default()),
        samples,
        sample_every,
        load,
    });
    match shared.load.pace {
        Pace::Closed { connections } => closed(&shared, connections).await?,
        Pace::Open {
            events_per_s,
            connections,
        } => open(&shared, events_per_s, connections).await?,
    }
    let mut measured = std::mem::take(&mut *shared.measured.lock().await);
    measured.latencies.sort();
    Ok(measured)
}

async fn closed(shared: &Arc<Shared>, connections: usize) -> anyhow::Result<()> {
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let shared = shared.clone();
            tokio::spawn(async move {
                loop {
                    let sent_at = Instant::now();
                    if sent_at >= shared.end {
                        break;
                    }
                    let k = shared.next_request.fetch_add(1, Ordering::Relaxed);
                    shared.request(k, sent_at, false).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.context("load task")?;
    }
    Ok(())
}

async fn open(shared: &Arc<Shared>, events_per_s: f64, connections: usize) -> anyhow::Result<()> {
    let requests_per_s = events_per_s / shared.load.batch as f64;
    anyhow::ensure!(
        requests_per_s > 0.0,
        "the offered rate must be above 0 events/s"
    );
    let slots = Arc::new(Semaphore::new(connections));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut k = 0u64;
    loop {
        // Request k is due at k / rate seconds after the start.
        let due = start + Duration::from_secs_f64(k as f64 / requests_per_s);
        if due >= shared.end {
            break;
        }
        tokio::time::sleep_until(due.into()).await;
        let permit = slots.clone().acquire_owned().await?;
        let late = due.elapsed() > Duration::from_millis(5);
        let shared = shared.clone();
        let sent_at = Instant::now();
        tasks.spawn(async move {
            shared.request(k, sent_at, late).await;
            drop(permit);
        });
        k += 1;
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The `p` quantile (0..=1) of sorted durations.
pub fn quantile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_valid_events_of_distinct_vehicles() {
        let now = Utc::now() + chrono::Duration::seconds(1);
        let batch = events(3, 7, 100);
        assert_eq!(batch.len(), 100);
        let vins: std::collections::BTreeSet<_> = batch.iter().map(|e| e.vin.clone()).collect();
        assert_eq!(vins.len(), 100);
        for e in &batch {
            e.validate(now).expect("a valid event");
            assert_eq!(e.seq, 7);
        }
    }

    #[test]
    fn quantiles_pick_from_the_sorted_list() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&d, 0.5), Duration::from_millis(51));
        assert_eq!(quantile(&d, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&d, 1.0), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
