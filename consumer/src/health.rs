//! Readiness: what the consumer knows about its broker, its group and PostgreSQL, and the rule
//! that turns it into ready / not ready.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Flags set by the consumer loop and the broker probe; read by
/// `/readyz` and `/metrics`.
#[derive(Debug, Default)]
pub struct Health {
    subscribed: AtomicBool,
    broker_ok: AtomicBool,
    assigned: AtomicUsize,
    postgres_ok: AtomicBool,
    paused: AtomicBool,
}

/// A consistent copy of the flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The Kafka consumer exists (created at start, dropped at shutdown).
    pub subscribed: bool,
    /// The last metadata request to the broker succeeded and listed the topic.
    pub broker_ok: bool,
    /// Partitions assigned to this member.
    pub assigned: usize,
    /// The last PostgreSQL operation succeeded.
    pub postgres_ok: bool,
    /// Consumption is paused because a batch could not be written.
    pub paused: bool,
}

impl Snapshot {
    /// Ready when the consumer exists and both PostgreSQL and the broker answer (a replica
    /// that holds no partitions, e.g. while others own them all, is ready too: it stands by).
    pub fn is_ready(&self) -> bool {
        self.postgres_ok && self.subscribed && self.broker_ok
    }

    /// Why the consumer is not ready, in words; `None` when ready.
    pub fn not_ready_reason(&self) -> Option<String> {
        let mut reasons = Vec::new();
        if !self.postgres_ok {
            reasons.push("PostgreSQL unreachable");
        }
        if !self.subscribed {
            reasons.push("Kafka consumer not created yet");
        }
        if !self.broker_ok {
            reasons.push("the broker does not answer");
        }
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}

impl Health {
    /// Records the subscription.
    pub fn set_subscribed(&self, v: bool) {
        self.subscribed.store(v, Ordering::Relaxed);
    }

    /// Records the outcome of a broker probe.
    pub fn set_broker_ok(&self, v: bool) {
        self.broker_ok.store(v, Ordering::Relaxed);
    }

    /// Records the number of assigned partitions.
    pub fn set_assigned(&self, n: usize) {
        self.assigned.store(n, Ordering::Relaxed);
    }

    /// Records whether PostgreSQL answered.
    pub fn set_postgres_ok(&self, v: bool) {
        self.postgres_ok.store(v, Ordering::Relaxed);
    }

    /// Records whether consumption is paused.
    pub fn set_paused(&self, v: bool) {
        self.paused.store(v, Ordering::Relaxed);
    }

    /// The current flags.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            subscribed: self.subscribed.load(Ordering::Relaxed),
            broker_ok: self.broker_ok.load(Ordering::Relaxed),
            assigned: self.assigned.load(Ordering::Relaxed),
            postgres_ok: self.postgres_ok.load(Ordering::Relaxed),
            paused: self.paused.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready() -> Snapshot {
        Snapshot {
            subscribed: true,
            broker_ok: true,
            assigned: 1,
            postgres_ok: true,
            paused: false,
        }
    }

    #[test]
    fn ready_needs_postgres_and_the_consumer() {
        assert!(ready().is_ready());
        assert_eq!(ready().not_ready_reason(), None);
        let s = Snapshot {
            postgres_ok: false,
            ..ready()
        };
        assert!(!s.is_ready());
        assert_eq!(s.not_ready_reason().unwrap(), "PostgreSQL unreachable");
        assert!(
            !Snapshot {
                subscribed: false,
                ..ready()
            }
            .is_ready()
        );
    }

    #[test]
    fn ready_needs_the_broker_with_or_without_partitions() {
        let idle = Snapshot {
            assigned: 0,
            ..ready()
        };
        assert!(idle.is_ready(), "a standby replica is ready");
        for assigned in [0, 3] {
            let cut_off = Snapshot {
                broker_ok: false,
                assigned,
                ..ready()
            };
            assert!(!cut_off.is_ready());
            assert!(cut_off.not_ready_reason().unwrap().contains("broker"));
        }
    }

    #[test]
    fn health_starts_not_ready() {
        assert!(!Health::default().snapshot().is_ready());
    }
}
