//! What the benchmark commands share: a measured Kafka produce loop with stated producer
//! settings, and the machine's load average that every result is quoted with.

pub mod copy;
pub mod events;
pub mod load;
pub mod produce;
pub mod stack;
pub mod stats;

/// The load average (1, 5, 15 min) from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
