//! Talking to ingest: POST a batch of encoded events (a JSON array, or one form in
//! `--legacy-form` mode) and sort the answer into what was acknowledged, what was rejected for
//! good, and what to send again.

use std::time::Duration;

use fleet_common::wire::{EventsAnswer, RecordResult};
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::{StatusCode, Url, header};

/// How long one POST may take; above ingest's produce timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The path of ingest's events endpoint, added to base URLs that have none.
const EVENTS_PATH: &str = "/events";

/// The fate of one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// The broker has it.
    Acknowledged,
    /// Ingest refused it as invalid; sending it again will not help.
    Rejected(String),
    /// Not stored (network error, 408, 429, 5xx, or a failed record): to be sent again.
    Retry,
}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A fate for every event, in order.
    Answered {
        /// One per event of the batch.
        fates: Vec<Fate>,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// Why some events are to be sent again (`None` when none are).
        problem: Option<String>,
    },
    /// 413: the batch is too large; send fewer events at once.
    TooLarge,
}

impl Outcome {
    /// Every one of `count` events is to be sent again because of `problem`.
    pub fn all_retry(count: usize, retry_after: Option<Duration>, problem: String) -> Self {
        Self::Answered {
            fates: vec![Fate::Retry; count],
            retry_after,
            problem: Some(problem),
        }
    }
}

/// How events travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// A JSON array of events per request (the current API).
    Json,
    /// One `application/x-www-form-urlencoded` event per request (the old client).
    LegacyForm,
}

impl Wire {
    /// Most events in one request of this format.
    pub fn max_batch(self, configured: usize) -> usize {
        match self {
            Self::Json => configured.max(1),
            Self::LegacyForm => 1,
        }
    }

    /// An empty request body of this format.
    pub fn body(self) -> Body {
        Body {
            wire: self,
            bytes: Vec::with_capacity(match self {
                Self::Json => 64 * 1024,
                Self::LegacyForm => 256,
            }),
            count: 0,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::LegacyForm => crate::legacy::CONTENT_TYPE,
        }
    }
}

/// A request body under construction: events (each already encoded on its own) are added one
/// by one.
#[derive(Debug)]
pub struct Body {
    wire: Wire,
    bytes: Vec<u8>,
    count: usize,
}

impl Body {
    /// Adds one encoded event.
    pub fn push(&mut self, event: &[u8]) {
        match self.wire {
            Wire::Json => {
                self.bytes.push(if self.count == 0 { b'[' } else { b',' });
                self.bytes.extend_from_slice(event);
            }
            Wire::LegacyForm => self.bytes.extend_from_slice(event),
        }
        self.count += 1;
    }

    /// Events added so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The finished body.
    pub fn finish(mut self) -> Vec<u8> {
        if self.wire == Wire::Json {
            if self.count == 0 {
                self.bytes.push(b'[');
            }
            self.bytes.push(b']');
        }
        self.bytes
    }
}

/// The HTTP client of the process, shared by every vehicle.
#[derive(Debug, Clone)]
pub struct IngestClient {
    http: reqwest::Client,
    wire: Wire,
}

/// Why an ingest URL or the client cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL does not parse or is not http(s).
    #[error("ingest URL `{url}` is not usable: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why.
        reason: String,
    },
    /// reqwest could not set up its client.
    #[error("building the HTTP client for ingest: {0}")]
    Build(#[source] reqwest::Error),
}

/// The events endpoint of an ingest URL: `http(s)://host:port` (or with `/`) means
/// `http(s)://host:port/events`; a URL with a path is used as it is.
pub fn events_url(url: &str) -> Result<Url, ClientError> {
    let bad = |reason: String| ClientError::Url {
        url: url.to_owned(),
        reason,
    };
    let mut parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(bad("the scheme must be http or https".into()));
    }
    if parsed.path().is_empty() || parsed.path() == "/" {
        parsed.set_path(EVENTS_PATH);
    }
    Ok(parsed)
}

impl IngestClient {
    /// A client sending in `wire` format, with up to `connections` idle connections kept per
    /// ingest host.
    pub fn new(wire: Wire, connections: usize) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(connections)
            .user_agent(concat!("fleet-vehicle/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self { http, wire })
    }

    /// The format this client sends.
    pub fn wire(&self) -> Wire {
        self.wire
    }

    /// POSTs `body` to `url`. The request is built now; the future owns it.
    pub fn send(&self, url: Url, body: Body) -> BoxFuture<'static, Outcome> {
        let count = body.count();
        let request = self
            .http
            .post(url)
            .header(header::CONTENT_TYPE, body.wire.content_type())
            .body(body.finish());
        async move {
            match request.send().await {
                Ok(response) => read_answer(response, count).await,
                Err(e) => Outcome::all_retry(count, None, describe(&e)),
            }
        }
        .boxed()
    }
}

/// A reqwest error with its causes, which hold the useful part (e.g. "connection refused").
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn read_answer(response: reqwest::Response, count: usize) -> Outcome {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = match response.bytes().await {
        Ok(body) => body,
        // The answer was cut off: nothing is known, so everything goes again (same event ids).
        Err(e) => return Outcome::all_retry(count, retry_after, describe(&e)),
    };
    let answer = EventsAnswer::parse(&body);
    classify(status, retry_after, answer, &body, count)
}

fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    answer: Option<EventsAnswer>,
    body: &[u8],
    count: usize,
) -> Outcome {
    let reason = || {
        let detail = answer
            .as_ref()
            .and_then(|a| a.error().map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
        format!("ingest answered {status}: {detail}")
    };
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return Outcome::TooLarge;
    }
    let transient = status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT;
    if !(status.is_success() || status == StatusCode::UNPROCESSABLE_ENTITY || transient) {
        // Another 4xx: the request itself is refused and would be again.
        return Outcome::Answered {
            fates: vec![Fate::Rejected(reason()); count],
            retry_after,
            problem: None,
        };
    }
    let results = answer
        .as_ref()
        .map(EventsAnswer::results)
        .unwrap_or_default();
    let fates: Vec<Fate> = if results.len() == count {
        // Per-record answers: "ok" is stored whatever the status; "rejected" is final; anything
        // else ("failed", "rate_limited") is sent again.
        results
            .iter()
            .map(|r| match r {
                RecordResult::Ok { .. } => Fate::Acknowledged,
                RecordResult::Rejected { error, .. } => {
                    Fate::Rejected(error.clone().unwrap_or_else(|| "rejected".into()))
                }
                RecordResult::RateLimited { .. } | RecordResult::Failed { .. } => Fate::Retry,
            })
            .collect()
    } else if status.is_success() {
        vec![Fate::Acknowledged; count]
    } else if transient {
        vec![Fate::Retry; count]
    } else {
        vec![Fate::Rejected(reason()); count]
    };
    let problem = fates.contains(&Fate::Retry).then(|| {
        if transient {
            reason()
        } else {
            let detail = results
                .iter()
                .find_map(|r| match r {
                    RecordResult::RateLimited { error, .. }
                    | RecordResult::Failed { error, .. } => Some(error.clone()),
                    RecordResult::Ok { .. } | RecordResult::Rejected { .. } => None,
                })
                .unwrap_or_default();
            format!("ingest answered {status} with failed records: {detail}")
        }
    });
    Outcome::Answered {
        fates,
        retry_after,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: serde_json::Value) -> Option<EventsAnswer> {
        Some(EventsAnswer::Report(serde_json::from_value(json).unwrap()))
    }

    fn fates(outcome: Outcome) -> Vec<Fate> {
        match outcome {
            Outcome::Answered { fates, .. } => fates,
            Outcome::TooLarge => panic!("too large"),
        }
    }

    #[test]
    fn answers_are_classified_per_event() {
        let mixed = serde_json::json!({"accepted": 1, "rejected": 1, "results": [
            {"index": 0, "status": "ok", "partition": 0, "offset": 5},
            {"index": 1, "status": "rejected", "error": "field `speed`: bad"},
            {"index": 2, "status": "failed", "error": "timeout"}
        ]});
        let outcome = classify(StatusCode::OK, None, report(mixed), b"", 3);
        assert_eq!(
            outcome,
            Outcome::Answered {
                fates: vec![
                    Fate::Acknowledged,
                    Fate::Rejected("field `speed`: bad".into()),
                    Fate::Retry
                ],
                retry_after: None,
                problem: Some("ingest answered 200 OK with failed records: timeout".into())
            }
        );
        assert_eq!(
            classify(StatusCode::OK, None, None, b"", 2),
            Outcome::Answered {
                fates: vec![Fate::Acknowledged; 2],
                retry_after: None,
                problem: None
            }
        );
        let rejected = fates(classify(
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            None,
            b"nope",
            1,
        ));
        assert!(matches!(&rejected[0], Fate::Rejected(r) if r.contains("nope")));

        // A 503 with per-record results: the stored ones count, wherever they are.
        let partial = serde_json::json!({"error": "broker down", "accepted": 2, "rejected": 0,
            "failed": 1, "results": [
            {"index": 0, "status": "ok", "partition": 0, "offset": 5},
            {"index": 1, "status": "failed", "error": "timeout"},
            {"index": 2, "status": "ok", "partition": 1, "offset": 9}
        ]});
        assert_eq!(
            classify(
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Duration::from_secs(1)),
                report(partial),
                b"",
                3,
            ),
            Outcome::Answered {
                fates: vec![Fate::Acknowledged, Fate::Retry, Fate::Acknowledged],
                retry_after: Some(Duration::from_secs(1)),
                problem: Some("ingest answered 503 Service Unavailable: broker down".into())
            }
        );
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::BAD_GATEWAY,
            StatusCode::REQUEST_TIMEOUT,
        ] {
            assert_eq!(
                fates(classify(status, None, None, b"", 2)),
                [Fate::Retry, Fate::Retry]
            );
        }
        assert_eq!(
            classify(StatusCode::PAYLOAD_TOO_LARGE, None, None, b"", 1),
            Outcome::TooLarge
        );
        assert!(matches!(
            &fates(classify(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                None,
                None,
                b"",
                1
            ))[0],
            Fate::Rejected(_)
        ));
    }

    #[test]
    fn urls_are_checked_and_base_urls_get_the_events_path() {
        assert_eq!(
            events_url("http://ingest:8080/events").unwrap().as_str(),
            "http://ingest:8080/events"
        );
        assert_eq!(
            events_url("http://ingest-1:8080").unwrap().as_str(),
            "http://ingest-1:8080/events"
        );
        assert!(events_url("ingest:8080").is_err());
        assert!(events_url("ftp://ingest/events").is_err());
    }

    #[test]
    fn bodies_join_events_as_a_json_array_or_send_one_form() {
        let mut body = Wire::Json.body();
        body.push(br#"{"a":1}"#);
        body.push(br#"{"b":2}"#);
        assert_eq!(body.count(), 2);
        assert_eq!(body.finish(), br#"[{"a":1},{"b":2}]"#);
        assert_eq!(Wire::Json.body().finish(), b"[]");
        let mut form = Wire::LegacyForm.body();
        form.push(b"vin=X");
        assert_eq!(form.finish(), b"vin=X");
        assert_eq!(Wire::LegacyForm.max_batch(500), 1);
        assert_eq!(Wire::Json.max_batch(500), 500);
    }
}
