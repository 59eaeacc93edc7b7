//! PostgreSQL writes: a check of the schema at connect, one transaction per batch or part of a
//! batch (rows copied into a staging table with a binary `COPY`, then inserted from there with
//! `ON CONFLICT (event_id) DO NOTHING`, which returns the rows it really inserted; then, sent at once, the analytics of those rows and, with the batch's last part,
//! the partitions' next offsets), the stored offsets to resume from, and the probe that finds
//! the rows PostgreSQL refuses by halving (a few statements, not three round trips per row).
//!
//! Every statement has its own time limit on the server (`statement_timeout`); a statement
//! that runs out is cancelled with SQLSTATE 57014, which [`SinkError::is_timeout`] reports so
//! the caller can split the batch.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};
use uuid::Uuid;

use crate::analytics::{Aggregates, AnalyticsSettings, Known, Pruned, Statements};
use crate::batch::Entry;
use crate::row::DiagRow;
use crate::sqlstate::{self, Blame};

const INSERT_DIAG: &str = r#"
INSERT INTO diag ("timestamp", vin, make, model, position_x, position_y, position_z, speed,
                  event_id, seq, ts, heading, lat, lon, temperature_c, humidity_pct,
                  pressure_hpa, kafka_partition, kafka_offset)
SELECT * FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::float8[],
                     $6::float8[], $7::float8[], $8::float8[], $9::uuid[], $10::int8[],
                     $11::timestamptz[], $12::float8[], $13::float8[], $14::float8[],
                     $15::float8[], $16::float8[], $17::float8[], $18::int4[], $19::int8[])
ON CONFLICT (event_id) DO NOTHING
"#;

/// The columns a batch gives `diag`, in the order of the staging table and of the copy.
use fleet_common::schema::DIAG_WRITTEN_COLUMNS as DIAG_COLUMNS;

/// The connection's staging table: a batch's rows are copied into it (binary `COPY`) and
/// inserted into `diag` from there by one statement; emptied at every commit, and rolled back
/// with a failed transaction.
const CREATE_STAGING: &str = r#"
CREATE TEMP TABLE IF NOT EXISTS diag_staging (
    "timestamp" float8, vin text, make text, model text, position_x float8, position_y float8,
    position_z float8, speed float8, event_id uuid, seq int8, ts timestamptz, heading float8,
    lat float8, lon float8, temperature_c float8, humidity_pct float8, pressure_hpa float8,
    kafka_partition int4, kafka_offset int8
) ON COMMIT DELETE ROWS
"#;

/// The types of the staging table's columns, in order (those of [`Columns::params`]).
const STAGING_TYPES: [Type; 19] = [
    Type::FLOAT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
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

/// The copy of a batch's rows into the staging table.
const COPY_STAGING: &str = "COPY diag_staging FROM STDIN (FORMAT binary)";

/// The rows of the staging table into `diag`, each event once (a replay inserts nothing).
fn insert_from_staging() -> String {
    format!(
        "INSERT INTO diag ({DIAG_COLUMNS})\nSELECT {DIAG_COLUMNS} FROM diag_staging\n\
         ON CONFLICT (event_id) DO NOTHING"
    )
}

const UPSERT_OFFSETS: &str = r#"
INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset, updated_at)
SELECT $1, $2, p, o, now() FROM unnest($3::int4[], $4::int8[]) AS t(p, o)
ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
   SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset),
       updated_at = now()
"#;

const SELECT_OFFSETS: &str = r#"
SELECT kafka_partition, next_offset FROM consumer_offsets
 WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = ANY($3::int4[])
"#;

/// What went wrong talking to PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// No connection could be opened.
    #[error("connecting to PostgreSQL at {target}: {}", describe(source))]
    Connect {
        /// `host:port/database`.
        target: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The schema's tables are missing (fleet applies the schema at launch) or could not be
    /// looked up.
    #[error("checking the schema in PostgreSQL at {target}: {}", describe(source))]
    Schema {
        /// `host:port/database`.
        target: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The schema's tables are missing: fleet applies the schema at launch.
    #[error(
        "PostgreSQL at {target} has no table diag or consumer_offsets: the schema is applied by `fleet launch-infra`"
    )]
    MissingTables {
        /// `host:port/database`.
        target: String,
    },
    /// An operation took too long; the connection was dropped.
    #[error("{operation} on PostgreSQL at {target}: no answer within {after:?}")]
    Timeout {
        /// What was being done.
        operation: &'static str,
        /// `host:port/database`.
        target: String,
        /// The time limit.
        after: Duration,
    },
    /// A statement failed for a reason other than one record's content (connection lost,
    /// server shutting down, out of ids, disk full, statement timeout, permissions, ...).
    /// Worth retrying after a pause; never a reason to dead-letter anything.
    #[error("{operation} on PostgreSQL at {target}: {}", describe(source))]
    Query {
        /// What was being done.
        operation: &'static str,
        /// `host:port/database`.
        target: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// PostgreSQL refused a record's value (SQLSTATE class 22 or 23, see [`sqlstate::blame`]);
    /// retrying the same rows fails again.
    #[error(
        "{operation} on PostgreSQL at {target}: data refused: {}",
        describe(source)
    )]
    Rejected {
        /// What was being done.
        operation: &'static str,
        /// `host:port/database`.
        target: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
}

