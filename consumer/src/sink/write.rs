//! One transaction of the sink: a batch copied into `diag`, the analytics of the inserted rows
//! and the partitions' next offsets; and the probe that finds the rows PostgreSQL refuses by
//! halving.
//!
//! A batch is first copied straight into `diag` (binary `COPY`): one pass over the rows, and
//! every row is new, so the aggregates count all of them. When that copy is refused (an
//! `event_id` already stored, such as a vehicle's retry, or a value PostgreSQL refuses), the
//! transaction is rolled back and the batch goes the careful way: copied into the staging
//! table and inserted with `ON CONFLICT (event_id) DO NOTHING RETURNING`, which says which
//! rows were new. Either way rows, aggregates and offsets commit together.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;

use super::columns::Columns;
use super::error::{describe, is_data_error};
use super::sql::STAGING_TYPES;
use super::{Conn, PgSettings};
use crate::analytics::{Aggregates, Known, Pruned, as_stored};
use crate::batch::Entry;
use crate::row::DiagRow;

/// The entries of `entries` that the insert returned (by Kafka position), in batch order.
pub(super) fn inserted_entries<'a>(
    entries: &'a [Entry],
    returned: &[(i32, i64)],
) -> Vec<&'a DiagRow> {
    let mut left: HashMap<(i32, i64), usize> = HashMap::with_capacity(returned.len());
    for position in returned {
        *left.entry(*position).or_default() += 1;
    }
    entries
        .iter()
        .filter(|e| {
            let position = (e.row.kafka_partition, e.row.kafka_offset);
            match left.get_mut(&position) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    true
                }
                _ => false,
            }
        })
        .map(|e| &e.row)
        .collect()
}

/// How many batches go through the staging table after a copy straight into `diag` was
/// refused, before the straight copy is tried again.
pub(crate) const STAGED_AFTER_REFUSAL: u32 = 16;

/// How a batch's rows go into `diag`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// One binary `COPY` into `diag`: all rows or none.
    Straight,
    /// A binary `COPY` into the staging table, then `INSERT ... ON CONFLICT DO NOTHING`.
    Staged,
}

/// The rows a batch really inserted, and the topic's watermark after them.
struct Inserted<'a> {
    rows: Vec<&'a DiagRow>,
    watermark: Option<DateTime<Utc>>,
}

/// Writes `entries`, the aggregates of the rows inserted and, when given, `next_offsets` in one
/// transaction: the rows inserted, the aggregates they changed and whether the batch went
/// through the staging table. Tries the straight copy first (see the module's notes) unless
/// one was refused within the last [`STAGED_AFTER_REFUSAL`] batches.
pub(super) async fn write_batch(
    conn: &mut Conn,
    entries: &[Entry],
    next_offsets: Option<&BTreeMap<i32, i64>>,
    settings: &PgSettings,
    known: &mut Known,
    pruned: &mut Pruned,
) -> Result<(u64, Aggregates, bool), tokio_postgres::Error> {
    let mut route = if conn.staged_batches_left > 0 && !entries.is_empty() {
        conn.staged_batches_left -= 1;
        Route::Staged
    } else {
        Route::Straight
    };
    loop {
        let written = write_by(route, conn, entries, next_offsets, settings, known, pruned).await;
        match written {
            Err(e) if route == Route::Straight && is_data_error(&e) => {
                tracing::debug!(error = %describe(&e), rows = entries.len(),
                    "the copy straight into diag was refused; writing the batch through the staging table");
                conn.staged_batches_left = STAGED_AFTER_REFUSAL;
                route = Route::Staged;
            }
            done => {
                return done
                    .map(|(inserted, aggregates)| (inserted, aggregates, route == Route::Staged));
            }
        }
    }
}

