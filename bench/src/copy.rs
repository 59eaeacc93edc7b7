//! The physical limit: the same rows written with one binary `COPY ... FROM STDIN` into a
//! scratch table shaped like `diag` (same columns, defaults, primary key, unique `event_id`
//! and indexes), on the same server.

use std::pin::pin;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};

use crate::events::Events;

/// The scratch table.
pub const SCRATCH: &str = "sink_bench_copy";

/// The columns the consumer writes (the rest take their defaults), in order.
use fleet_common::schema::DIAG_WRITTEN_COLUMNS as COLUMNS;

/// The binary types of [`COLUMNS`].
const TYPES: [Type; 19] = [
    Type::FLOAT8,
    Type::BPCHAR,
    Type::VARCHAR,
    Type::VARCHAR,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::UUID,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::INT4,
    Type::INT8,
];

/// (Re)creates the empty scratch table: `diag`'s columns, defaults, constraints and indexes,
/// with an identity of its own for `id` (`LIKE ... INCLUDING ALL` copies the identity).
pub async fn create_scratch(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {SCRATCH};
             CREATE TABLE {SCRATCH} (LIKE diag INCLUDING ALL);"
        ))
        .await
        .with_context(|| format!("creating the scratch table {SCRATCH}"))
}

/// Drops the scratch table.
pub async fn drop_scratch(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {SCRATCH}"))
        .await
        .with_context(|| format!("dropping the scratch table {SCRATCH}"))
}

/// Copies every event as the row the consumer would store (at its Kafka position) into the
/// scratch table in one `COPY (FORMAT binary)`; returns the time it took.
pub async fn copy_rows(
    client: &Client,
    events: &Events,
    positions: &[(i32, i64)],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let sink = client
        .copy_in(&format!(
            "COPY {SCRATCH} ({COLUMNS}) FROM STDIN (FORMAT binary)"
        ))
        .await
        .context("starting COPY")?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &TYPES));
    for (i, &(partition, offset)) in (0..events.len()).zip(positions) {
        let e = events.event(i);
        let sensors = e.sensors;
        let row: [&(dyn ToSql + Sync); 19] = [
            &e.ts.epoch_seconds(),
            &e.vin.as_str(),
            &e.make,
            &e.model,
            &e.position.x,
            &e.position.y,
            &e.position.z,
            &e.speed,
            &e.event_id,
            &(e.seq as i64),
            &e.ts.0,
            &e.heading,
            &e.position.lat,
            &e.position.lon,
            &sensors.map(|s| s.temperature_c),
            &sensors.map(|s| s.humidity_pct),
            &sensors.map(|s| s.pressure_hpa),
            &partition,
            &offset,
        ];
        writer
            .as_mut()
            .write(&row)
            .await
            .with_context(|| format!("copying row {i}"))?;
    }
    let rows = writer.finish().await.context("finishing COPY")?;
    anyhow::ensure!(
        rows == events.len(),
        "COPY stored {rows} rows of {}",
        events.len()
    );
    Ok(started.elapsed())
}
