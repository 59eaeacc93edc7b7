//! The PostgreSQL side of the benchmark: how many records the consumer has stored (the sum of
//! its next offsets in `consumer_offsets`, written in the same transaction as the rows), the
//! wait for a backlog to drain, and the POST-to-row tracker, which polls `diag` for sampled
//! event ids and times when each became visible.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tokio::sync::mpsc;
use tokio_postgres::Client;
use uuid::Uuid;

use ingest_bench::load::Sample;

/// Records the consumer group has stored for `topic`: the sum of its next offsets.
pub async fn stored(pg: &Client, group: &str, topic: &str) -> anyhow::Result<i64> {
    let row = pg
        .query_one(
            "SELECT coalesce(sum(next_offset), 0)::int8 FROM consumer_offsets \
             WHERE consumer_group = $1 AND topic = $2",
            &[&group, &topic],
        )
        .await
        .context("reading consumer_offsets")?;
    Ok(row.get(0))
}

/// Waits until the consumer stored everything up to the topic's end offsets `ends` (their sum);
/// the time it took.
pub async fn drain(
    pg: &Client,
    group: &str,
    topic: &str,
    ends: i64,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut last_note = Instant::now();
    loop {
        let stored = stored(pg, group, topic).await?;
        if stored >= ends {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!(
                "the consumer did not catch up within {}: {} of {ends} records stored",
                humantime::format_duration(timeout),
                stored
            );
        }
        if last_note.elapsed() > Duration::from_secs(10) {
            eprintln!("e2e-bench: draining, {} records behind", ends - stored);
            last_note = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// POST-to-row latencies the tracker saw.
#[derive(Debug, Default)]
pub struct Tracked {
    /// From sending the request to the row being visible in `diag`, sorted.
    pub latencies: Vec<Duration>,
    /// Samples whose row never appeared before the tracker was stopped.
    pub missing: usize,
}

/// Polls `diag` every `every` for the sampled events not yet seen; stops when `samples` is
/// closed and every sample was seen, or `grace` after it closed.
pub async fn track(
    pg: Arc<Client>,
    mut samples: mpsc::UnboundedReceiver<Sample>,
    every: Duration,
    grace: Duration,
) -> anyhow::Result<Tracked> {
    let mut pending: HashMap<Uuid, Instant> = HashMap::new();
    let mut tracked = Tracked::default();
    let mut closed_at: Option<Instant> = None;
    let statement = pg
        .prepare("SELECT event_id FROM diag WHERE event_id = ANY($1)")
        .await
        .context("preparing the row lookup")?;
    loop {
        loop {
            match samples.try_recv() {
                Ok(s) => {
                    pending.insert(s.event_id, s.sent_at);
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    closed_at.get_or_insert_with(Instant::now);
                    break;
                }
            }
        }
        if !pending.is_empty() {
            let ids: Vec<Uuid> = pending.keys().copied().collect();
            let rows = pg
                .query(&statement, &[&ids])
                .await
                .context("looking up sampled rows in diag")?;
            let seen = Instant::now();
            for row in rows {
                let id: Uuid = row.get(0);
                if let Some(sent_at) = pending.remove(&id) {
                    tracked.latencies.push(seen - sent_at);
                }
            }
        }
        if let Some(closed) = closed_at
            && (pending.is_empty() || closed.elapsed() > grace)
        {
            break;
        }
        tokio::time::sleep(every).await;
    }
    tracked.missing = pending.len();
    tracked.latencies.sort();
    Ok(tracked)
}
