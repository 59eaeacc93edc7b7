//! The vehicles of one process and their delivery, driven by a single task.
//!
//! One ticker wakes the task every [`TICK`]; each vehicle whose report is due moves on, reports
//! and queues the event (encoded once) in its own bounded outbox. The events of all vehicles are
//! coalesced into shared requests of up to `batch_max` events, sent when that many wait or the
//! oldest has waited `batch_wait`, with up to `max_in_flight` requests at once. A vehicle has at
//! most one slice of its outbox in flight, taken from the front, so its events reach ingest in
//! order; every event's fate in the answer is booked to its own vehicle: acknowledged, rejected,
//! or kept at the front of its outbox and sent again as the same bytes (same `event_id`). Failed
//! requests make their ingest entry back off (see [`crate::endpoints`]); on stop, pending events
//! are flushed for at most `flush_timeout` and what is left is counted as dropped.
//!
//! With a `duration`, the vehicles report only during that time after the start; then the task
//! delivers what is pending (retrying as long as needed, nothing is given up for the duration)
//! and, once every event has its fate, idles with the counters final until stopped, so that
//! `GET /stats` can still be compared with what was stored.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use fleet_common::TelemetryEvent;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use rand::Rng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::app::Fleet;
use crate::cli::Catalogue;
use crate::client::{ClientError, Fate, IngestClient, Outcome, Wire};
use crate::endpoints::{Endpoints, Pick};
use crate::faults::FaultRates;
use crate::identity::Identity;
use crate::outbox::Outbox;
use crate::seeding::{Stream, rng};
use crate::simulator::{Simulator, World};
use crate::stats::{Phase, PhaseCell, Totals, VehicleStats};
use crate::timing::Timing;

/// How often the task looks for due reports.
pub const TICK: Duration = Duration::from_millis(10);
/// Most events of one vehicle in one request, so that a vehicle with a backlog does not crowd
/// out the others.
const MAX_PER_VEHICLE: usize = 100;

/// Everything about the vehicles of one process except what may change while it runs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the vehicles drive.
    pub world: World,
    /// Makes and models.
    pub catalogue: Catalogue,
    /// Global index of the first vehicle.
    pub first_index: u64,
    /// Vehicles simulated.
    pub count: u64,
    /// Sensor fault rates.
    pub faults: FaultRates,
    /// JSON batches, or the old client's forms.
    pub wire: Wire,
    /// Most events in one request.
    pub batch_max: usize,
    /// Longest time an event waits for its batch to fill.
    pub batch_wait: Duration,
    /// Most requests at once.
    pub max_in_flight: usize,
    /// Most events kept per vehicle while ingest does not acknowledge.
    pub outbox_capacity: usize,
    /// How long pending events may still be sent after the stop signal.
    pub flush_timeout: Duration,
    /// Report only this long after the start, then deliver and idle (`None`: until stopped).
    pub duration: Option<Duration>,
}

/// An event as it goes on the wire, encoded once.
#[derive(Debug)]
struct Encoded {
    seq: u64,
    body: Box<[u8]>,
}

/// One vehicle's state in the task.
#[derive(Debug)]
struct Vehicle {
    sim: Simulator,
    /// Report jitter and the start offset.
    timing_rng: StdRng,
    /// The step to simulate before the next report (`None` before the first).
    step: Option<Duration>,
    outbox: Outbox<Encoded>,
    /// Whether the vehicle is in the ready queue.
    queued: bool,
}

/// A request in flight: which ingest entry, and which vehicles' events in which order.
#[derive(Debug)]
struct Request {
    entry: String,
    /// (vehicle position, events of its outbox's front in the request), in body order.
    segments: Vec<(usize, usize)>,
    count: usize,
}

