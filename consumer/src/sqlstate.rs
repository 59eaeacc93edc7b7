//! Who is to blame for a PostgreSQL error, read from its SQLSTATE: one record's own content
//! (that record, and only it, may go to the dead-letter topic) or the server and its state
//! (out of ids, disk full, a timeout, a lost connection, ...: stop, keep the batch and retry,
//! never dead-letter).

/// The culprit of a failed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// A value of the record refused as data (class 22 except `2200H`, class 23 except a
    /// clash on the server-generated `diag` id): storing it again fails again.
    Record,
    /// Anything else: the same rows may be stored once the server is fixed.
    Server,
}

/// `sequence_generator_limit_exceeded`: the id sequence ran out, no record's fault.
const SEQUENCE_EXHAUSTED: &str = "2200H";
/// `unique_violation`.
const UNIQUE_VIOLATION: &str = "23505";
/// `query_canceled`, which is what `statement_timeout` raises.
const QUERY_CANCELED: &str = "57014";
/// Constraints over values the server generates, not the record: a clash on them is the
/// server's state (e.g. a sequence set back), not the record's content.
const SERVER_GENERATED_KEYS: [&str; 1] = ["diag_pkey"];

/// Who is to blame for the error with SQLSTATE `code`, raised on `constraint` if any.
pub fn blame(code: &str, constraint: Option<&str>) -> Blame {
    let record = match &code[..code.len().min(2)] {
        "22" => code != SEQUENCE_EXHAUSTED,
        "23" => {
            !(code == UNIQUE_VIOLATION
                && constraint.is_some_and(|c| SERVER_GENERATED_KEYS.contains(&c)))
        }
        _ => false,
    };
    if record { Blame::Record } else { Blame::Server }
}

/// Who is to blame for `e`; errors without a SQLSTATE (I/O, protocol) are the server's.
pub fn blame_of(e: &tokio_postgres::Error) -> Blame {
    match e.as_db_error() {
        Some(db) => blame(db.code().code(), db.constraint()),
        None => Blame::Server,
    }
}

/// True when `e` is a statement cancelled by `statement_timeout`.
pub fn is_statement_timeout(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| c.code() == QUERY_CANCELED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_records_own_values_blame_the_record() {
        for code in [
            "22001", "22003", "22007", "22008", "22P02", "22021", "22004",
        ] {
            assert_eq!(blame(code, None), Blame::Record, "{code}");
        }
        for code in ["23502", "23514", "23503", "23P01"] {
            assert_eq!(blame(code, Some("some_check")), Blame::Record, "{code}");
        }
        assert_eq!(blame("23505", Some("diag_event_id_key")), Blame::Record);
    }

    #[test]
    fn server_side_failures_never_blame_the_record() {
        for code in [
            "2200H", // out of ids
            "53100", // disk full
            "53200", // out of memory
            "57014", // statement timeout
            "57P01", // admin shutdown
            "08006", // connection failure
            "40001", // serialization failure
            "40P01", // deadlock
            "55P03", // lock not available
            "42501", // insufficient privilege
            "42P01", // undefined table
            "XX000", // internal error
            "25P02", // transaction aborted
        ] {
            assert_eq!(blame(code, None), Blame::Server, "{code}");
        }
        assert_eq!(blame("23505", Some("diag_pkey")), Blame::Server);
    }
}