/// [`write_batch`] by one route: a failed transaction is rolled back (when it is dropped).
async fn write_by(
    route: Route,
    conn: &mut Conn,
    entries: &[Entry],
    next_offsets: Option<&BTreeMap<i32, i64>>,
    settings: &PgSettings,
    known: &mut Known,
    pruned: &mut Pruned,
) -> Result<(u64, Aggregates), tokio_postgres::Error> {
    let (partitions, offsets): (Vec<i32>, Vec<i64>) = next_offsets
        .into_iter()
        .flatten()
        .map(|(p, o)| (*p, *o))
        .unzip();
    let tx = conn.client.transaction().await?;
    let topic_param = &settings.analytics.topic;
    let inserted = match route {
        _ if entries.is_empty() => Inserted {
            rows: Vec::new(),
            watermark: None,
        },
        Route::Straight => {
            copy_rows(&tx, &conn.copy_straight, entries).await?;
            let newest = entries.iter().map(|e| as_stored(e.row.ts)).max();
            let raised = tx
                .query_one(&conn.analytics.raise_watermark, &[topic_param, &newest])
                .await?;
            Inserted {
                rows: entries.iter().map(|e| &e.row).collect(),
                watermark: raised.try_get(0)?,
            }
        }
        Route::Staged => {
            copy_rows(&tx, &conn.copy_staged, entries).await?;
            let returned = tx.query(&conn.analytics.insert, &[topic_param]).await?;
            let mut positions = Vec::with_capacity(returned.len());
            let mut watermark: Option<DateTime<Utc>> = None;
            for row in &returned {
                positions.push((row.try_get(0)?, row.try_get(1)?));
                watermark = row.try_get(2)?;
            }
            Inserted {
                rows: inserted_entries(entries, &positions),
                watermark,
            }
        }
    };
    let (group, topic) = (&settings.group, &settings.topic);
    let offset_params: [&(dyn ToSql + Sync); 4] = [group, topic, &partitions, &offsets];
    let offsets_upsert = async {
        match next_offsets {
            Some(_) => tx.execute(&conn.upsert, &offset_params).await,
            None => Ok(0),
        }
    };
    let (aggregates, learnt) = match inserted.watermark {
        Some(watermark) => {
            let rows = &inserted.rows;
            let update =
                conn.analytics
                    .update(&tx, rows, watermark, &settings.analytics, known, *pruned);
            futures::try_join!(update, offsets_upsert)?.0
        }
        // Nothing inserted: nothing to count.
        None => {
            offsets_upsert.await?;
            Default::default()
        }
    };
    tx.commit().await?;
    learnt.apply(known, pruned);
    Ok((inserted.rows.len() as u64, aggregates))
}

/// Copies `entries` with `copy` (a prepared binary `COPY ... FROM STDIN` of the staging
/// table's columns, into `diag` or the staging table).
pub(super) async fn copy_rows(
    tx: &tokio_postgres::Transaction<'_>,
    copy: &tokio_postgres::Statement,
    entries: &[Entry],
) -> Result<(), tokio_postgres::Error> {
    let sink = tx.copy_in(copy).await?;
    let writer = BinaryCopyInWriter::new(sink, &STAGING_TYPES);
    let mut writer = std::pin::pin!(writer);
    for Entry { row: r, .. } in entries {
        writer
            .as_mut()
            .write(&[
                &r.timestamp,
                &r.vin,
                &r.make,
                &r.model,
                &r.position_x,
                &r.position_y,
                &r.position_z,
                &r.speed,
                &r.event_id,
                &r.seq,
                &r.ts,
                &r.heading,
                &r.lat,
                &r.lon,
                &r.temperature_c,
                &r.humidity_pct,
                &r.pressure_hpa,
                &r.kafka_partition,
                &r.kafka_offset,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}

/// Finds the rows of `entries` whose own values PostgreSQL refuses by halving: a part that
/// inserts is clean, a refused part of one row is the culprit, a refused larger part is split.
/// Every try runs in a savepoint of one transaction that is rolled back at the end, so a clean
/// part costs one statement however large it is and nothing is kept. A failure that is not
/// the record's (see [`sqlstate::blame`]) ends the search as an error.
pub(super) async fn probe_rows(
    conn: &mut Conn,
    entries: &[Entry],
) -> Result<Vec<(usize, String)>, tokio_postgres::Error> {
    let mut rejected = Vec::new();
    let mut tx = conn.client.transaction().await?;
    // (first index, length) of the parts still to try, in batch order.
    let mut parts = vec![(0, entries.len())];
    while let Some((first, len)) = parts.pop() {
        if len == 0 {
            continue;
        }
        let columns = Columns::new(&entries[first..first + len]);
        let savepoint = tx.savepoint("probe").await?;
        let outcome = savepoint.execute(&conn.insert, &columns.params()).await;
        savepoint.rollback().await?;
        match outcome {
            Ok(_) => {}
            Err(e) if is_data_error(&e) && len == 1 => rejected.push((first, describe(&e))),
            Err(e) if is_data_error(&e) => {
                let half = len / 2;
                parts.push((first + half, len - half));
                parts.push((first, half));
            }
            Err(e) => return Err(e),
        }
    }
    tx.rollback().await?;
    Ok(rejected)
}
#[cfg(test)]
mod tests {
    use super::super::fixtures::entry;
    use super::*;

    #[test]
    fn inserted_rows_are_matched_by_kafka_position_once_each() {
        let mut entries = vec![entry(1), entry(2), entry(3)];
        // The same record twice in one batch: only as often as it was returned.
        entries.push(entries[1].clone());
        let returned = [(1, 103), (1, 102)];
        let rows = inserted_entries(&entries, &returned);
        let offsets: Vec<i64> = rows.iter().map(|r| r.kafka_offset).collect();
        assert_eq!(offsets, vec![102, 103]);
        assert!(inserted_entries(&entries, &[]).is_empty());
    }
}