/// The vehicles of a process.
pub struct Simulation {
    settings: Settings,
    vehicles: Vec<Vehicle>,
    stats: Fleet,
    timing: watch::Receiver<Timing>,
    endpoints: Endpoints,
    client: IngestClient,
    /// Reports due, by instant.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Vehicles with events waiting and none in flight, in the order they became ready.
    ready: VecDeque<usize>,
    /// About how many events wait in ready vehicles (decides when a batch is full).
    ready_events: usize,
    /// Since when the oldest ready event waits.
    ready_since: Option<Instant>,
    /// Most events per request now (halved on 413).
    batch_max: usize,
    /// Backoff jitter.
    rng: StdRng,
}

impl Simulation {
    /// The vehicles of `settings`, reporting at the `timing` of the moment, to the ingest
    /// entries of the moment (base URLs like `http://host:8080`, or events URLs).
    pub fn new(
        settings: Settings,
        timing: watch::Receiver<Timing>,
        ingest_urls: watch::Receiver<Vec<String>>,
    ) -> Result<Self, ClientError> {
        let client = IngestClient::new(settings.wire, settings.max_in_flight)?;
        let world = &settings.world;
        let start = Instant::now();
        let interval = timing.borrow().interval;
        let mut vehicles = Vec::new();
        let mut stats = Vec::new();
        let mut due = BinaryHeap::new();
        for (position, index) in (settings.first_index..)
            .take(usize::try_from(settings.count).unwrap_or(usize::MAX))
            .enumerate()
        {
            let identity = match settings.wire {
                Wire::Json => Identity::of(&settings.catalogue, world.seed, index),
                Wire::LegacyForm => Identity::legacy(&settings.catalogue, world.seed, index),
            };
            stats.push(Arc::new(VehicleStats::new(&identity)));
            let mut timing_rng = rng(world.seed, index, Stream::Timing);
            // Spread the vehicles over the first interval instead of reporting all at once.
            due.push(Reverse((
                start + interval.mul_f64(timing_rng.random()),
                position,
            )));
            vehicles.push(Vehicle {
                sim: Simulator::new(world, identity, index, settings.faults),
                timing_rng,
                step: None,
                outbox: Outbox::new(settings.outbox_capacity),
                queued: false,
            });
        }
        Ok(Self {
            rng: rng(world.seed, settings.first_index, Stream::Timing),
            batch_max: settings.wire.max_batch(settings.batch_max),
            settings,
            vehicles,
            stats: Fleet {
                vehicles: stats.into(),
                phase: Arc::new(PhaseCell::default()),
                started_at: Utc::now(),
            },
            timing,
            endpoints: Endpoints::new(ingest_urls),
            client,
            due,
            ready: VecDeque::new(),
            ready_events: 0,
            ready_since: None,
        })
    }

    /// The live counters of every vehicle, for `GET /stats`.
    pub fn stats(&self) -> Fleet {
        self.stats.clone()
    }

    /// Runs until `stop` resolves, then flushes for at most `flush_timeout`; returns the
    /// totals. With a `duration`, reports stop when it is over (see the module docs).
    pub async fn run(mut self, stop: impl Future<Output = ()>) -> Totals {
        let mut ticker = tokio::time::interval(TICK);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut in_flight: FuturesUnordered<BoxFuture<'static, (Request, Outcome)>> =
            FuturesUnordered::new();
        let mut stop = std::pin::pin!(stop);
        let mut deadline: Option<Instant> = None;
        let end = self.settings.duration.map(|d| Instant::now() + d);
        let mut generating = true;
        loop {
            tokio::select! {
                _ = ticker.tick() => {
                    if deadline.is_none() && generating {
                        let now = Instant::now();
                        match end {
                            // Reports due before the end still happen, none after it.
                            Some(end) if now >= end => {
                                self.report_due(end);
                                generating = false;
                                self.stats.phase.set(Phase::Delivering);
                                tracing::info!(
                                    pending = self.pending(),
                                    "duration over: no more events, delivering the pending ones"
                                );
                            }
                            _ => self.report_due(now),
                        }
                    }
                }
                Some((request, outcome)) = in_flight.next(), if !in_flight.is_empty() => {
                    self.settle(request, outcome);
                }
                () = &mut stop, if deadline.is_none() => {
                    tracing::info!(pending = self.pending(), "stopping: flushing pending events");
                    deadline = Some(Instant::now() + self.settings.flush_timeout);
                }
            }
            let now = Instant::now();
            self.dispatch(now, deadline.is_some() || !generating, &mut in_flight);
            // A vehicle with events and none in flight is always ready.
            let idle = in_flight.is_empty() && self.ready.is_empty();
            if let Some(deadline) = deadline {
                if idle || now >= deadline {
                    break;
                }
            } else if !generating && idle {
                self.stats.phase.set(Phase::Done);
                self.stats
                    .report()
                    .totals
                    .log("every event delivered; serving /stats until stopped");
                stop.as_mut().await;
                break;
            }
        }
        // Whatever is still pending (in flight included) is given up.
        drop(in_flight);
        for (vehicle, stats) in self.vehicles.iter_mut().zip(self.stats.vehicles.iter()) {
            let left = vehicle.outbox.drain().count();
            if left > 0 {
                VehicleStats::add(&stats.dropped, left);
            }
            stats.pending.store(0, std::sync::atomic::Ordering::Relaxed);
        }
        self.stats.report().totals
    }

