//! `POST /events`: decode, validate, produce, and answer only once the broker acknowledged every
//! accepted record.
//!
//! Status: 200 when at least one record was acknowledged and none failed, 429 with `Retry-After`
//! when none was acknowledged and some were refused because their vehicle is over its rate
//! (`INGEST_RATE_LIMIT_PER_VIN` at start, then the live `ingest.rate_limit_per_vin`), 422 when
//! every record was rejected as invalid, 503 with `Retry-After` when any produce failed or timed
//! out (a 2xx never covers a record the broker did not acknowledge). Rate-limited records of a 200 are marked `rate_limited` in the results and
//! the response carries `Retry-After` too. Whole-body problems are 400, 413 or 415; a body of
//! more than `INGEST_MAX_RECORDS_PER_REQUEST` records is 413 before any record is checked.
//!
//! Every answer is bounded: one short entry per record (at most the cap), the reasons of only
//! the first [`DESCRIBED_REJECTIONS`] rejected records, each clipped. Inflating and decoding the
//! body runs off the async workers ([`crate::offload`]).
//!
//! The answer is [`IngestReport`], the wire type the vehicles and `fleet verify` read too.
//!
//! With bearer tokens on (`INGEST_TOKENS_FILE`), a request without a valid token is 401 before
//! anything else is looked at, and one whose valid records are not all of the token's vehicle is
//! 403 as a whole: nothing of it is produced.
//!
//! A body sent with `Content-Encoding: gzip` is inflated first; the body limit then applies to
//! the inflated size too (413), and a body that is not valid gzip is 400.
//!
//! Bodies are JSON (one event or an array), NDJSON, or the old vehicle client's
//! `application/x-www-form-urlencoded` reading (see [`crate::decode::legacy_form`]: its VINs
//! need no check digit, it has no sensors, and ingest derives its `event_id` and `seq` from the
//! reading, so a retried identical POST is stored once).

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::Utc;
use fleet_common::Vin;
use fleet_common::wire::{IngestReport, RecordResult};
use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::app::AppState;
use crate::auth;
use crate::broker::{Appended, BrokerError};
use crate::decode::{self, BodyFormat, Record};
use crate::encoding::ContentEncoding;
use crate::error::{ApiError, clip};
use crate::metrics::RecordOutcome;
use crate::offload;
use crate::routes::guard::Vehicle;

/// Seconds a client is asked to wait after a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// Rejected records of one request whose reason the answer spells out; later ones have an entry
/// without `error`, so an answer stays small however many records are bad.
pub const DESCRIBED_REJECTIONS: usize = 20;

/// Longest reason given for one record, characters (a reason may quote the record, e.g. an
/// unknown field's name).
pub const MAX_RECORD_ERROR_CHARS: usize = 300;

/// The handler. With tokens on, [`crate::routes::guard::vehicle_token`] checked the token before
/// the body was read and hands over the vehicle.
pub async fn post_events(
    State(state): State<AppState>,
    vehicle: Option<Extension<Vehicle>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let vehicle = vehicle.map(|Extension(Vehicle(vin))| vin);
    match ingest(&state, &headers, vehicle.as_ref(), body).await {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(status = %e.status, error = %e.message, "request refused");
            e.into_response()
        }
    }
}

async fn ingest(
    state: &AppState,
    headers: &HeaderMap,
    vehicle: Option<&Vin>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let format = BodyFormat::from_content_type(content_type)?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let encoding = ContentEncoding::from_header(encoding)?;
    let limit = state.settings.max_body_bytes;
    let body = body.map_err(|e| ApiError::body_rejection(e, limit))?;
    let max_records = state.settings.max_records_per_request;
    let plain_bytes = matches!(encoding, ContentEncoding::Identity).then_some(body.len());
    let records = offload::run_sized(plain_bytes, move || -> Result<Vec<Record>, ApiError> {
        let body = encoding.decode(body, limit)?;
        Ok(decode::decode(format, &body, max_records, Utc::now())?)
    })
    .await??;
    if records.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body holds no events",
        ));
    }
    if let Some(vin) = vehicle {
        let vins = records
            .iter()
            .enumerate()
            .filter_map(|(index, record)| Some((index, &record.as_ref().ok()?.vin)));
        auth::authorize(vin, vins)?;
    }
    let results = produce(state, records).await;
    Ok(respond(state, results))
}

