//! `fleet verify`: the end-to-end assertions as a command. Sends probe events through ingest,
//! checks that the broker holds each at the partition and offset ingest reported, that each
//! reaches `diag`, and that for every running vehicle the stored `seq`s have no gap up to the
//! last one ingest acknowledged and at least as many rows are stored as were acknowledged (for
//! `--legacy-form` vehicles, whose `seq` ingest assigns, only the latter), in one statement
//! over arrays for the whole fleet. Waits up to `--timeout` for the rows, so it also waits for
//! a consumer backlog to drain. Reports POST-to-row latency. Exit 0 only if everything holds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use fleet_common::wire::{IngestReport, RecordResult, StatsQuery, VehicleReport};
use fleet_common::{EventTime, TelemetryEvent, Vin};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use uuid::Uuid;

use super::Ctx;
use super::launch_fleet;
use crate::docker::Docker;

/// World manufacturer identifier of probe VINs, so probes never mix with simulated vehicles.
const PROBE_WMI: &str = "9FL";

/// One check's outcome.
#[derive(Debug)]
struct Check {
    name: String,
    passed: bool,
    detail: String,
}

/// A probe that ingest acknowledged.
#[derive(Debug)]
struct Sent {
    event_id: Uuid,
    sent_at: DateTime<Utc>,
    partition: i32,
    offset: i64,
}

/// Runs the command; Ok(false) when a check failed. The probes' rows and the vehicles' rows
/// may take `timeout` in all to appear; the registry check has `timeout` of its own.
pub async fn run(ctx: &Ctx, probes: u32, timeout: Duration) -> anyhow::Result<bool> {
    let deadline = Instant::now() + timeout;
    let docker = ctx.docker().await?;
    let status = super::status::collect(ctx).await?;
    let mut checks = vec![Check {
        name: "services ready".into(),
        passed: status.all_ready,
        detail: status
            .services
            .iter()
            .filter(|s| !s.ready)
            .map(|s| format!("{}: {}", s.service, s.detail))
            .collect::<Vec<_>>()
            .join("; "),
    }];
    if !status.all_ready {
        return Ok(report(&checks));
    }
    let host = ctx.host();
    let password = crate::state::postgres_password(&ctx.paths.state)?;
    let pg_addr = SocketAddr::new(host, ctx.config.postgres.host_port);
    let pg = crate::probes::postgres_connect(
        pg_addr,
        &ctx.config.postgres.user,
        &password,
        &ctx.config.postgres.database,
    )
    .await
    .context("connect to PostgreSQL")?;

    // 1. Probe events through ingest, one per request, each answered only after the broker acked.
    let vin = Vin::from_serial(PROBE_WMI, u64::from(std::process::id()));
    let next_seq: i64 = pg
        .query_one(
            "SELECT coalesce(max(seq) + 1, 0) FROM diag WHERE vin = $1",
            &[&vin.as_str()],
        )
        .await
        .context("read the probe vehicle's last seq")?
        .get(0);
    let url = format!("http://{host}:{}/events", ctx.config.ingest.host_port);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()?;
    let mut sent = Vec::new();
    let mut refused = Vec::new();
    for i in 0..probes {
        let event = TelemetryEvent::example(
            Uuid::new_v4(),
            vin.clone(),
            next_seq as u64 + u64::from(i),
            EventTime(Utc::now()),
        );
        let sent_at = Utc::now();
        let response = http.post(&url).json(&event).send().await;
        match response {
            Ok(r) if r.status().is_success() => {
                let answer: IngestReport = r.json().await.context("read ingest's answer")?;
                match answer.results.first() {
                    Some(RecordResult::Ok {
                        partition, offset, ..
                    }) => sent.push(Sent {
                        event_id: event.event_id,
                        sent_at,
                        partition: *partition,
                        offset: *offset,
                    }),
                    other => refused.push(format!("{other:?}")),
                }
            }
            Ok(r) => refused.push(format!(
                "{} {}",
                r.status(),
                r.text().await.unwrap_or_default()
            )),
            Err(e) => refused.push(e.to_string()),
        }
    }
    checks.push(Check {
        name: format!("ingest acknowledged {probes} probe events"),
        passed: refused.is_empty(),
        detail: refused.first().cloned().unwrap_or_default(),
    });

    // 2. The broker holds each probe where ingest said.
    let bootstrap = SocketAddr::new(host, ctx.config.broker.host_port).to_string();
    let topic = ctx.config.broker.topic.clone();
    let expected: Vec<(i32, i64, Uuid)> = sent
        .iter()
        .map(|s| (s.partition, s.offset, s.event_id))
        .collect();
    let in_kafka =
        tokio::task::spawn_blocking(move || read_back(&bootstrap, &topic, &expected)).await?;
    checks.push(Check {
        name: "each acknowledged probe is in Kafka at its reported offset".into(),
        passed: in_kafka.is_ok(),
        detail: in_kafka.err().unwrap_or_default(),
    });

    // 3. Each probe reaches diag; latency from POST to row.
    let ids: Vec<Uuid> = sent.iter().map(|s| s.event_id).collect();
    let rows = loop {
        let rows = pg
            .query(
                "SELECT event_id, ingested_at FROM diag WHERE event_id = ANY($1)",
                &[&ids],
            )
            .await
            .context("look up probe rows")?;
        if rows.len() == ids.len() || Instant::now() >= deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut latencies: Vec<f64> = rows
        .iter()
        .filter_map(|r| {
            let id: Uuid = r.get(0);
            let stored: DateTime<Utc> = r.get(1);
            let s = sent.iter().find(|s| s.event_id == id)?;
            Some((stored - s.sent_at).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    checks.push(Check {
        name: "each acknowledged probe is a row of diag".into(),
        passed: rows.len() == ids.len(),
        detail: format!(
            "{}/{} stored; POST-to-row latency p50 {:.0} ms, p99 {:.0} ms",
            rows.len(),
            ids.len(),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99)
        ),
    });

    // 4. Every vehicle: no seq gap up to its last acknowledged event.
    checks.push(vehicle_gaps(ctx, &docker, &pg, deadline).await?);

    // 5. The registry lists every launched vehicle as live.
    let registered = super::members::vehicles_registered(ctx, &docker, timeout).await;
    checks.push(Check {
        name: "live vehicles in the registry equal the vehicles launched".into(),
        passed: matches!(registered, Ok((launched, live)) if launched == live),
        detail: match registered {
            Ok((launched, live)) => format!("{live} live in ZooKeeper, {launched} launched"),
            Err(e) => format!("{e:#}"),
        },
    });
    Ok(report(&checks))
}

/// Reads each (partition, offset) back from the broker and compares the event id.
fn read_back(bootstrap: &str, topic: &str, expected: &[(i32, i64, Uuid)]) -> Result<(), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "fleet-verify")
        .set("enable.auto.commit", "false")
        .create()
        .map_err(|e| format!("Kafka client: {e}"))?;
    for (partition, offset, id) in expected {
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, *partition, Offset::Offset(*offset))
            .map_err(|e| e.to_string())?;
        consumer.assign(&assignment).map_err(|e| e.to_string())?;
        let message = consumer
            .poll(Duration::from_secs(10))
            .ok_or_else(|| format!("nothing at {topic}/{partition}@{offset}"))?
            .map_err(|e| format!("read {topic}/{partition}@{offset}: {e}"))?;
        let event: TelemetryEvent =
            serde_json::from_slice(message.payload().unwrap_or_default())
                .map_err(|e| format!("{topic}/{partition}@{offset} is not an event: {e}"))?;
        if message.offset() != *offset || event.event_id != *id {
            return Err(format!(
                "{topic}/{partition}@{offset} holds {} at offset {}, expected {id}",
                event.event_id,
                message.offset()
            ));
        }
    }
    Ok(())
}