impl SinkError {
    /// True when PostgreSQL refused the data itself rather than failing to take it.
    pub fn is_rejection(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }

    /// True when the work took longer than allowed: the server cancelled a statement
    /// (`statement_timeout`) or did not answer in time. A smaller part may fit.
    pub fn is_timeout(&self) -> bool {
        match self {
            Self::Timeout { .. } => true,
            Self::Query { source, .. } => sqlstate::is_statement_timeout(source),
            _ => false,
        }
    }
}

/// The outcome of a committed batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Rows really inserted (replayed events are skipped by `ON CONFLICT`).
    pub inserted: u64,
    /// Rows offered.
    pub rows: u64,
    /// The aggregates the inserted rows changed, as committed.
    pub aggregates: Aggregates,
}

/// Where batches are stored. A trait so the flush logic can be tested with a fake.
pub trait Sink {
    /// Writes `entries`, the aggregates of the rows inserted and, when given, the partitions'
    /// next offsets, in one transaction.
    fn write(
        &mut self,
        entries: &[Entry],
        next_offsets: Option<&BTreeMap<i32, i64>>,
    ) -> impl Future<Output = Result<Written, SinkError>> + Send;

    /// Finds the rows PostgreSQL refuses for their own values (nothing is kept) and returns
    /// their indexes with its reason. A server-side failure on the way is an error, never a
    /// refused row.
    fn find_rejected(
        &mut self,
        entries: &[Entry],
    ) -> impl Future<Output = Result<Vec<(usize, String)>, SinkError>> + Send;
}

/// Where PostgreSQL is and what this consumer's offsets are keyed by.
#[derive(Debug, Clone)]
pub struct PgSettings {
    /// Connection parameters.
    pub config: tokio_postgres::Config,
    /// `host:port/database`, for messages.
    pub target: String,
    /// Consumer group (first key of `consumer_offsets`).
    pub group: String,
    /// Topic (second key of `consumer_offsets`).
    pub topic: String,
    /// Limit of a connect and of every statement (`statement_timeout`); a transaction that
    /// does not finish within [`TRANSACTION_LIMIT_STATEMENTS`] times this is given up too
    /// (a connection that stopped answering).
    pub timeout: Duration,
    /// What the aggregates are built with.
    pub analytics: AnalyticsSettings,
}

struct Conn {
    client: Client,
    insert: Statement,
    upsert: Statement,
    analytics: Statements,
    driver: JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// The PostgreSQL sink. Connects lazily and again after any failure that may have broken the
/// connection; the schema is applied on every new connection.
pub struct PgSink {
    settings: PgSettings,
    conn: Option<Conn>,
    /// Rows the aggregate tables are known to hold (forgotten on every new connection).
    known: Known,
    /// Where `window_vehicle_minutes` was last pruned.
    pruned: Pruned,
}

/// The batch's rows as one array per `diag` column, the parameters of the `unnest` insert.
#[derive(Debug, Default, PartialEq)]
pub struct Columns {
    timestamp: Vec<f64>,
    vin: Vec<String>,
    make: Vec<String>,
    model: Vec<String>,
    position_x: Vec<f64>,
    position_y: Vec<f64>,
    position_z: Vec<f64>,
    speed: Vec<f64>,
    event_id: Vec<Uuid>,
    seq: Vec<i64>,
    ts: Vec<DateTime<Utc>>,
    heading: Vec<f64>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    temperature_c: Vec<Option<f64>>,
    humidity_pct: Vec<Option<f64>>,
    pressure_hpa: Vec<Option<f64>>,
    kafka_partition: Vec<i32>,
    kafka_offset: Vec<i64>,
}

impl Columns {
    /// Splits rows into columns.
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Self {
        let mut c = Self::default();
        for Entry { row: r, .. } in entries {
            c.timestamp.push(r.timestamp);
            c.vin.push(r.vin.clone());
            c.make.push(r.make.clone());
            c.model.push(r.model.clone());
            c.position_x.push(r.position_x);
            c.position_y.push(r.position_y);
            c.position_z.push(r.position_z);
            c.speed.push(r.speed);
            c.event_id.push(r.event_id);
            c.seq.push(r.seq);
            c.ts.push(r.ts);
            c.heading.push(r.heading);
            c.lat.push(r.lat);
            c.lon.push(r.lon);
            c.temperature_c.push(r.temperature_c);
            c.humidity_pct.push(r.humidity_pct);
            c.pressure_hpa.push(r.pressure_hpa);
            c.kafka_partition.push(r.kafka_partition);
            c.kafka_offset.push(r.kafka_offset);
        }
        c
    }

