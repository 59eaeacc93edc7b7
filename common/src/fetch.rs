//! The fetch settings of a librdkafka consumer reading fleet's topics from Nisshi: the
//! consumer's, and the bare reader `sink-bench` measures it against.

use std::time::Duration;

use rdkafka::ClientConfig;

/// Bytes one fetch may return per partition (`max.partition.fetch.bytes`): room for the
/// 10,000 records Nisshi reads per partition and fetch.
pub const MAX_PARTITION_FETCH_BYTES: u32 = 16 << 20;

/// Sets how `c` fetches:
/// - `fetch.min.bytes=1`, `fetch.wait.max.ms=fetch_wait`: the broker answers a fetch at once
///   when it has a byte, and an empty fetch waits at most `fetch_wait` (librdkafka's default,
///   500 ms, lets Nisshi look again only after 250 ms). Not much lower: Nisshi returns one
///   record from a storage read that outlasts it (`consumer.fetch_wait`).
/// - `fetch.queue.backoff.ms=10`: while the local queue is full (a backlog), fetch again soon
///   after it has room rather than after the default second; `fetch.error.backoff.ms=100`.
/// - `max.partition.fetch.bytes` = [`MAX_PARTITION_FETCH_BYTES`]: Nisshi reads up to 10,000
///   records of a partition per fetch and then keeps those within the partition's byte
///   budget; librdkafka's default 1 MiB keeps about 2,000 of our ~450-byte events and throws
///   the rest of the read away.
pub fn apply_fetch_settings(c: &mut ClientConfig, fetch_wait: Duration) -> &mut ClientConfig {
    c.set("fetch.min.bytes", "1")
        .set("fetch.wait.max.ms", fetch_wait.as_millis().to_string())
        .set("fetch.queue.backoff.ms", "10")
        .set("fetch.error.backoff.ms", "100")
        .set(
            "max.partition.fetch.bytes",
            MAX_PARTITION_FETCH_BYTES.to_string(),
        )
}