/// The vehicles' acknowledged events, as the arrays of [`STORED_SQL`]: per vehicle its VIN,
/// its highest acknowledged `seq` (`None` for `--legacy-form` vehicles, whose `seq` ingest
/// assigns), how many events ingest acknowledged, and since when its process runs (rows with
/// an earlier `ts` belong to an earlier run with the same VINs and are not counted). Vehicles
/// with nothing acknowledged have nothing to check and are left out.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    vins: Vec<String>,
    last_seqs: Vec<Option<i64>>,
    acknowledged: Vec<i64>,
    since: Vec<Option<DateTime<Utc>>>,
}

impl Expected {
    /// From `(vehicle, its process's start)` pairs.
    fn of<'a>(
        vehicles: impl IntoIterator<Item = (&'a VehicleReport, Option<DateTime<Utc>>)>,
    ) -> Self {
        let mut expected = Self::default();
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (v, since) in vehicles
            .into_iter()
            .filter(|(v, _)| v.books.acknowledged > 0)
        {
            expected.vins.push(v.vin.clone());
            expected.last_seqs.push(v.last_acked_seq.map(to_i64));
            expected.acknowledged.push(to_i64(v.books.acknowledged));
            expected.since.push(since);
        }
        expected
    }

    /// Vehicles whose `seq` fleet knows (the gap check applies to them).
    fn sequenced(&self) -> usize {
        self.last_seqs.iter().filter(|s| s.is_some()).count()
    }

    fn total_acknowledged(&self) -> i64 {
        self.acknowledged.iter().sum()
    }
}