    /// The parameters `$1..$19` of the insert, in column order.
    pub fn params(&self) -> [&(dyn ToSql + Sync); 19] {
        [
            &self.timestamp,
            &self.vin,
            &self.make,
            &self.model,
            &self.position_x,
            &self.position_y,
            &self.position_z,
            &self.speed,
            &self.event_id,
            &self.seq,
            &self.ts,
            &self.heading,
            &self.lat,
            &self.lon,
            &self.temperature_c,
            &self.humidity_pct,
            &self.pressure_hpa,
            &self.kafka_partition,
            &self.kafka_offset,
        ]
    }
}

/// A transaction is given up on the client after this many statement time limits: the
/// server cancels slow statements itself, so only a connection that stopped answering gets
/// here.
pub const TRANSACTION_LIMIT_STATEMENTS: u32 = 4;

/// True when one record's value is to blame for `e` (see [`sqlstate::blame`]).
fn is_data_error(e: &tokio_postgres::Error) -> bool {
    sqlstate::blame_of(e) == Blame::Record
}

/// PostgreSQL's message and SQLSTATE, or the driver's text with its causes.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

impl PgSink {
    /// A sink that connects on first use.
    pub fn new(settings: PgSettings) -> Self {
        Self {
            settings,
            conn: None,
            known: Known::default(),
            pruned: Pruned::default(),
        }
    }

    /// True while a connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.client.is_closed())
    }

    fn error(&self, operation: &'static str, source: tokio_postgres::Error) -> SinkError {
        let target = self.settings.target.clone();
        if is_data_error(&source) {
            SinkError::Rejected {
                operation,
                target,
                source,
            }
        } else {
            SinkError::Query {
                operation,
                target,
                source,
            }
        }
    }

    fn timeout(&self, operation: &'static str) -> SinkError {
        self.timeout_after(operation, self.settings.timeout)
    }

    fn timeout_after(&self, operation: &'static str, after: Duration) -> SinkError {
        SinkError::Timeout {
            operation,
            target: self.settings.target.clone(),
            after,
        }
    }

    /// How long a transaction may take on the client's clock (see
    /// [`TRANSACTION_LIMIT_STATEMENTS`]).
    fn transaction_limit(&self) -> Duration {
        self.settings.timeout * TRANSACTION_LIMIT_STATEMENTS
    }

    /// Opens a connection if none is open, applying the schema and preparing the statements.
    pub async fn connect(&mut self) -> Result<(), SinkError> {
        if self.is_connected() {
            return Ok(());
        }
        self.conn = None;
        let limit = self.settings.timeout;
        let conn = match tokio::time::timeout(limit, self.open()).await {
            Ok(conn) => conn?,
            Err(_) => return Err(self.timeout("connecting")),
        };
        tracing::info!(target_db = %self.settings.target, "connected to PostgreSQL");
        self.conn = Some(conn);
        // What the aggregate tables held may have changed while no connection was open (a
        // restored or replaced database): learn it again.
        self.known = Known::default();
        self.pruned = Pruned::default();
        Ok(())
    }

