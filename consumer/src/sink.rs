//! PostgreSQL writes: a check of the schema at connect, one transaction per batch or part of a
//! batch (rows copied into a staging table with a binary `COPY`, then inserted from there with
//! `ON CONFLICT (event_id) DO NOTHING`, which returns the rows it really inserted; then, sent at once, the analytics of those rows and, with the batch's last part,
//! the partitions' next offsets), the stored offsets to resume from, and the probe that finds
//! the rows PostgreSQL refuses by halving (a few statements, not three round trips per row).
//!
//! Every statement has its own time limit on the server (`statement_timeout`); a statement
//! that runs out is cancelled with SQLSTATE 57014, which [`SinkError::is_timeout`] reports so
//! the caller can split the batch.
//!
//! The statements are in `sql`, the errors in `error`, the column arrays of the probe in
//! `columns`, and the transaction of a batch and the probe in `write`; this file holds the
//! connection and what the flush logic calls.

mod columns;
mod error;
#[cfg(test)]
mod fixtures;
mod sql;
mod write;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Statement};

use crate::analytics::{self, Aggregates, AnalyticsSettings, Known, Pruned, Statements};
use crate::batch::Entry;
use fleet_common::wire::VehicleSummary;

pub use error::SinkError;
use error::is_data_error;
use sql::{
    COPY_STAGING, CREATE_STAGING, INSERT_DIAG, SELECT_OFFSETS, UPSERT_OFFSETS, copy_diag,
    insert_from_staging,
};
#[cfg(test)]
pub(crate) use write::STAGED_AFTER_REFUSAL;
use write::{probe_rows, write_batch};

/// The outcome of a committed batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    /// Rows really inserted (replayed events are skipped by `ON CONFLICT`).
    pub inserted: u64,
    /// Rows offered.
    pub rows: u64,
    /// The aggregates the inserted rows changed, as committed.
    pub aggregates: Aggregates,
    /// Whether the rows went through the staging table: the copy straight into `diag` was
    /// refused (an event stored already, or a refused value), or is paused after a refusal.
    pub staged: bool,
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

/// An open connection with its prepared statements and the task that drives it.
struct Conn {
    client: Client,
    insert: Statement,
    upsert: Statement,
    /// The binary copy straight into `diag`.
    copy_straight: Statement,
    /// The binary copy into the staging table.
    copy_staged: Statement,
    analytics: Statements,
    /// Batches still to write through the staging table before a copy straight into `diag`
    /// is tried again (set after one was refused: duplicates tend to come in runs).
    staged_batches_left: u32,
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

/// A transaction is given up on the client after this many statement time limits: the
/// server cancels slow statements itself, so only a connection that stopped answering gets
/// here.
pub const TRANSACTION_LIMIT_STATEMENTS: u32 = 4;

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
        let copy_straight = copy_diag();
        let prepared = futures::try_join!(
            client.prepare(INSERT_DIAG),
            client.prepare(UPSERT_OFFSETS),
            client.prepare(&copy_straight),
            client.prepare(COPY_STAGING),
            Statements::prepare(&client, &insert_staged),
        );
        match prepared {
            Ok((insert, upsert, copy_straight, copy_staged, analytics)) => Ok(Conn {
                client,
                insert,
                upsert,
                copy_straight,
                copy_staged,
                analytics,
                staged_batches_left: 0,
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
        let limit = self.settings.timeout;
        let outcome = tokio::time::timeout(limit, conn.client.simple_query("SELECT 1")).await;
        self.settle("checking the connection", limit, outcome)
            .map(drop)
    }

    /// The stored next offsets of `partitions` for this group and topic; partitions without a
    /// stored offset are missing from the map.
    pub async fn stored_offsets(
        &mut self,
        partitions: &[i32],
    ) -> Result<BTreeMap<i32, i64>, SinkError> {
        let (group, topic) = (self.settings.group.clone(), self.settings.topic.clone());
        let params: [&(dyn ToSql + Sync); 3] = [&group, &topic, &partitions];
        let rows = self
            .read("reading consumer_offsets", SELECT_OFFSETS, &params)
            .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<_, i32>(0), r.get::<_, i64>(1)))
            .collect())
    }

    /// The vehicle summaries stored within `within` before the newest one (see
    /// [`analytics::SELECT_RECENT_SUMMARIES`]).
    pub async fn recent_summaries(
        &mut self,
        within: Duration,
    ) -> Result<Vec<VehicleSummary>, SinkError> {
        const OPERATION: &str = "reading recent vehicle_summary rows";
        let seconds = within.as_secs_f64();
        let params: [&(dyn ToSql + Sync); 1] = [&seconds];
        let rows = self
            .read(OPERATION, analytics::SELECT_RECENT_SUMMARIES, &params)
            .await?;
        rows.iter()
            .map(analytics::summary_from_row)
            .collect::<Result<_, _>>()
            .map_err(|e| self.error(OPERATION, e))
    }

    /// Runs one read-only query, connecting first if needed, bounded by the timeout; a failure
    /// drops the connection.
    async fn read(
        &mut self,
        operation: &'static str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, SinkError> {
        self.connect().await?;
        let conn = self.conn.as_ref().expect("connected above");
        let limit = self.settings.timeout;
        let outcome = tokio::time::timeout(limit, conn.client.query(sql, params)).await;
        self.settle(operation, limit, outcome)
    }

    /// The result of an operation on the connection that was given `limit`: a failure or the
    /// timeout drops the connection (it may be broken or still busy) and names `operation`.
    fn settle<T>(
        &mut self,
        operation: &'static str,
        limit: Duration,
        outcome: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, SinkError> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.conn = None;
                Err(self.error(operation, e))
            }
            Err(_) => {
                self.conn = None;
                Err(self.timeout_after(operation, limit))
            }
        }
    }
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
            Ok(Ok((inserted, aggregates, staged))) => {
                let rows = entries.len();
                tracing::debug!(rows, inserted, staged, elapsed = ?started.elapsed(),
                    late = aggregates.late_dropped, "batch committed");
                Ok(Written {
                    inserted,
                    rows: rows as u64,
                    aggregates,
                    staged,
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
        let outcome = tokio::time::timeout(limit, probe_rows(conn, entries)).await;
        self.settle(OPERATION, limit, outcome)
    }
}