/// Queues every valid record whose vehicle is within its rate (in body order, so one vehicle's
/// records keep their order) and waits, until one shared deadline, for all acknowledgements.
async fn produce(state: &AppState, records: Vec<Record>) -> Vec<RecordResult> {
    let deadline = Instant::now() + state.settings.produce_timeout;
    let pending: Vec<_> = records
        .into_iter()
        .enumerate()
        .map(|(index, record)| {
            let queued = queue(state, record);
            let metrics = state.metrics.clone();
            async move {
                let (queued_at, ack) = match queued {
                    Queued::Rejected(error) => {
                        return RecordResult::Rejected {
                            index,
                            error: Some(error),
                        };
                    }
                    Queued::Limited(wait) => {
                        return RecordResult::RateLimited {
                            index,
                            code: StatusCode::TOO_MANY_REQUESTS.as_u16(),
                            error: "the vehicle sends more events per second than the per-vehicle rate limit (ingest.rate_limit_per_vin) allows".to_owned(),
                            retry_after: retry_after_secs(wait),
                        };
                    }
                    Queued::Pending { queued_at, ack } => (queued_at, ack),
                };
                let appended = match tokio::time::timeout_at(deadline, ack).await {
                    Ok(Ok(appended)) => {
                        metrics.observe_produce_latency(queued_at.elapsed());
                        Ok(appended)
                    }
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("the broker did not acknowledge in time".to_owned()),
                };
                match appended {
                    Ok(Appended { partition, offset }) => RecordResult::Ok {
                        index,
                        partition,
                        offset,
                    },
                    Err(error) => RecordResult::Failed { index, error },
                }
            }
        })
        .collect();
    let mut results = futures::future::join_all(pending).await;
    bound_errors(&mut results);
    results
}

/// Keeps the answer's size bounded by the number of records: every reason is clipped to
/// [`MAX_RECORD_ERROR_CHARS`], and rejected records past the first [`DESCRIBED_REJECTIONS`]
/// give none. Every record keeps its entry, in body order.
fn bound_errors(results: &mut [RecordResult]) {
    let mut described = 0;
    for result in results {
        let error = match result {
            RecordResult::Ok { .. } | RecordResult::Rejected { error: None, .. } => continue,
            RecordResult::Rejected { error, .. } if described == DESCRIBED_REJECTIONS => {
                *error = None;
                continue;
            }
            RecordResult::Rejected {
                error: Some(error), ..
            } => {
                described += 1;
                error
            }
            RecordResult::RateLimited { error, .. } | RecordResult::Failed { error, .. } => error,
        };
        if error.chars().nth(MAX_RECORD_ERROR_CHARS).is_some() {
            *error = clip(error, MAX_RECORD_ERROR_CHARS);
        }
    }
}

/// One record after the synchronous part of [`produce`].
enum Queued {
    /// Invalid: never produced.
    Rejected(String),
    /// Its vehicle is over its rate; a token is there again after the duration.
    Limited(Duration),
    /// Handed to the broker at `queued_at`; `ack` resolves with its acknowledgement.
    Pending {
        queued_at: Instant,
        ack: BoxFuture<'static, Result<Appended, BrokerError>>,
    },
}

/// Checks `record`'s vehicle against its rate and, if within, hands the record to the broker.
fn queue(state: &AppState, record: Record) -> Queued {
    let event = match record {
        Ok(event) => event,
        Err(error) => return Queued::Rejected(error),
    };
    let payload = match serde_json::to_vec(&event) {
        Ok(payload) => payload,
        Err(e) => return Queued::Rejected(format!("serializing the event: {e}")),
    };
    if let Err(wait) = state.rate_limiter.check(&event.vin) {
        return Queued::Limited(wait);
    }
    Queued::Pending {
        queued_at: Instant::now(),
        ack: state.broker.append(event.vin.as_str(), payload),
    }
}

/// A wait as whole seconds for `Retry-After`, rounded up and at least 1.
fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// How many records met each fate.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    accepted: usize,
    rejected: usize,
    rate_limited: usize,
    failed: usize,
}