    async fn open(&self) -> Result<Conn, SinkError> {
        let target = &self.settings.target;
        let (client, connection) = self
            .settings
            .config
            .connect(NoTls)
            .await
            .map_err(|source| SinkError::Connect {
                target: target.clone(),
                source,
            })?;
        let target_for_log = target.clone();
        let driver = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(target_db = %target_for_log, error = %e, "PostgreSQL connection ended");
            }
        });
        // The application role changes no schema: fleet applies it (as the schema's owner)
        // before the consumer starts. Each statement gets its own time limit.
        let set_timeout = format!(
            "SET statement_timeout = {}",
            self.settings.timeout.as_millis().max(1)
        );
        let checked = async {
            client.batch_execute(&set_timeout).await?;
            client
                .query_one(
                    "SELECT to_regclass('diag') IS NOT NULL AND to_regclass('consumer_offsets') IS NOT NULL",
                    &[],
                )
                .await
                .map(|row| row.get::<_, bool>(0))
        };
        match checked.await {
            Ok(true) => {}
            Ok(false) => {
                driver.abort();
                return Err(SinkError::MissingTables {
                    target: target.clone(),
                });
            }
            Err(source) => {
                driver.abort();
                return Err(SinkError::Schema {
                    target: target.clone(),
                    source,
                });
            }
        }
        if let Err(source) = client.batch_execute(CREATE_STAGING).await {
            driver.abort();
            return Err(self.error("creating the staging table", source));
        }
        let insert_staged = insert_from_staging();
        let prepared = futures::try_join!(
            client.prepare(INSERT_DIAG),
            client.prepare(UPSERT_OFFSETS),
            Statements::prepare(&client, &insert_staged),
        );
        match prepared {
            Ok((insert, upsert, analytics)) => Ok(Conn {
                client,
                insert,
                upsert,
                analytics,
                driver,
            }),
            Err(source) => {
                driver.abort();
                Err(self.error("preparing statements", source))
            }
        }
    }

    /// Checks that PostgreSQL answers, connecting first if needed.
    pub async fn ping(&mut self) -> Result<(), SinkError> {
        self.connect().await?;
        let conn = self.conn.as_ref().expect("connected above");
        match tokio::time::timeout(self.settings.timeout, conn.client.simple_query("SELECT 1"))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                self.conn = None;
                Err(self.error("checking the connection", e))
            }
            Err(_) => {
                self.conn = None;
                Err(self.timeout("checking the connection"))
            }
        }
    }

    /// The stored next offsets of `partitions` for this group and topic; partitions without a
    /// stored offset are missing from the map.
    pub async fn stored_offsets(
        &mut self,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>, SinkError> {
        const OPERATION: &str = "reading consumer_offsets";
        self.connect().await?;
        let conn = self.conn.as_ref().expect("connected above");
        let s = &self.settings;
        let params: [&(dyn ToSql + Sync); 3] = [&s.group, &s.topic, &partitions];
        let query = conn.client.query(SELECT_OFFSETS, &params);
        match tokio::time::timeout(s.timeout, query).await {
            Ok(Ok(rows)) => Ok(rows
                .iter()
                .map(|r| (r.get::<_, i32>(0), r.get::<_, i64>(1)))
                .collect()),
            Ok(Err(e)) => {
                self.conn = None;
                Err(self.error(OPERATION, e))
            }
            Err(_) => {
                self.conn = None;
                Err(self.timeout(OPERATION))
            }
        }
    }
}

/// The entries of `entries` that the insert returned (by Kafka position), in batch order.
fn inserted_entries<'a>(entries: &'a [Entry], returned: &[(i32, i64)]) -> Vec<&'a DiagRow> {
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

