//! Counters per vehicle, updated by its task and read by `GET /stats` (whose body is the wire
//! type [`StatsReport`], shared with `fleet`).
//!
//! For every vehicle, `generated = acknowledged + rejected + dropped + pending` once its batch
//! in flight is answered. The process's [`Phase`] tells whether the counters can still move.

use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};

/// The body of `GET /stats` and its parts, as `fleet` reads them.
pub use fleet_common::wire::{Phase, StatsReport, Totals, VehicleReport};

use crate::identity::Identity;

/// The live counters of one vehicle.
#[derive(Debug)]
pub struct VehicleStats {
    /// VIN.
    pub vin: String,
    /// Manufacturer.
    pub make: String,
    /// Model.
    pub model: String,
    /// Events created.
    pub generated: AtomicU64,
    /// Events ingest acknowledged (the broker has them).
    pub acknowledged: AtomicU64,
    /// Events sent again after a failed attempt (one per event per retry).
    pub retried: AtomicU64,
    /// Events given up because the outbox was full or time ran out at shutdown.
    pub dropped: AtomicU64,
    /// Events ingest refused as invalid.
    pub rejected: AtomicU64,
    /// Events waiting in the outbox.
    pub pending: AtomicU64,
    /// Highest acknowledged `seq`, -1 for none.
    pub last_acked_seq: AtomicI64,
}

impl VehicleStats {
    /// Zeroed counters for `identity`.
    pub fn new(identity: &Identity) -> Self {
        Self {
            vin: identity.vin.to_string(),
            make: identity.make.clone(),
            model: identity.model.clone(),
            generated: AtomicU64::new(0),
            acknowledged: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            pending: AtomicU64::new(0),
            last_acked_seq: AtomicI64::new(-1),
        }
    }

    /// Adds `n` to `counter`.
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Notes that an event was acknowledged whose `seq` ingest assigns (`--legacy-form`): only
    /// the count moves, `last_acked_seq` stays unknown.
    pub fn acknowledged_unsequenced(&self) {
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
    }

    /// Notes that event `seq` was acknowledged.
    pub fn acknowledged_seq(&self, seq: u64) {
        self.acknowledged.fetch_add(1, Ordering::Relaxed);
        self.last_acked_seq
            .fetch_max(i64::try_from(seq).unwrap_or(i64::MAX), Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> VehicleReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let last = self.last_acked_seq.load(Ordering::Relaxed);
        VehicleReport {
            vin: self.vin.clone(),
            make: self.make.clone(),
            model: self.model.clone(),
            books: Totals {
                generated: get(&self.generated),
                acknowledged: get(&self.acknowledged),
                retried: get(&self.retried),
                dropped: get(&self.dropped),
                rejected: get(&self.rejected),
                pending: get(&self.pending),
            },
            last_acked_seq: u64::try_from(last).ok(),
        }
    }
}

/// The phase, written by the simulation task and read by `GET /stats`.
#[derive(Debug, Default)]
pub struct PhaseCell(AtomicU8);

impl PhaseCell {
    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Release);
    }

    /// The phase now.
    pub fn get(&self) -> Phase {
        match self.0.load(Ordering::Acquire) {
            0 => Phase::Generating,
            1 => Phase::Delivering,
            _ => Phase::Done,
        }
    }
}

/// The report over `vehicles`, started at `started_at`, in `phase`.
pub fn report(
    vehicles: &[std::sync::Arc<VehicleStats>],
    started_at: chrono::DateTime<chrono::Utc>,
    phase: Phase,
) -> StatsReport {
    let vehicles: Vec<VehicleReport> = vehicles.iter().map(|v| v.snapshot()).collect();
    let mut totals = Totals::default();
    for v in &vehicles {
        totals.add(&v.books);
    }
    StatsReport {
        started_at: Some(started_at),
        phase,
        vehicles,
        totals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_cell_starts_generating_and_keeps_what_is_set() {
        let cell = PhaseCell::default();
        assert_eq!(cell.get(), Phase::Generating);
        for phase in [Phase::Delivering, Phase::Done, Phase::Generating] {
            cell.set(phase);
            assert_eq!(cell.get(), phase);
        }
        assert_eq!(
            serde_json::to_value(Phase::Delivering).unwrap(),
            serde_json::json!("delivering")
        );
    }
}
