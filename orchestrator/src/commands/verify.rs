//! `fleet verify`: the end-to-end assertions as a command. Sends probe events through ingest,
//! checks that the broker holds each at the partition and offset ingest reported, that each
//! reaches `diag`, and that for every running vehicle the stored `seq`s have no gap up to the
//! last one ingest acknowledged (for `--legacy-form` vehicles, whose `seq` ingest assigns: that
//! it stored at least as many rows as were acknowledged). Reports POST-to-row latency. Exit 0 only if everything holds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use fleet_common::{EventTime, TelemetryEvent, Vin};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use serde::Deserialize;
use uuid::Uuid;

use super::Ctx;
use crate::docker::Docker;
use crate::engine;
use crate::plan::{VEHICLE_PORT, VEHICLE_SERVICE};

/// World manufacturer identifier of probe VINs, so probes never mix with simulated vehicles.
const PROBE_WMI: &str = "9FL";

/// One check's outcome.
#[derive(Debug)]
struct Check {
    name: String,
    passed: bool,
    detail: String,
}

#[derive(Debug, Deserialize)]
struct IngestAnswer {
    results: Vec<IngestResult>,
}

#[derive(Debug, Deserialize)]
struct IngestResult {
    status: String,
    partition: Option<i32>,
    offset: Option<i64>,
}

/// A probe that ingest acknowledged.
#[derive(Debug)]
struct Sent {
    event_id: Uuid,
    sent_at: DateTime<Utc>,
    partition: i32,
    offset: i64,
}

/// Runs the command; Ok(false) when a check failed.
pub async fn run(ctx: &Ctx, probes: u32, timeout: Duration) -> anyhow::Result<bool> {
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
    let host = engine::connect_host(&ctx.config.stack.bind_address);
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
                let answer: IngestAnswer = r.json().await.context("read ingest's answer")?;
                match answer.results.first() {
                    Some(IngestResult {
                        status,
                        partition: Some(partition),
                        offset: Some(offset),
                    }) if status == "ok" => sent.push(Sent {
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
    let started = Instant::now();
    let rows = loop {
        let rows = pg
            .query(
                "SELECT event_id, ingested_at FROM diag WHERE event_id = ANY($1)",
                &[&ids],
            )
            .await
            .context("look up probe rows")?;
        if rows.len() == ids.len() || started.elapsed() > timeout {
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
    checks.push(vehicle_gaps(ctx, &docker, &pg, host, timeout).await?);

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

async fn vehicle_gaps(
    ctx: &Ctx,
    docker: &Docker,
    pg: &tokio_postgres::Client,
    host: std::net::IpAddr,
    timeout: Duration,
) -> anyhow::Result<Check> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let mut acked: Vec<(String, i64)> = Vec::new();
    let mut unsequenced: Vec<(String, i64)> = Vec::new();
    for container in docker
        .list_stack_containers(ctx.stack(), Some(VEHICLE_SERVICE))
        .await?
    {
        let Some(port) = container
            .ports
            .get(&VEHICLE_PORT)
            .filter(|_| container.is_running())
        else {
            continue;
        };
        let vehicles = crate::probes::vehicle_stats(&http, SocketAddr::new(host, *port))
            .await
            .with_context(|| format!("stats of {}", container.name))?;
        for v in vehicles {
            match v.last_acked_seq {
                Some(last) => acked.push((v.vin, last)),
                // `--legacy-form` vehicles: ingest assigns seq, so only counts can be compared.
                None if v.acknowledged > 0 => {
                    unsequenced.push((v.vin, i64::try_from(v.acknowledged).unwrap_or(i64::MAX)))
                }
                None => {}
            }
        }
    }
    let vins: Vec<&str> = acked.iter().map(|(v, _)| v.as_str()).collect();
    let legacy_vins: Vec<&str> = unsequenced.iter().map(|(v, _)| v.as_str()).collect();
    let started = Instant::now();
    loop {
        // Rows may trail the acknowledgement by a batch: wait for them within the timeout.
        let rows = pg
            .query(
                "SELECT vin::text, count(DISTINCT seq) FILTER (WHERE seq <= t.last), min(seq)
                   FROM diag JOIN unnest($1::text[], $2::int8[]) AS t(v, last) ON diag.vin = t.v
                  GROUP BY vin",
                &[&vins, &acked.iter().map(|(_, s)| *s).collect::<Vec<i64>>()],
            )
            .await
            .context("count stored seqs per vehicle")?;
        let mut gaps = Vec::new();
        for (vin, last) in &acked {
            let row = rows.iter().find(|r| r.get::<_, String>(0) == *vin);
            let stored: i64 = row.map(|r| r.get(1)).unwrap_or(0);
            if stored != last + 1 {
                gaps.push(format!("{vin}: {stored} of seq 0..={last} stored"));
            }
        }
        if !unsequenced.is_empty() {
            let rows = pg
                .query(
                    "SELECT vin::text, count(*) FROM diag WHERE vin = ANY($1::text[]) GROUP BY vin",
                    &[&legacy_vins],
                )
                .await
                .context("count stored rows per legacy vehicle")?;
            for (vin, acknowledged) in &unsequenced {
                let row = rows.iter().find(|r| r.get::<_, String>(0) == *vin);
                let stored: i64 = row.map(|r| r.get(1)).unwrap_or(0);
                if stored < *acknowledged {
                    gaps.push(format!(
                        "{vin}: {stored} rows stored, {acknowledged} acknowledged"
                    ));
                }
            }
        }
        if gaps.is_empty() || started.elapsed() > timeout {
            return Ok(Check {
                name: if unsequenced.is_empty() {
                    format!(
                        "no seq gap below the last acknowledged event ({} vehicles)",
                        acked.len()
                    )
                } else {
                    format!(
                        "no seq gap below the last acknowledged event ({} vehicles), \
                         rows >= acknowledged ({} legacy-form vehicles)",
                        acked.len(),
                        unsequenced.len()
                    )
                },
                passed: gaps.is_empty(),
                detail: gaps.into_iter().take(5).collect::<Vec<_>>().join("; "),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
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
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_ranks() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn report_fails_on_any_failed_check() {
        let ok = Check {
            name: "a".into(),
            passed: true,
            detail: String::new(),
        };
        let bad = Check {
            name: "b".into(),
            passed: false,
            detail: "x".into(),
        };
        assert!(report(&[ok]));
        let ok = Check {
            name: "a".into(),
            passed: true,
            detail: String::new(),
        };
        assert!(!report(&[ok, bad]));
    }
}