/// One statement over the arrays of [`Expected`] (`$1` VINs, `$2` last acknowledged seqs,
/// `$3` acknowledged counts, `$4` starts) that compares every vehicle with its rows of this run
/// in `diag` (`ts` at or after its start): a vehicle
/// fails when fewer distinct `seq`s in `0..=last` are stored than `last + 1` (a gap), or when
/// it has fewer rows than ingest acknowledged. Answers one row: failing vehicles, rows stored
/// for these vehicles, and the first 5 failures described.
const STORED_SQL: &str = "
WITH expected AS (
    SELECT vin::bpchar AS vin, last_seq, acked, coalesce(since, '-infinity') AS since
      FROM unnest($1::text[], $2::int8[], $3::int8[], $4::timestamptz[])
           AS t(vin, last_seq, acked, since)
), stored AS (
    SELECT d.vin, count(*) AS rows,
           count(DISTINCT d.seq) FILTER (WHERE d.seq BETWEEN 0 AND e.last_seq) AS below
      FROM diag d JOIN expected e ON d.vin = e.vin AND d.ts >= e.since
     GROUP BY d.vin
), compared AS (
    SELECT e.vin, e.last_seq, e.acked,
           coalesce(s.rows, 0) AS rows, coalesce(s.below, 0) AS below,
           (e.last_seq IS NOT NULL AND coalesce(s.below, 0) <> e.last_seq + 1)
               OR coalesce(s.rows, 0) < e.acked AS failed
      FROM expected e LEFT JOIN stored s ON s.vin = e.vin
)
SELECT count(*) FILTER (WHERE failed),
       coalesce(sum(rows), 0)::int8,
       coalesce((array_agg(
           format('%s: %s rows for %s acknowledged, %s', rtrim(vin), rows, acked,
                  CASE WHEN last_seq IS NULL THEN 'seq assigned by ingest'
                       ELSE format('%s of seq 0..=%s', below, last_seq) END)
           ORDER BY vin) FILTER (WHERE failed))[1:5], '{}')
  FROM compared";

/// What [`STORED_SQL`] answered.
#[derive(Debug, PartialEq)]
struct Stored {
    failing: i64,
    rows: i64,
    first_failures: Vec<String>,
}

/// Every acknowledged event of every running vehicle is in `diag`: waits until [`STORED_SQL`]
/// finds no failing vehicle or `deadline` passes (rows trail acknowledgements by the consumer's
/// backlog).
async fn vehicle_gaps(
    ctx: &Ctx,
    docker: &Docker,
    pg: &tokio_postgres::Client,
    deadline: Instant,
) -> anyhow::Result<Check> {
    let _ = docker;
    let mut containers = Vec::new();
    for (name, books) in launch_fleet::all_books(ctx, StatsQuery::EVERY_VEHICLE).await? {
        containers.push(books.with_context(|| format!("stats of {name}"))?);
    }
    let expected = Expected::of(
        containers
            .iter()
            .flat_map(|b| b.vehicles.iter().map(|v| (v, b.started_at))),
    );
    let started = Instant::now();
    loop {
        let row = pg
            .query_one(
                STORED_SQL,
                &[
                    &expected.vins,
                    &expected.last_seqs,
                    &expected.acknowledged,
                    &expected.since,
                ],
            )
            .await
            .context("compare the vehicles' acknowledged events with diag")?;
        let stored = Stored {
            failing: row.get(0),
            rows: row.get(1),
            first_failures: row.get(2),
        };
        tracing::debug!(?stored, "acknowledged events in diag");
        if stored.failing == 0 || Instant::now() >= deadline {
            return Ok(stored_check(&expected, &stored, started.elapsed()));
        }
        tokio::time::sleep(STORED_POLL).await;
    }
}

/// How often [`STORED_SQL`] runs while rows are missing.
const STORED_POLL: Duration = Duration::from_secs(1);

/// The check's verdict on what [`STORED_SQL`] answered after `waited`.
fn stored_check(expected: &Expected, stored: &Stored, waited: Duration) -> Check {
    let vehicles = expected.vins.len();
    let legacy = vehicles - expected.sequenced();
    let mut name = format!(
        "every acknowledged event stored, no seq gap below the last acknowledged one \
         ({} vehicles",
        expected.sequenced()
    );
    if legacy > 0 {
        name.push_str(&format!(
            "; {legacy} legacy-form vehicles: rows >= acknowledged"
        ));
    }
    name.push(')');
    let mut detail = format!(
        "{} acknowledged, {} rows of these vehicles' runs in diag, after {:.1} s",
        expected.total_acknowledged(),
        stored.rows,
        waited.as_secs_f64()
    );
    if stored.failing > 0 {
        detail.push_str(&format!(
            "; {} vehicles short: {}",
            stored.failing,
            stored.first_failures.join("; ")
        ));
    }
    Check {
        name,
        passed: stored.failing == 0,
        detail,
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Prints the checks; true when all passed.
fn report(checks: &[Check]) -> bool {
    for check in checks {
        println!(
            "{} {}{}",
            if check.passed { "PASS" } else { "FAIL" },
            check.name,
            if check.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", check.detail)
            }
        );
    }
    let passed = checks.iter().all(|c| c.passed);
    println!(
        "{}",
        if passed {
            "verify: all checks passed"
        } else {
            "verify: FAILED"
        }
    );
    passed
}

#[cfg(test)]
mod tests;