impl Tally {
    fn of(results: &[RecordResult]) -> Self {
        let mut tally = Self::default();
        for result in results {
            let count = match result {
                RecordResult::Ok { .. } => &mut tally.accepted,
                RecordResult::Rejected { .. } => &mut tally.rejected,
                RecordResult::RateLimited { .. } => &mut tally.rate_limited,
                RecordResult::Failed { .. } => &mut tally.failed,
            };
            *count += 1;
        }
        tally
    }
}

/// The status of the whole request from its records' fates, with the reason when it is not 200.
fn status_of(tally: Tally, results: &[RecordResult]) -> (StatusCode, Option<String>) {
    let first_error = |pick: fn(&RecordResult) -> Option<(usize, &String)>| {
        results
            .iter()
            .find_map(pick)
            .map(|(index, error)| format!("record {index}: {error}"))
            .unwrap_or_default()
    };
    if tally.failed > 0 {
        let first = first_error(|r| match r {
            RecordResult::Failed { index, error } => Some((*index, error)),
            _ => None,
        });
        let error = format!(
            "the broker did not acknowledge {} of {} records, send them again later; {first}",
            tally.failed,
            results.len()
        );
        (StatusCode::SERVICE_UNAVAILABLE, Some(error))
    } else if tally.accepted == 0 && tally.rate_limited > 0 {
        let error = format!(
            "{} of {} records were refused because their vehicle is over its rate, send them again later",
            tally.rate_limited,
            results.len()
        );
        (StatusCode::TOO_MANY_REQUESTS, Some(error))
    } else if tally.accepted == 0 {
        let first = first_error(|r| match r {
            RecordResult::Rejected {
                index,
                error: Some(error),
            } => Some((*index, error)),
            _ => None,
        });
        let mut error = format!("every record was rejected; {first}");
        if tally.rejected > DESCRIBED_REJECTIONS {
            error.push_str(&format!(
                "; reasons are given for the first {DESCRIBED_REJECTIONS} rejected records only"
            ));
        }
        (StatusCode::UNPROCESSABLE_ENTITY, Some(error))
    } else {
        (StatusCode::OK, None)
    }
}

fn respond(state: &AppState, results: Vec<RecordResult>) -> Response {
    let tally = Tally::of(&results);
    let Tally {
        accepted,
        rejected,
        rate_limited,
        failed,
    } = tally;
    state.accepted.fetch_add(accepted as u64, Ordering::Relaxed);
    let metrics = &state.metrics;
    metrics.count_records(RecordOutcome::Accepted, accepted);
    metrics.count_records(RecordOutcome::Rejected, rejected);
    metrics.count_records(RecordOutcome::RateLimited, rate_limited);
    metrics.count_records(RecordOutcome::Failed, failed);

    let (status, error) = status_of(tally, &results);
    note_broker_health(state, failed, accepted, error.as_deref());
    tracing::debug!(accepted, rejected, rate_limited, failed, %status, "ingested");

    // 503 asks for the broker's usual pause; rate-limited records (also in a 200) for the
    // longest wait among them.
    let limited_wait = results
        .iter()
        .filter_map(|r| match r {
            RecordResult::RateLimited { retry_after, .. } => Some(*retry_after),
            _ => None,
        })
        .max();
    let retry_after = if status == StatusCode::SERVICE_UNAVAILABLE {
        Some(
            limited_wait
                .unwrap_or(RETRY_AFTER_SECS)
                .max(RETRY_AFTER_SECS),
        )
    } else {
        limited_wait
    };
    let report = IngestReport {
        error,
        accepted,
        rejected,
        rate_limited,
        failed,
        results,
    };
    let mut response = (status, Json(report)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// Logs when the broker stops acknowledging and when it starts again, once each.
fn note_broker_health(state: &AppState, failed: usize, accepted: usize, error: Option<&str>) {
    if failed > 0 {
        if !state.broker_failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "the broker does not acknowledge records; answering 503"
            );
        }
    } else if accepted > 0 && state.broker_failing.swap(false, Ordering::Relaxed) {
        tracing::info!("the broker acknowledges records again");
    }
}
