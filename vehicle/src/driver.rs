//! The task of one vehicle: report every interval (with jitter), deliver the outbox one batch
//! at a time in order, retry failed batches with backoff, and on shutdown flush for a while.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use rand::Rng;
use rand::rngs::StdRng;
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use crate::backoff::Backoff;
use crate::client::{Fate, IngestClient, Outcome};
use crate::outbox::Outbox;
use crate::seeding::{Stream, rng};
use crate::simulator::{Simulator, World};
use crate::stats::{DeliveryHealth, VehicleStats};

/// Most events sent in one request.
pub const MAX_BATCH: usize = 100;
/// Most events kept per vehicle while ingest does not acknowledge.
pub const OUTBOX_CAPACITY: usize = 1_000;
/// Reports are this share of the interval early or late, at random.
const JITTER: f64 = 0.05;

/// Settings shared by all drivers.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Time between reports.
    pub report_interval: Duration,
    /// How long pending events may still be sent after the stop signal.
    pub flush_timeout: Duration,
    /// Outbox size.
    pub outbox_capacity: usize,
}

/// One vehicle's task state.
pub struct Driver {
    sim: Simulator,
    world: Arc<World>,
    client: IngestClient,
    stats: Arc<VehicleStats>,
    health: Arc<DeliveryHealth>,
    config: DriverConfig,
    outbox: Outbox,
    timing: StdRng,
    backoff: Backoff,
    batch_limit: usize,
    failing: bool,
}

impl Driver {
    /// The driver of vehicle `index`.
    pub fn new(
        world: Arc<World>,
        sim: Simulator,
        index: u64,
        client: IngestClient,
        stats: Arc<VehicleStats>,
        health: Arc<DeliveryHealth>,
        config: DriverConfig,
    ) -> Self {
        Self {
            timing: rng(world.seed, index, Stream::Timing),
            outbox: Outbox::new(config.outbox_capacity),
            sim,
            world,
            client,
            stats,
            health,
            config,
            backoff: Backoff::default(),
            batch_limit: MAX_BATCH,
            failing: false,
        }
    }

    /// Runs until `stop` turns true (or its sender goes away), then flushes for at most
    /// `flush_timeout`.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        // Spread the vehicles over the first interval instead of reporting all at once.
        let mut next_report =
            Instant::now() + self.config.report_interval.mul_f64(self.timing.random());
        let mut sim_step: Option<Duration> = None; // None: the first report, no motion yet
        let mut in_flight: Option<BoxFuture<'static, Outcome>> = None;
        let mut retry_at: Option<Instant> = None;
        let mut flush_until: Option<Instant> = None;
        if *stop.borrow_and_update() {
            flush_until = Some(Instant::now());
        }

        loop {
            if in_flight.is_none() && retry_at.is_none_or(|at| at <= Instant::now()) {
                retry_at = None;
                if let Some(batch) = self.outbox.start_batch(self.batch_limit) {
                    in_flight = Some(self.client.send(&batch));
                }
            }
            if flush_until.is_some() && self.outbox.is_empty() {
                break;
            }
            tokio::select! {
                () = sleep_until(next_report), if flush_until.is_none() => {
                    if let Some(step) = sim_step {
                        self.sim.advance(step.as_secs_f64());
                    }
                    self.report();
                    let step = self.jittered_interval();
                    sim_step = Some(step);
                    next_report += step;
                    let now = Instant::now();
                    if next_report + self.config.report_interval < now {
                        // Far behind (a stalled process): skip instead of bursting.
                        next_report = now + step;
                    }
                }
                outcome = wait_for(&mut in_flight) => {
                    in_flight = None;
                    retry_at = self.settle(outcome);
                }
                () = sleep_until(retry_at.unwrap_or_else(far_future)), if retry_at.is_some() && in_flight.is_none() => {}
                _ = stop.changed(), if flush_until.is_none() => {
                    flush_until = Some(Instant::now() + self.config.flush_timeout);
                }
                () = sleep_until(flush_until.unwrap_or_else(far_future)), if flush_until.is_some() => {
                    break;
                }
            }
        }

