//! Ingest's answer to `POST /events`, as ingest writes it and as the vehicles, `fleet verify`
//! and the tests read it: a report with one result per record ([`IngestReport`]), or, for a
//! request refused as a whole before its records were looked at, `{"error": "..."}`
//! ([`ErrorBody`], the body of every refused request on every route).

use serde::{Deserialize, Serialize};

/// The fate of one record, in body order; `status` names the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RecordResult {
    /// The broker acknowledged it.
    Ok {
        /// Position in the body, from 0.
        index: usize,
        /// Partition it was written to.
        partition: i32,
        /// Its offset there.
        offset: i64,
    },
    /// Invalid; never produced. Sending it again will not help.
    Rejected {
        /// Position in the body, from 0.
        index: usize,
        /// The field and the rule it breaks; given for the first rejected records of a
        /// request only (ingest's `DESCRIBED_REJECTIONS`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Valid, but its vehicle is over the per-vehicle rate; never produced. Sending it
    /// again after `retry_after` seconds will help.
    RateLimited {
        /// Position in the body, from 0.
        index: usize,
        /// Always 429, the HTTP status this record alone would get.
        code: u16,
        /// Why.
        error: String,
        /// Seconds until the vehicle may send again.
        retry_after: u64,
    },
    /// Valid, but the broker did not acknowledge it in time. Sending it again may help.
    Failed {
        /// Position in the body, from 0.
        index: usize,
        /// What the broker side reported.
        error: String,
    },
}

/// The response body of `POST /events` once its records were looked at (200, and 422, 429
/// or 503 with per-record results).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReport {
    /// Why the request as a whole did not succeed (422, 429, 503); absent on 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Records acknowledged by the broker.
    pub accepted: usize,
    /// Records refused as invalid.
    pub rejected: usize,
    /// Valid records refused because their vehicle is over its rate (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub rate_limited: usize,
    /// Valid records the broker did not acknowledge, only on 503 (absent when 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: usize,
    /// One entry per record, in body order.
    pub results: Vec<RecordResult>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// The body of a request ingest refuses as a whole (a bad body, a wrong content type, a
/// missing token, overload): `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable reason.
    pub error: String,
}

/// An answer to `POST /events` as a client reads it: either shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventsAnswer {
    /// The records were looked at: one result each.
    Report(IngestReport),
    /// The request was refused as a whole.
    Refused(ErrorBody),
}

impl EventsAnswer {
    /// Reads an answer body: a report, else a refusal; `None` when it is neither (not ingest's
    /// answer, e.g. a proxy's, or cut off).
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_json::from_slice(body)
            .map(Self::Report)
            .or_else(|_| serde_json::from_slice(body).map(Self::Refused))
            .ok()
    }

    /// Why the request as a whole did not succeed, if the answer says.
    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Report(report) => report.error.as_deref(),
            Self::Refused(refusal) => Some(&refusal.error),
        }
    }

    /// The per-record results (none for a refused request).
    pub fn results(&self) -> &[RecordResult] {
        match self {
            Self::Report(report) => &report.results,
            Self::Refused(_) => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_report_round_trips_with_its_field_names() {
        let report = IngestReport {
            error: Some("the broker did not acknowledge 1 of 5 records".into()),
            accepted: 1,
            rejected: 2,
            rate_limited: 1,
            failed: 1,
            results: vec![
                RecordResult::Ok {
                    index: 0,
                    partition: 3,
                    offset: 42,
                },
                RecordResult::Rejected {
                    index: 1,
                    error: Some("field `speed`: outside".into()),
                },
                RecordResult::Rejected {
                    index: 2,
                    error: None,
                },
                RecordResult::RateLimited {
                    index: 3,
                    code: 429,
                    error: "over the rate".into(),
                    retry_after: 2,
                },
                RecordResult::Failed {
                    index: 4,
                    error: "timeout".into(),
                },
            ],
        };
        let expected = json!({
            "error": "the broker did not acknowledge 1 of 5 records",
            "accepted": 1, "rejected": 2, "rate_limited": 1, "failed": 1,
            "results": [
                {"status": "ok", "index": 0, "partition": 3, "offset": 42},
                {"status": "rejected", "index": 1, "error": "field `speed`: outside"},
                {"status": "rejected", "index": 2},
                {"status": "rate_limited", "index": 3, "code": 429, "error": "over the rate",
                    "retry_after": 2},
                {"status": "failed", "index": 4, "error": "timeout"}
            ]
        });
        assert_eq!(serde_json::to_value(&report).unwrap(), expected);
        let text = serde_json::to_vec(&report).unwrap();
        assert_eq!(
            serde_json::from_slice::<IngestReport>(&text).unwrap(),
            report
        );
        assert_eq!(
            EventsAnswer::parse(expected.to_string().as_bytes()),
            Some(EventsAnswer::Report(report))
        );
    }

    #[test]
    fn a_plain_success_leaves_out_the_empty_parts() {
        let report = IngestReport {
            error: None,
            accepted: 1,
            rejected: 0,
            rate_limited: 0,
            failed: 0,
            results: vec![RecordResult::Ok {
                index: 0,
                partition: 0,
                offset: 7,
            }],
        };
        let expected = json!({"accepted": 1, "rejected": 0,
            "results": [{"status": "ok", "index": 0, "partition": 0, "offset": 7}]});
        assert_eq!(serde_json::to_value(&report).unwrap(), expected);
        assert_eq!(
            serde_json::from_value::<IngestReport>(expected).unwrap(),
            report
        );
    }

    #[test]
    fn a_refusal_round_trips_and_other_bodies_are_neither() {
        let refusal = ErrorBody {
            error: "unsupported content type".into(),
        };
        let expected = json!({"error": "unsupported content type"});
        assert_eq!(serde_json::to_value(&refusal).unwrap(), expected);
        let answer = EventsAnswer::parse(expected.to_string().as_bytes()).unwrap();
        assert_eq!(answer, EventsAnswer::Refused(refusal));
        assert_eq!(answer.error(), Some("unsupported content type"));
        assert!(answer.results().is_empty());
        for other in [&b"Bad Gateway"[..], b"{}", br#"{"message":"x"}"#, b""] {
            assert_eq!(EventsAnswer::parse(other), None);
        }
    }
}