async fn write_batch(
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
    let returned = if entries.is_empty() {
        Vec::new()
    } else {
        copy_rows(&tx, entries).await?;
        tx.query(&conn.analytics.insert, &[&settings.analytics.topic])
            .await?
    };
    let mut positions = Vec::with_capacity(returned.len());
    let mut watermark: Option<DateTime<Utc>> = None;
    for row in &returned {
        positions.push((row.try_get(0)?, row.try_get(1)?));
        watermark = row.try_get(2)?;
    }
    let (group, topic) = (&settings.group, &settings.topic);
    let offset_params: [&(dyn ToSql + Sync); 4] = [group, topic, &partitions, &offsets];
    let offsets_upsert = async {
        match next_offsets {
            Some(_) => tx.execute(&conn.upsert, &offset_params).await,
            None => Ok(0),
        }
    };
    let (aggregates, learnt) = match watermark {
        Some(watermark) => {
            let rows = inserted_entries(entries, &positions);
            let update =
                conn.analytics
                    .update(&tx, &rows, watermark, &settings.analytics, known, *pruned);
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
    Ok((positions.len() as u64, aggregates))
}

/// Copies `entries` into the staging table (binary `COPY`).
async fn copy_rows(
    tx: &tokio_postgres::Transaction<'_>,
    entries: &[Entry],
) -> Result<(), tokio_postgres::Error> {
    let sink = tx.copy_in(COPY_STAGING).await?;
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
async fn probe_rows(
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

impl Sink for PgSink {
    async fn write(
        &mut self,
        entries: &[Entry],
        next_offsets: Option<&BTreeMap<i32, i64>>,
    ) -> Result<Written, SinkError> {
        const OPERATION: &str = "writing a batch to diag, the aggregates and consumer_offsets";
        self.connect().await?;
        let started = Instant::now();
        let limit = self.transaction_limit();
        let conn = self.conn.as_mut().expect("connected above");
        let s = &self.settings;
        let write = write_batch(
            conn,
            entries,
            next_offsets,
            s,
            &mut self.known,
            &mut self.pruned,
        );
        match tokio::time::timeout(limit, write).await {
            Ok(Ok((inserted, aggregates))) => {
                let rows = entries.len();
                tracing::debug!(rows, inserted, elapsed = ?started.elapsed(),
                    late = aggregates.late_dropped, "batch committed");
                Ok(Written {
                    inserted,
                    rows: rows as u64,
                    aggregates,
                })
            }
            Ok(Err(e)) => {
                let err = self.error(OPERATION, e);
                if !err.is_rejection() {
                    self.conn = None;
                }
                Err(err)
            }
            Err(_) => {
                self.conn = None;
                Err(self.timeout_after(OPERATION, limit))
            }
        }
    }

    async fn find_rejected(
        &mut self,
        entries: &[Entry],
    ) -> Result<Vec<(usize, String)>, SinkError> {
        const OPERATION: &str = "trying the rows of a refused batch one by one";
        self.connect().await?;
        // Up to two statements per level of halving for every culprit: give it the time of
        // as many statement limits as the search may need, bounded by the connection check.
        let levels = u32::BITS - (entries.len() as u32).leading_zeros() + 1;
        let limit = self.transaction_limit() * levels;
        let conn = self.conn.as_mut().expect("connected above");
        match tokio::time::timeout(limit, probe_rows(conn, entries)).await {
            Ok(Ok(rejected)) => Ok(rejected),
            Ok(Err(e)) => {
                self.conn = None;
                Err(self.error(OPERATION, e))
            }
            Err(_) => {
                self.conn = None;
                Err(self.timeout_after(OPERATION, limit))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::Record;
    use crate::row::fixtures::event;

    fn entry(n: u32) -> Entry {
        Entry {
            row: DiagRow::from_event(&event(n), 1, i64::from(n) + 100).unwrap(),
            record: Record {
                partition: 1,
                offset: i64::from(n) + 100,
                key: None,
                payload: None,
            },
        }
    }

    #[test]
    fn columns_keep_row_order() {
        let entries = [entry(1), entry(2), entry(3)];
        let c = Columns::new(&entries);
        assert!(Columns::default().event_id.is_empty());
        assert_eq!(c.seq, vec![1, 2, 3]);
        assert_eq!(c.kafka_offset, vec![101, 102, 103]);
        assert_eq!(c.kafka_partition, vec![1, 1, 1]);
        assert_eq!(c.event_id[1], entries[1].row.event_id);
        assert_eq!(c.vin[0], "1M8GDM9AXKP042788");
    }

    #[test]
    fn one_parameter_per_insert_column() {
        let columns_in_sql = INSERT_DIAG
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(cols, _)| cols.split(',').count())
            .unwrap();
        assert_eq!(columns_in_sql, Columns::default().params().len());
        assert!(INSERT_DIAG.contains("$19::int8[]") && !INSERT_DIAG.contains("$20"));
    }

    #[test]
    fn the_copy_fills_the_columns_the_unnest_insert_fills() {
        let names = |sql: &str| -> Vec<String> {
            sql.split(',')
                .map(|c| c.trim().trim_matches('"').to_owned())
                .collect()
        };
        let unnest_columns = INSERT_DIAG
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(cols, _)| names(cols))
            .unwrap();
        assert_eq!(names(DIAG_COLUMNS), unnest_columns);
        assert_eq!(STAGING_TYPES.len(), unnest_columns.len());
        for column in &unnest_columns {
            assert!(CREATE_STAGING.contains(column.as_str()), "{column}");
        }
        let insert = insert_from_staging();
        assert!(
            insert.contains("FROM diag_staging")
                && insert.contains("ON CONFLICT (event_id) DO NOTHING")
        );
        assert!(CREATE_STAGING.contains("ON COMMIT DELETE ROWS"));
    }

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

    #[test]
    fn offsets_upsert_never_moves_back() {
        assert!(UPSERT_OFFSETS.contains("GREATEST(consumer_offsets.next_offset"));
    }
}
