//! The background reader of the consumer's output topics: one rdkafka consumer, outside any
//! consumer group, that is assigned every partition of the three topics from the first message
//! of the last vehicle time-to-live (`INGEST_DASHBOARD_VEHICLE_TTL`), so a restarted ingest
//! rebuilds the state the dashboard keeps, and reads no older history it would forget at once.
//! Messages are decoded and folded into the [`Dashboard`]; undecodable ones are logged and
//! skipped.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use super::feed::Dashboard;
use super::messages::{Incoming, Source};
use crate::broker::BrokerError;
use crate::producer::partition_ids;

/// How long a metadata or watermark request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause before retrying after the broker could not be read.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The output topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputTopics {
    /// Per-vehicle summaries.
    pub summary: String,
    /// Window metrics.
    pub metrics: String,
    /// Sensor histograms.
    pub histograms: String,
}

impl OutputTopics {
    fn all(&self) -> [(&str, Source); 3] {
        [
            (&self.summary, Source::Summary),
            (&self.metrics, Source::Metrics),
            (&self.histograms, Source::Histograms),
        ]
    }

    fn source(&self, topic: &str) -> Option<Source> {
        self.all()
            .into_iter()
            .find_map(|(t, source)| (t == topic).then_some(source))
    }
}

/// Starts the reader of `topics` on `brokers`, reading back `history`, feeding `dashboard`,
/// in a background task that runs until the process ends.
pub fn spawn(brokers: String, topics: OutputTopics, history: Duration, dashboard: Arc<Dashboard>) {
    tokio::spawn(async move {
        let consumer = loop {
            match assigned_consumer(&brokers, &topics, history).await {
                Ok(consumer) => break consumer,
                Err(e) => {
                    tracing::warn!(error = %e, "dashboard: cannot read the output topics yet");
                    dashboard.set_reader_error(Some(e.to_string()));
                    tokio::time::sleep(RETRY_AFTER).await;
                }
            }
        };
        dashboard.set_reader_error(None);
        tracing::info!(
            ?topics,
            history = %humantime::format_duration(history),
            "dashboard: reading the output topics from `history` ago"
        );
        read(&consumer, &topics, &dashboard).await;
    });
}

/// Folds every message of `consumer` into `dashboard`, forever.
async fn read(consumer: &StreamConsumer, topics: &OutputTopics, dashboard: &Dashboard) {
    let mut failing = false;
    loop {
        match consumer.recv().await {
            Ok(message) => {
                if failing {
                    failing = false;
                    dashboard.set_reader_error(None);
                    tracing::info!("dashboard: reading the output topics again");
                }
                let Some(source) = topics.source(message.topic()) else {
                    continue;
                };
                match Incoming::decode(source, message.payload().unwrap_or_default()) {
                    Ok(incoming) => dashboard.apply([incoming], Utc::now()),
                    Err(e) => tracing::warn!(
                        topic = message.topic(),
                        partition = message.partition(),
                        offset = message.offset(),
                        error = %e,
                        "dashboard: skipping an undecodable output message"
                    ),
                }
            }
            Err(e) => {
                let error = BrokerError::new("reading the output topics", &topics.summary, e);
                if !failing {
                    failing = true;
                    tracing::warn!(error = %error, "dashboard: reading failed, retrying");
                }
                dashboard.set_reader_error(Some(error.to_string()));
                tokio::time::sleep(RETRY_AFTER).await;
            }
        }
    }
}

/// A consumer assigned every partition of `topics` at its first message of the last `history`.
async fn assigned_consumer(
    brokers: &str,
    topics: &OutputTopics,
    history: Duration,
) -> Result<StreamConsumer, BrokerError> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("client.id", "fleet-ingest-dashboard")
        // librdkafka refuses `assign` without a group id; the group is never joined and no
        // offset is ever committed to it.
        .set("group.id", "fleet-ingest-dashboard")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .create()
        .map_err(|e| BrokerError::new("creating the dashboard reader", &topics.summary, e))?;
    let names: Vec<String> = topics.all().iter().map(|(t, _)| (*t).to_owned()).collect();
    let since = Utc::now() - TimeDelta::from_std(history).unwrap_or(TimeDelta::MAX);
    let (consumer, assignment) = tokio::task::spawn_blocking(move || {
        start_offsets(&consumer, &names, since).map(|assignment| (consumer, assignment))
    })
    .await
    .map_err(|e| BrokerError::new("reading metadata", &topics.summary, e))??;
    consumer
        .assign(&assignment)
        .map_err(|e| BrokerError::new("assigning partitions", &topics.summary, e))?;
    Ok(consumer)
}

/// Every partition of `topics` at its first message written at or after `since`, or at its
/// end when there is none (blocking librdkafka calls).
fn start_offsets(
    consumer: &StreamConsumer,
    topics: &[String],
    since: DateTime<Utc>,
) -> Result<TopicPartitionList, BrokerError> {
    let mut times = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .map_err(|e| BrokerError::new("reading metadata", topic, e))?;
        let partitions = partition_ids(&metadata, topic)?;
        for partition in partitions {
            times
                .add_partition_offset(topic, partition, Offset::Offset(since.timestamp_millis()))
                .map_err(|e| BrokerError::new("assigning partitions", topic, e))?;
        }
    }
    match consumer.offsets_for_times(times.clone(), METADATA_TIMEOUT) {
        Ok(offsets) => Ok(offsets),
        Err(e) => {
            // A broker without offsets by time: read everything, the dashboard forgets what is
            // too old as it goes.
            tracing::warn!(error = %e, "dashboard: the broker cannot look offsets up by time; reading the output topics from the beginning");
            let mut assignment = TopicPartitionList::new();
            for element in times.elements() {
                let (topic, partition) = (element.topic(), element.partition());
                let (low, _) = consumer
                    .fetch_watermarks(topic, partition, METADATA_TIMEOUT)
                    .map_err(|e| BrokerError::new("reading watermarks", topic, e))?;
                assignment
                    .add_partition_offset(topic, partition, Offset::Offset(low))
                    .map_err(|e| BrokerError::new("assigning partitions", topic, e))?;
            }
            Ok(assignment)
        }
    }
}