        // What is left is given up; the process summary reports the total.
        let left = self.outbox.len();
        if left > 0 {
            tracing::debug!(vin = %self.stats.vin, events = left, "stopping with events not acknowledged");
            VehicleStats::add(&self.stats.dropped, left);
        }
        self.stats
            .pending
            .store(0, std::sync::atomic::Ordering::Relaxed);
    }

    fn jittered_interval(&mut self) -> Duration {
        self.config
            .report_interval
            .mul_f64(self.timing.random_range(1.0 - JITTER..=1.0 + JITTER))
    }

    /// Creates the next event and queues it.
    fn report(&mut self) {
        let event = self.sim.report(&self.world, Utc::now());
        self.stats
            .generated
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(dropped) = self.outbox.push(event) {
            VehicleStats::add(&self.stats.dropped, 1);
            tracing::debug!(vin = %self.stats.vin, seq = dropped.seq, "outbox full, event dropped");
        }
        self.update_pending();
    }

    /// Books the answer to the batch in flight; returns when to try again, if at all.
    fn settle(&mut self, outcome: Outcome) -> Option<Instant> {
        let sent = self.outbox.in_flight();
        let retry_at = match outcome {
            Outcome::Answered(fates) => {
                let done = self.outbox.finish_batch(sent);
                let mut fates = fates.into_iter();
                for event in done {
                    match fates.next().unwrap_or(Fate::Acknowledged) {
                        Fate::Acknowledged => self.stats.acknowledged_seq(event.seq),
                        Fate::Rejected(reason) => {
                            VehicleStats::add(&self.stats.rejected, 1);
                            tracing::warn!(vin = %self.stats.vin, seq = event.seq, %reason, "event rejected by ingest");
                        }
                    }
                }
                self.delivered();
                None
            }
            Outcome::Retry {
                acknowledged,
                retry_after,
                reason,
            } => {
                for event in self.outbox.finish_batch(acknowledged) {
                    self.stats.acknowledged_seq(event.seq);
                }
                VehicleStats::add(&self.stats.retried, sent.saturating_sub(acknowledged));
                tracing::debug!(vin = %self.stats.vin, %reason, "batch not acknowledged, will retry");
                if !self.failing {
                    self.failing = true;
                    self.health.vehicle_failing(&reason);
                }
                Some(Instant::now() + self.backoff.failure(&mut self.timing, retry_after))
            }
            Outcome::TooLarge if sent > 1 => {
                self.batch_limit = (sent / 2).max(1);
                self.outbox.finish_batch(0);
                tracing::debug!(vin = %self.stats.vin, batch_limit = self.batch_limit, "batch too large, sending fewer");
                None
            }
            Outcome::TooLarge => {
                self.refuse(sent, "ingest refuses even a single event as too large")
            }
            Outcome::Refused(reason) => self.refuse(sent, &reason),
        };
        self.update_pending();
        retry_at
    }

    /// The batch in flight is refused as a whole; its events are given up as rejected.
    fn refuse(&mut self, sent: usize, reason: &str) -> Option<Instant> {
        let done = self.outbox.finish_batch(sent);
        VehicleStats::add(&self.stats.rejected, done.len());
        tracing::warn!(vin = %self.stats.vin, events = done.len(), %reason, "batch refused by ingest");
        self.delivered();
        None
    }

    /// Ingest answered: back to normal.
    fn delivered(&mut self) {
        self.backoff.reset();
        if self.failing {
            self.failing = false;
            self.health.vehicle_recovered();
        }
    }

    fn update_pending(&self) {
        self.stats.pending.store(
            self.outbox.len() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// The batch in flight's outcome; never resolves when there is none.
async fn wait_for(in_flight: &mut Option<BoxFuture<'static, Outcome>>) -> Outcome {
    match in_flight.as_mut() {
        Some(request) => request.await,
        None => std::future::pending().await,
    }
}

/// An instant no timer will reach.
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests;
