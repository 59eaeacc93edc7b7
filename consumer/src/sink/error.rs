//! What can go wrong talking to PostgreSQL, and which of it is a record's fault.

use std::time::Duration;

use crate::sqlstate::{self, Blame};

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

/// True when one record's value is to blame for `e` (see [`sqlstate::blame`]).
pub(super) fn is_data_error(e: &tokio_postgres::Error) -> bool {
    sqlstate::blame_of(e) == Blame::Record
}

/// PostgreSQL's message and SQLSTATE, or the driver's text with its causes.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
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