    /// Events waiting in all outboxes.
    fn pending(&self) -> usize {
        self.vehicles.iter().map(|v| v.outbox.len()).sum()
    }

    /// Every vehicle whose report is due reports.
    fn report_due(&mut self, now: Instant) {
        let timing = *self.timing.borrow();
        let ts = Utc::now();
        while let Some(&Reverse((at, position))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            let vehicle = &mut self.vehicles[position];
            let stats = &self.stats.vehicles[position];
            if let Some(step) = vehicle.step {
                vehicle.sim.advance(step.as_secs_f64());
            }
            let event = vehicle.sim.report(&self.settings.world, ts);
            let encoded = Encoded {
                seq: event.seq,
                body: encode(self.settings.wire, &event),
            };
            VehicleStats::add(&stats.generated, 1);
            match vehicle.outbox.push(encoded) {
                Some(dropped) => {
                    VehicleStats::add(&stats.dropped, 1);
                    tracing::debug!(vin = %stats.vin, seq = dropped.seq, "outbox full, event dropped");
                }
                None if vehicle.outbox.in_flight() == 0 => self.ready_events += 1,
                None => {}
            }
            update_pending(vehicle, stats);
            if !vehicle.queued && vehicle.outbox.in_flight() == 0 {
                vehicle.queued = true;
                self.ready.push_back(position);
                self.ready_since.get_or_insert(now);
            }
            let step = timing.step(&mut vehicle.timing_rng);
            vehicle.step = Some(step);
            let mut next = at + step;
            if next + timing.interval < now {
                // Far behind (a stalled process): skip instead of bursting.
                next = now + step;
            }
            self.due.push(Reverse((next, position)));
        }
    }

    /// Sends batches while one is due, a request slot is free and an ingest entry is usable.
    fn dispatch(
        &mut self,
        now: Instant,
        flushing: bool,
        in_flight: &mut FuturesUnordered<BoxFuture<'static, (Request, Outcome)>>,
    ) {
        while in_flight.len() < self.settings.max_in_flight && !self.ready.is_empty() {
            let full = self.ready_events >= self.batch_max;
            let waited = self
                .ready_since
                .is_some_and(|since| now.duration_since(since) >= self.settings.batch_wait);
            if !(flushing || full || waited) {
                return;
            }
            let Pick::Use(entry, url) = self.endpoints.pick(now) else {
                return;
            };
            let mut body = self.client.wire().body();
            let mut segments = Vec::new();
            while body.count() < self.batch_max {
                let Some(position) = self.ready.pop_front() else {
                    break;
                };
                let vehicle = &mut self.vehicles[position];
                vehicle.queued = false;
                let room = (self.batch_max - body.count()).min(MAX_PER_VEHICLE);
                if let Some(events) = vehicle.outbox.start_batch(room) {
                    let before = body.count();
                    for event in events {
                        body.push(&event.body);
                    }
                    segments.push((position, body.count() - before));
                }
            }
            let count = body.count();
            self.ready_events = self.ready_events.saturating_sub(count);
            self.ready_since = if self.ready.is_empty() {
                None
            } else {
                Some(now)
            };
            if count == 0 {
                continue;
            }
            let request = Request {
                entry,
                segments,
                count,
            };
            in_flight.push(
                self.client
                    .send(url, body)
                    .map(move |outcome| (request, outcome))
                    .boxed(),
            );
        }
    }

