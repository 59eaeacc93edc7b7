//! How many events the topic holds: the sum of the high watermarks of its partitions, read from
//! the broker at most once per [`TopicCounts::TTL`] however many pages poll it.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::broker::{Broker, BrokerError, PartitionWatermarks};

/// The watermarks of the topic at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSnapshot {
    /// Every partition's watermarks, by partition number.
    pub partitions: Vec<PartitionWatermarks>,
}

impl TopicSnapshot {
    /// Records ever written to the topic: the sum of the high watermarks.
    pub fn events_received(&self) -> i64 {
        self.partitions.iter().map(|p| p.high).sum()
    }
}

/// The counts as the page, the stream and the JSON show them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TopicFigures {
    /// Records in the topic: the sum of the partitions' high watermarks. Counts what every
    /// replica ever produced and survives restarts.
    pub events_received: i64,
    /// Records this replica had acknowledged since it started.
    pub accepted_by_this_replica: u64,
    /// Per-partition watermarks.
    pub partitions: Vec<PartitionWatermarks>,
    /// Why the broker could not be asked (then the other broker figures are 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

type Reading = Result<Arc<TopicSnapshot>, BrokerError>;

/// A cache of the last reading (success or failure), refreshed by one request at a time.
#[derive(Debug, Default)]
pub struct TopicCounts {
    last: Mutex<Option<(Instant, Reading)>>,
}

impl TopicCounts {
    /// How long a reading is reused.
    pub const TTL: Duration = Duration::from_millis(500);

    /// The current reading, asking `broker` if the cached one is older than [`Self::TTL`].
    /// Concurrent callers wait for the one refresh instead of each asking the broker.
    pub async fn get(&self, broker: &dyn Broker) -> Reading {
        let mut last = self.last.lock().await;
        match last.as_ref() {
            Some((at, reading)) if at.elapsed() < Self::TTL => return reading.clone(),
            _ => {}
        }
        let reading = broker.watermarks().await.map(|mut partitions| {
            partitions.sort_by_key(|p| p.partition);
            Arc::new(TopicSnapshot { partitions })
        });
        *last = Some((Instant::now(), reading.clone()));
        reading
    }

    /// The current reading (see [`Self::get`]) with `accepted_by_this_replica`, as shown.
    pub async fn figures(
        &self,
        broker: &dyn Broker,
        accepted_by_this_replica: u64,
    ) -> TopicFigures {
        match self.get(broker).await {
            Ok(snapshot) => TopicFigures {
                events_received: snapshot.events_received(),
                accepted_by_this_replica,
                partitions: snapshot.partitions.clone(),
                error: None,
            },
            Err(e) => TopicFigures {
                accepted_by_this_replica,
                error: Some(e.to_string()),
                ..TopicFigures::default()
            },
        }
    }
}
