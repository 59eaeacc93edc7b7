//! The read limit: a bare librdkafka consumer with the consumer's fetch settings reads the
//! backlog again (no decoding, no writes), so the consumer's rate can be set against what one
//! reader pulls out of the broker.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fleet_common::fetch::apply_fetch_settings;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

/// What the bare reader did.
pub struct Read {
    /// Records read.
    pub records: u64,
    /// Payload bytes read.
    pub bytes: u64,
    /// From the first record to the last.
    pub elapsed: Duration,
}

/// Reads `topic` from `from` up to `to` (next offsets by partition) with one consumer that
/// fetches as fleet's consumer does (`fetch_wait`), commits nothing and joins no group.
pub async fn backlog(
    bootstrap: &str,
    topic: &str,
    from: &BTreeMap<i32, i64>,
    to: &BTreeMap<i32, i64>,
    fetch_wait: Duration,
    timeout: Duration,
) -> anyhow::Result<Read> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("client.id", "sink-bench-read")
        .set("group.id", "sink-bench-read")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false");
    apply_fetch_settings(&mut config, fetch_wait);
    let consumer: BaseConsumer = config.create().context("creating the bare reader")?;
    let mut tpl = TopicPartitionList::new();
    let mut left: BTreeMap<i32, i64> = BTreeMap::new();
    for (&partition, &end) in to {
        let start = from.get(&partition).copied().unwrap_or(0);
        if end > start {
            tpl.add_partition_offset(topic, partition, Offset::Offset(start))?;
            left.insert(partition, end);
        }
    }
    consumer
        .assign(&tpl)
        .context("assigning the backlog's partitions")?;
    tokio::task::spawn_blocking(move || {
        let (mut records, mut bytes) = (0u64, 0u64);
        let mut first: Option<Instant> = None;
        let started = Instant::now();
        while !left.is_empty() {
            if started.elapsed() > timeout {
                bail!("the bare reader did not reach the end in {timeout:?}: still {left:?}");
            }
            let Some(message) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            let message = message.context("reading the backlog")?;
            first.get_or_insert_with(Instant::now);
            records += 1;
            bytes += message.payload_len() as u64;
            let partition = message.partition();
            if left
                .get(&partition)
                .is_some_and(|&end| message.offset() + 1 >= end)
            {
                left.remove(&partition);
            }
        }
        Ok(Read {
            records,
            bytes,
            elapsed: first.map_or(Duration::ZERO, |f| f.elapsed()),
        })
    })
    .await
    .context("reader task")?
}
