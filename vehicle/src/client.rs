//! Talking to ingest: POST a batch of events as one JSON array and sort the answer into what
//! was acknowledged, what was rejected for good, and what to send again.

use std::time::Duration;

use fleet_common::TelemetryEvent;
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::{StatusCode, Url, header};
use serde::Deserialize;

/// How long one POST may take; above ingest's produce timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The fate of one event of an answered batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// The broker has it.
    Acknowledged,
    /// Ingest refused it as invalid; sending it again will not help.
    Rejected(String),
}

/// What became of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ingest answered for every event (200, or 422 when all were invalid).
    Answered(Vec<Fate>),
    /// Not (all) stored: network error, 408, 429 or 5xx. The first `acknowledged` events were
    /// stored; the rest are to be sent again, not before `retry_after` if given.
    Retry {
        /// Leading events ingest acknowledged anyway.
        acknowledged: usize,
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
        /// What went wrong.
        reason: String,
    },
    /// 413: the batch is too large; send fewer events at once.
    TooLarge,
    /// Another 4xx: the request itself is refused and would be again.
    Refused(String),
}

/// The shape of ingest's answer this client reads; everything else is ignored.
#[derive(Debug, Deserialize)]
struct Report {
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    results: Vec<RecordResult>,
}

#[derive(Debug, Deserialize)]
struct RecordResult {
    status: String,
    #[serde(default)]
    error: Option<String>,
}

/// A client for ingest's `POST /events`, shared by every vehicle of the process.
#[derive(Debug, Clone)]
pub struct IngestClient {
    http: reqwest::Client,
    url: Url,
}

/// Why the client cannot be built.
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
    #[error("building the HTTP client for `{url}`: {source}")]
    Build {
        /// The URL.
        url: String,
        /// The cause.
        source: reqwest::Error,
    },
}

impl IngestClient {
    /// A client posting to `url`.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let parsed = Url::parse(url).map_err(|e| ClientError::Url {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if parsed.scheme() != "http" && parsed.scheme() != "https" {
            return Err(ClientError::Url {
                url: url.to_owned(),
                reason: "the scheme must be http or https".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("fleet-vehicle/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| ClientError::Build {
                url: url.to_owned(),
                source,
            })?;
        Ok(Self { http, url: parsed })
    }

    /// Sends `batch` as one JSON array. The request is built now; the future owns it.
    pub fn send(&self, batch: &[TelemetryEvent]) -> BoxFuture<'static, Outcome> {
        let request = self.http.post(self.url.clone()).json(batch);
        let count = batch.len();
        async move {
            match request.send().await {
                Ok(response) => read_answer(response, count).await,
                Err(e) => Outcome::Retry {
                    acknowledged: 0,
                    retry_after: None,
                    reason: describe(&e),
                },
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
    let body = response.bytes().await.unwrap_or_default();
    let report: Option<Report> = serde_json::from_slice(&body).ok();
    classify(status, retry_after, report, &body, count)
}

fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    report: Option<Report>,
    body: &[u8],
    count: usize,
) -> Outcome {
    let reason = || {
        let detail = report
            .as_ref()
            .and_then(|r| r.error.clone())
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
        format!("ingest answered {status}: {detail}")
    };
    // Leading events the broker acknowledged, from the per-record results.
    let leading_ok = || {
        report.as_ref().map_or(0, |r| {
            r.results
                .iter()
                .take(count)
                .take_while(|r| r.status == "ok")
                .count()
        })
    };

    if status.is_success() || status == StatusCode::UNPROCESSABLE_ENTITY {
        let results = report
            .as_ref()
            .map(|r| r.results.as_slice())
            .unwrap_or_default();
        if results.len() != count {
            // No usable per-record answer: 2xx acknowledges all, 422 rejects all.
            let fate = if status.is_success() {
                Fate::Acknowledged
            } else {
                Fate::Rejected(reason())
            };
            return Outcome::Answered(vec![fate; count]);
        }
        if results
            .iter()
            .any(|r| r.status != "ok" && r.status != "rejected")
        {
            return Outcome::Retry {
                acknowledged: leading_ok(),
                retry_after,
                reason: reason(),
            };
        }
        let fates = results
            .iter()
            .map(|r| match r.status.as_str() {
                "ok" => Fate::Acknowledged,
                _ => Fate::Rejected(r.error.clone().unwrap_or_else(|| "rejected".into())),
            })
            .collect();
        return Outcome::Answered(fates);
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return Outcome::TooLarge;
    }
    if status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
    {
        return Outcome::Retry {
            acknowledged: leading_ok(),
            retry_after,
            reason: reason(),
        };
    }
    Outcome::Refused(reason())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(json: serde_json::Value) -> Option<Report> {
        Some(serde_json::from_value(json).unwrap())
    }

    #[test]
    fn answers_are_classified() {
        let mixed = serde_json::json!({"accepted": 1, "rejected": 1, "results": [
            {"index": 0, "status": "ok", "partition": 0, "offset": 5},
            {"index": 1, "status": "rejected", "error": "field `speed`: bad"}
        ]});
        assert_eq!(
            classify(StatusCode::OK, None, report(mixed), b"", 2),
            Outcome::Answered(vec![
                Fate::Acknowledged,
                Fate::Rejected("field `speed`: bad".into())
            ])
        );
        assert_eq!(
            classify(StatusCode::OK, None, None, b"", 2),
            Outcome::Answered(vec![Fate::Acknowledged; 2])
        );
        let Outcome::Answered(fates) =
            classify(StatusCode::UNPROCESSABLE_ENTITY, None, None, b"nope", 1)
        else {
            panic!("422 answers");
        };
        assert!(matches!(&fates[0], Fate::Rejected(r) if r.contains("nope")));

        let partial = serde_json::json!({"error": "broker down", "results": [
            {"index": 0, "status": "ok"}, {"index": 1, "status": "failed", "error": "timeout"},
            {"index": 2, "status": "ok"}
        ]});
        let outcome = classify(
            StatusCode::SERVICE_UNAVAILABLE,
            Some(Duration::from_secs(1)),
            report(partial),
            b"",
            3,
        );
        assert_eq!(
            outcome,
            Outcome::Retry {
                acknowledged: 1,
                retry_after: Some(Duration::from_secs(1)),
                reason: "ingest answered 503 Service Unavailable: broker down".into()
            }
        );
        for status in [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::BAD_GATEWAY,
            StatusCode::REQUEST_TIMEOUT,
        ] {
            assert!(matches!(
                classify(status, None, None, b"", 1),
                Outcome::Retry {
                    acknowledged: 0,
                    ..
                }
            ));
        }
        assert_eq!(
            classify(StatusCode::PAYLOAD_TOO_LARGE, None, None, b"", 1),
            Outcome::TooLarge
        );
        assert!(matches!(
            classify(StatusCode::UNSUPPORTED_MEDIA_TYPE, None, None, b"", 1),
            Outcome::Refused(_)
        ));
    }

    #[test]
    fn urls_are_checked() {
        assert!(IngestClient::new("http://ingest:8080/events").is_ok());
        assert!(IngestClient::new("ingest:8080").is_err());
        assert!(IngestClient::new("ftp://ingest/events").is_err());
    }
}