    /// Books the answer to `request` event by event to its vehicles.
    fn settle(&mut self, request: Request, outcome: Outcome) {
        let now = Instant::now();
        let fates = match outcome {
            Outcome::TooLarge if request.count > 1 => {
                self.batch_max = (request.count / 2).max(1);
                tracing::info!(batch_max = self.batch_max, "batch too large, sending fewer");
                vec![Fate::Retry; request.count]
            }
            Outcome::TooLarge => {
                vec![
                    Fate::Rejected("ingest refuses even a single event as too large".into());
                    request.count
                ]
            }
            Outcome::Answered {
                fates,
                retry_after,
                problem,
            } => {
                // An answer that stored some records shows the entry works: only its failed
                // records are retried, without backing the whole entry off (otherwise a steady
                // trickle of failed records would grow the backoff without end).
                let stored_some = fates.contains(&Fate::Acknowledged);
                match problem {
                    Some(problem) if !stored_some => self.endpoints.failed(
                        &request.entry,
                        now,
                        retry_after,
                        &problem,
                        &mut self.rng,
                    ),
                    _ => self.endpoints.succeeded(&request.entry),
                }
                fates
            }
        };
        let legacy = self.settings.wire == Wire::LegacyForm;
        let mut rejected: Option<(usize, String)> = None;
        let mut offset = 0;
        for (position, n) in request.segments {
            let mine = fates.get(offset..offset + n).unwrap_or_default();
            offset += n;
            let vehicle = &mut self.vehicles[position];
            let stats = &self.stats.vehicles[position];
            let resend = |i: usize| mine.get(i).is_none_or(|f| *f == Fate::Retry);
            let done = vehicle.outbox.finish_batch(|i, _| resend(i));
            VehicleStats::add(&stats.retried, n - done.len());
            for (i, event) in done {
                match &mine[i] {
                    Fate::Acknowledged if legacy => stats.acknowledged_unsequenced(),
                    Fate::Acknowledged => stats.acknowledged_seq(event.seq),
                    Fate::Rejected(reason) => {
                        VehicleStats::add(&stats.rejected, 1);
                        tracing::debug!(vin = %stats.vin, seq = event.seq, %reason, "event rejected by ingest");
                        let first = rejected.get_or_insert_with(|| (0, reason.clone()));
                        first.0 += 1;
                    }
                    Fate::Retry => unreachable!("kept in the outbox"),
                }
            }
            update_pending(vehicle, stats);
            if !vehicle.outbox.is_empty() {
                vehicle.queued = true;
                self.ready.push_back(position);
                self.ready_events += vehicle.outbox.len();
                self.ready_since.get_or_insert(now);
            }
        }
        if let Some((events, reason)) = rejected {
            tracing::warn!(events, %reason, "events rejected by ingest");
        }
    }
}

/// `event` as it goes on the wire.
fn encode(wire: Wire, event: &TelemetryEvent) -> Box<[u8]> {
    match wire {
        Wire::Json => serde_json::to_vec(event)
            .expect("an event serializes")
            .into_boxed_slice(),
        Wire::LegacyForm => crate::legacy::form_body(event)
            .into_bytes()
            .into_boxed_slice(),
    }
}

fn update_pending(vehicle: &Vehicle, stats: &VehicleStats) {
    stats.pending.store(
        vehicle.outbox.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
}

#[cfg(test)]
mod tests;
