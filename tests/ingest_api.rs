//! Ingest's HTTP contract against a real broker: one stack launched through the real `fleet`
//! binary (`launch-infra`, no vehicles), then every status code of `POST /events` through
//! ingest's published port, records read back from the broker on the host at the partition and
//! offset ingest reported, a retried event stored once in `diag`, and finally a broker outage
//! under continuous load: every 2xx must be in the topic, and the outage must show as 503 with
//! `Retry-After`.
//!
//! The stack must also recover by itself: ingest acknowledges again after the broker is back
//! (Tansu 0.6.0 loses the producer's state on `docker stop`; ingest's producer then fails with a
//! gap-less guarantee error and is replaced by one with a new producer id), and the topic can be
//! read from the host through the broker's host listener (which reconnects to the restarted
//! broker).
//!
//! Hostile input (issue 14): a body of more records than `ingest.max_records_per_request` is 413
//! in a small answer, and values the database cannot hold (`seq` past `bigint`, NUL, a time
//! before 1970) are 422 without reaching the topic.
//!
//! 429 (`ingest.rate_limit_per_vin`) and 401/403 (`ingest.tokens_file`) need their own config,
//! so `tests/ingest_auth.rs` covers them on a stack of its own.
//!
//! Each check is a test of its own (`harness = false`, see `support::scenarios`), so the first
//! failure does not hide the others; they share one stack, which runs under a name
//! (`ingest-api-t-<pid>`) and host ports of its own and is torn down after the last check, also
//! when an assertion failed.
//!
//! Over 500 lines: one scenario list with the broker readers it needs; the checks share those
//! helpers and one stack, so they stay in one file.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use fleet_common::wire::{IngestReport, RecordResult};
use fleet_common::{EventTime, TelemetryEvent, Vin};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::TestStack;
use uuid::Uuid;

/// Body limit of the test stack's ingest (`FLEET_INGEST__MAX_BODY_BYTES`).
const MAX_BODY_BYTES: usize = 4096;
/// Records-per-request cap of the test stack's ingest (`FLEET_INGEST__MAX_RECORDS_PER_REQUEST`):
/// above any body of real events that fits [`MAX_BODY_BYTES`], far below one of tiny elements.
const MAX_RECORDS_PER_REQUEST: usize = 100;
/// Topic ingest produces to (`[broker] topic`).
const TOPIC: &str = "telemetry";

/// A valid event of vehicle `serial`, event time now, a fresh `event_id`.
fn event(serial: u64, seq: u64) -> Value {
    let e = TelemetryEvent::example(
        Uuid::new_v4(),
        Vin::from_serial("YV1", serial),
        seq,
        EventTime(Utc::now()),
    );
    serde_json::to_value(e).expect("an event serializes")
}

fn event_id(event: &Value) -> String {
    event["event_id"].as_str().expect("event_id").to_owned()
}

/// A response: status, `Retry-After`, JSON body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

/// `POST /events` on the stack's ingest, always on 127.0.0.1.
#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    url: String,
}

impl Api {
    fn new(port: u16) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("HTTP client"),
            url: format!("http://127.0.0.1:{port}/events"),
        }
    }

    async fn try_post(
        &self,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> reqwest::Result<Answer> {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        let response = request.send().await?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Answer {
            status,
            retry_after,
            body,
        })
    }

    async fn post(&self, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> Answer {
        let answer = self
            .try_post(content_type, encoding, body)
            .await
            .expect("POST /events answers");
        eprintln!("POST /events -> {} {}", answer.status, answer.body);
        answer
    }

    async fn post_json(&self, body: &Value) -> Answer {
        self.post("application/json", None, body.to_string().into_bytes())
            .await
    }
}

/// The `results` of a report, checked to be `ok` with a partition and offset, as
/// `(partition, offset)` in body order.
fn ok_positions(answer: &Answer, expected: usize) -> Vec<(i32, i64)> {
    let report: IngestReport = serde_json::from_value(answer.body.clone())
        .unwrap_or_else(|e| panic!("not a report ({e}): {}", answer.body));
    assert_eq!(report.results.len(), expected, "{}", answer.body);
    report
        .results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let &RecordResult::Ok {
                index,
                partition,
                offset,
            } = r
            else {
                panic!("record {i}: {r:?} is not ok");
            };
            assert_eq!(index, i, "record {i}: {r:?}");
            assert!(partition >= 0 && offset >= 0, "{r:?}");
            (partition, offset)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Reading the broker from the host.

fn kafka_config(bootstrap: &str) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("ingest-api-reader-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    config
}

/// The records at `positions`, as JSON, read from the host.
async fn read_at(bootstrap: &str, positions: Vec<(i32, i64)>) -> Vec<Value> {
    let config = kafka_config(bootstrap);
    tokio::task::spawn_blocking(move || {
        use rdkafka::Message;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        positions
            .into_iter()
            .map(|(partition, offset)| {
                let consumer: BaseConsumer = config.create().expect("consumer");
                let mut tpl = rdkafka::TopicPartitionList::new();
                tpl.add_partition_offset(TOPIC, partition, rdkafka::Offset::Offset(offset))
                    .expect("partition offset");
                consumer.assign(&tpl).expect("assign");
                let started = Instant::now();
                loop {
                    assert!(
                        started.elapsed() < Duration::from_secs(60),
                        "no record at {partition}/{offset} within 60 s"
                    );
                    if let Some(message) = consumer.poll(Duration::from_millis(500)) {
                        let Ok(message) = message.inspect_err(|e| eprintln!("reading: {e}")) else {
                            continue;
                        };
                        assert_eq!(message.partition(), partition);
                        assert_eq!(message.offset(), offset);
                        break serde_json::from_slice(message.payload().unwrap_or_default())
                            .expect("a JSON record");
                    }
                }
            })
            .collect()
    })
    .await
    .expect("reader task")
}

/// Every record of the topic, all partitions, from the low to the high watermark: the set of
/// `event_id`s and the number of records. `None` when the broker gives no metadata and
/// watermarks within `patience`.
async fn read_whole_topic(
    bootstrap: &str,
    patience: Duration,
) -> Option<(BTreeSet<String>, usize)> {
    let config = kafka_config(bootstrap);
    let bootstrap = bootstrap.to_owned();
    tokio::task::spawn_blocking(move || {
        use rdkafka::Message;
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let consumer: BaseConsumer = config.create().expect("consumer");
        // The broker may just have been restarted: retry metadata and watermarks for a while.
        let started = Instant::now();
        let watermarks = loop {
            match fleet_orchestrator::probes::partition_ranges(&bootstrap, TOPIC) {
                Ok(w) if !w.is_empty() => break w,
                other => {
                    if started.elapsed() > patience {
                        eprintln!(
                            "no metadata and watermarks of {TOPIC} in {patience:?}: {other:?}"
                        );
                        return None;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        };
        let mut tpl = rdkafka::TopicPartitionList::new();
        let mut remaining = HashMap::new();
        for (partition, low, high) in watermarks {
            eprintln!("{TOPIC}/{partition}: offsets {low}..{high}");
            if high > low {
                tpl.add_partition_offset(TOPIC, partition, rdkafka::Offset::Offset(low))
                    .expect("partition offset");
                remaining.insert(partition, high);
            }
        }
        consumer.assign(&tpl).expect("assign");
        let mut ids = BTreeSet::new();
        let mut records = 0;
        let mut first_seen: HashMap<String, (i32, i64)> = HashMap::new();
        let started = Instant::now();
        while !remaining.is_empty() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the topic was not read to its high watermarks in 120 s; left: {remaining:?}"
            );
            let Some(message) = consumer.poll(Duration::from_millis(500)) else {
                continue;
            };
            // Transport errors (e.g. `AllBrokersDown` right after a restart) are transient
            // here; the deadline above bounds the wait.
            let message = match message {
                Ok(message) => message,
                Err(e) => {
                    eprintln!("reading {TOPIC} from the host: {e} (retrying)");
                    std::thread::sleep(Duration::from_millis(500));
                    continue;
                }
            };
            records += 1;
            let value: Value =
                serde_json::from_slice(message.payload().unwrap_or_default()).expect("JSON");
            let id = value["event_id"].as_str().expect("event_id").to_owned();
            if let Some((p, o)) = first_seen.get(&id) {
                eprintln!(
                    "{TOPIC}: event {id} at {}/{} is a second copy of {p}/{o}",
                    message.partition(),
                    message.offset()
                );
            } else {
                first_seen.insert(id.clone(), (message.partition(), message.offset()));
            }
            ids.insert(id);
            if remaining
                .get(&message.partition())
                .is_some_and(|high| message.offset() + 1 >= *high)
            {
                remaining.remove(&message.partition());
            }
        }
        Some((ids, records))
    })
    .await
    .expect("reader task")
}

// ---------------------------------------------------------------------------------------------
// The checks.

/// 200 for one event and for an array, each record's partition and offset pointing at it in
/// the broker.
async fn accepted_events_are_in_the_broker(api: &Api, bootstrap: &str) {
    let one = event(1, 0);
    let answer = api.post_json(&one).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["accepted"], 1);
    assert_eq!(answer.body["rejected"], 0);
    assert!(answer.retry_after.is_none());
    let positions = ok_positions(&answer, 1);

    let batch: Vec<Value> = (0..5).map(|i| event(2 + i, 0)).collect();
    let answer = api.post_json(&json!(batch)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["accepted"], 5);
    let batch_positions = ok_positions(&answer, 5);

    let sent: Vec<String> = std::iter::once(&one).chain(&batch).map(event_id).collect();
    let stored = read_at(bootstrap, [positions, batch_positions].concat()).await;
    let stored: Vec<String> = stored.iter().map(event_id).collect();
    assert_eq!(
        stored, sent,
        "the broker holds each event where ingest said"
    );
}

/// A batch with bad records: 200, the good ones stored (read back), the bad ones named by index
/// with their field and rule.
async fn partial_batch(api: &Api, bootstrap: &str) {
    let good_a = event(10, 0);
    let good_b = event(11, 0);
    let mut bad_vin = event(12, 0);
    // Same VIN with a wrong check digit (position 9).
    let vin = bad_vin["vin"].as_str().unwrap().to_owned();
    let wrong = if &vin[8..9] == "0" { "1" } else { "0" };
    bad_vin["vin"] = format!("{}{wrong}{}", &vin[..8], &vin[9..]).into();
    let mut bad_speed = event(13, 0);
    bad_speed["speed"] = 500.0.into();
    let mut unknown = event(14, 0);
    unknown["colour"] = "red".into();

    let body = json!([good_a, bad_vin, good_b, bad_speed, unknown]);
    let answer = api.post_json(&body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.body["accepted"], 2);
    assert_eq!(answer.body["rejected"], 3);
    let results = answer.body["results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    let expect_rejected = [
        (1, ["vin", "check digit"]),
        (3, ["speed", "outside"]),
        (4, ["colour", "unknown field"]),
    ];
    for (index, words) in expect_rejected {
        let r = &results[index];
        assert_eq!(r["status"], "rejected", "{r}");
        assert_eq!(r["index"], index, "{r}");
        let error = r["error"].as_str().expect("error text");
        for word in words {
            assert!(
                error.contains(word),
                "record {index}: {error:?} lacks {word:?}"
            );
        }
    }
    let mut positions = Vec::new();
    for index in [0, 2] {
        let r = &results[index];
        assert_eq!(r["status"], "ok", "{r}");
        positions.push((
            r["partition"].as_i64().unwrap() as i32,
            r["offset"].as_i64().unwrap(),
        ));
    }
    let stored: Vec<String> = read_at(bootstrap, positions)
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(stored, [event_id(&good_a), event_id(&good_b)]);
}

/// 400, 413, 415, 422: the whole body refused, with a reason that says why.
async fn refused_bodies(api: &Api) {
    // 400: malformed JSON, named by line and column.
    let answer = api
        .post("application/json", None, b"[\n  {\"vin\": }\n]".to_vec())
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let error = answer.body["error"].as_str().expect("error");
    assert!(error.contains("line 2 column 11"), "{error}");

    // 413: over INGEST_MAX_BODY_BYTES.
    let big: Vec<Value> = (0..30).map(|i| event(20 + i, 0)).collect();
    let big = json!(big).to_string().into_bytes();
    assert!(big.len() > MAX_BODY_BYTES);
    let answer = api.post("application/json", None, big.clone()).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let error = answer.body["error"].as_str().expect("error");
    assert!(error.contains("INGEST_MAX_BODY_BYTES"), "{error}");
    // Also when it only inflates past the limit.
    let answer = api
        .post("application/json", Some("gzip"), support::gzip(&big))
        .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);

    // 415: a content type ingest does not read.
    let one = event(40, 0).to_string().into_bytes();
    let answer = api.post("text/plain", None, one.clone()).await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let error = answer.body["error"].as_str().expect("error");
    assert!(error.contains("application/json"), "{error}");

    // 422: every record invalid; the field and rule are named.
    let mut bad = event(41, 0);
    let vin = bad["vin"].as_str().unwrap().to_owned();
    let wrong = if &vin[8..9] == "0" { "1" } else { "0" };
    bad["vin"] = format!("{}{wrong}{}", &vin[..8], &vin[9..]).into();
    let answer = api.post_json(&bad).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = answer.body["error"].as_str().expect("error");
    assert!(
        error.contains("`vin`") && error.contains("check digit"),
        "{error}"
    );
    let result = &answer.body["results"][0];
    assert_eq!(result["status"], "rejected", "{result}");

    let mut bad = event(42, 0);
    bad["sensors"]["humidity_pct"] = 140.0.into();
    let answer = api.post_json(&bad).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let error = answer.body["error"].as_str().expect("error");
    assert!(error.contains("sensors.humidity_pct"), "{error}");
}

/// Issue 14, item 1: the record amplification body (`[0,0,...]`, which gzip shrinks a
/// thousandfold), scaled to this stack's 4 KiB body limit: 2,030 elements used to be 2,030
/// records and a 422 of 2,030 results. Now it is 413 naming the cap, in a small answer.
async fn too_many_records(api: &Api) {
    let zeros = format!("[{}0]", "0,".repeat(2_029));
    for encoding in [Some("gzip"), None] {
        let body = match encoding {
            Some(_) => support::gzip(zeros.as_bytes()),
            None => zeros.clone().into_bytes(),
        };
        // Within the body limit as sent.
        assert!(body.len() <= MAX_BODY_BYTES, "{} bytes", body.len());
        let answer = api.post("application/json", encoding, body).await;
        assert_eq!(
            answer.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{}",
            answer.body
        );
        let error = answer.body["error"].as_str().expect("error");
        let cap = format!("more than {MAX_RECORDS_PER_REQUEST} records");
        assert!(
            error.contains(&cap) && error.contains("ingest.max_records_per_request"),
            "{error}"
        );
        assert!(answer.body.to_string().len() < 1_000, "{}", answer.body);
    }
}

/// The high watermark of every partition of the topic, read from the host.
async fn high_watermarks(bootstrap: &str) -> Vec<(i32, i64)> {
    let bootstrap = bootstrap.to_owned();
    tokio::task::spawn_blocking(move || {
        fleet_orchestrator::probes::partition_ranges(&bootstrap, TOPIC)
            .expect("the topic's watermarks")
            .into_iter()
            .map(|(partition, _, high)| (partition, high))
            .collect()
    })
    .await
    .expect("watermark task")
}

/// Issue 14, item 2: values the `diag` columns cannot hold used to get 200 with a partition and
/// offset and then went to the dead-letter topic. Now each is 422 naming the field (the shared
/// validation of ingest and consumer), and nothing reaches the topic.
async fn unstorable_values(api: &Api, bootstrap: &str) {
    let before = high_watermarks(bootstrap).await;
    let cases = [
        ("seq", json!(1_u64 << 63), "larger than 9223372036854775807"),
        ("make", json!("Vol\u{0}vo"), "NUL character"),
        ("ts", json!(-1e11), "-1199-"),
    ];
    for (i, (field, value, rule)) in cases.into_iter().enumerate() {
        let mut hostile = event(60 + i as u64, 0);
        hostile[field] = value;
        let answer = api.post_json(&hostile).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.body
        );
        assert_eq!(answer.body["accepted"], 0);
        let error = answer.body["results"][0]["error"].as_str().expect("error");
        assert!(
            error.starts_with(&format!("field `{field}`: ")) && error.contains(rule),
            "{error}"
        );
    }
    // The old client's form body is under the same rules.
    let form = format!(
        "timestamp={}&make=Vol%00vo&model=XC40&position_x=1&position_y=2&position_z=3\
         &speed=10&vin=QWERTYUIOPASDFGH1",
        Utc::now().timestamp()
    );
    let answer = api
        .post("application/x-www-form-urlencoded", None, form.into_bytes())
        .await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );
    let error = answer.body["error"].as_str().expect("error");
    assert!(error.contains("field `make`: contains a NUL"), "{error}");
    assert_eq!(
        high_watermarks(bootstrap).await,
        before,
        "nothing was written to {TOPIC}"
    );
}

/// gzip and NDJSON bodies are accepted and land in the broker.
async fn gzip_and_ndjson(api: &Api, bootstrap: &str) {
    let batch: Vec<Value> = (0..3).map(|i| event(50 + i, 0)).collect();
    let answer = api
        .post(
            "application/json",
            Some("gzip"),
            support::gzip(json!(batch).to_string().as_bytes()),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let positions = ok_positions(&answer, 3);
    let stored: Vec<String> = read_at(bootstrap, positions)
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(stored, batch.iter().map(event_id).collect::<Vec<_>>());

    let lines: Vec<Value> = (0..3).map(|i| event(60 + i, 0)).collect();
    let ndjson = lines
        .iter()
        .map(|e| format!("{e}\n"))
        .collect::<String>()
        .into_bytes();
    let answer = api.post("application/x-ndjson", None, ndjson.clone()).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let positions = ok_positions(&answer, 3);
    let stored: Vec<String> = read_at(bootstrap, positions)
        .await
        .iter()
        .map(event_id)
        .collect();
    assert_eq!(stored, lines.iter().map(event_id).collect::<Vec<_>>());

    // NDJSON, gzipped.
    let answer = api
        .post("application/x-ndjson", Some("gzip"), support::gzip(&ndjson))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

/// The same event posted twice (a client retry) is stored once in `diag`. A later event of the
/// same vehicle (same key, so same partition, after both copies) shows that the consumer got
/// past both copies.
async fn retried_post_is_stored_once(api: &Api, stack: &TestStack) {
    let retried = event(70, 0);
    let id = event_id(&retried);
    let first = api.post_json(&retried).await;
    let second = api.post_json(&retried).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(second.status, StatusCode::OK);
    let (p1, o1) = ok_positions(&first, 1)[0];
    let (p2, o2) = ok_positions(&second, 1)[0];
    assert_eq!(p1, p2, "same key, same partition");
    assert!(o2 > o1, "the retry is a second record in the broker");

    let after = event(70, 1);
    let after_id = event_id(&after);
    assert_eq!(api.post_json(&after).await.status, StatusCode::OK);

    let pg = stack.postgres().await;
    let started = Instant::now();
    loop {
        let rows: i64 = pg
            .query_one(
                "SELECT count(*) FROM diag WHERE event_id = $1::text::uuid",
                &[&after_id],
            )
            .await
            .expect("query diag")
            .get(0);
        if rows == 1 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the consumer did not store {after_id} in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rows: i64 = pg
        .query_one(
            "SELECT count(*) FROM diag WHERE event_id = $1::text::uuid",
            &[&id],
        )
        .await
        .expect("query diag")
        .get(0);
    assert_eq!(rows, 1, "the retried event {id} is stored exactly once");
}

/// What one POST of the outage test got.
#[derive(Debug)]
struct Outcome {
    event_id: String,
    phase: &'static str,
    status: Option<StatusCode>,
    retry_after: Option<String>,
    error: Option<String>,
}

/// Posts one event at a time from `clients` tasks until `stop`, recording each outcome with the
/// phase it started in.
fn start_load(
    api: &Api,
    clients: u64,
    stop: Arc<AtomicBool>,
    phase: Arc<std::sync::Mutex<&'static str>>,
) -> Vec<tokio::task::JoinHandle<Vec<Outcome>>> {
    (0..clients)
        .map(|client| {
            let (api, stop, phase) = (api.clone(), stop.clone(), phase.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                let started = Instant::now();
                let mut seq = 0;
                // Bounded: never longer than 90 s, whatever the driver does.
                while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(90) {
                    let event = event(1000 + client, seq);
                    seq += 1;
                    let now_phase = *phase.lock().unwrap();
                    let body = event.to_string().into_bytes();
                    let outcome = match api.try_post("application/json", None, body).await {
                        Ok(answer) => Outcome {
                            event_id: event_id(&event),
                            phase: now_phase,
                            status: Some(answer.status),
                            retry_after: answer.retry_after,
                            error: answer.body["error"].as_str().map(str::to_owned),
                        },
                        Err(e) => {
                            eprintln!("client {client}: {e}");
                            Outcome {
                                event_id: event_id(&event),
                                phase: now_phase,
                                status: None,
                                retry_after: None,
                                error: Some(e.to_string()),
                            }
                        }
                    };
                    outcomes.push(outcome);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                outcomes
            })
        })
        .collect()
}

/// The broker goes away under load and comes back: some requests get 503 with `Retry-After`,
/// and every event that got a 2xx is in the topic.
async fn broker_outage(api: &Api, stack: &TestStack, bootstrap: &str) {
    use bollard::query_parameters::StopContainerOptionsBuilder;

    let docker = bollard::Docker::connect_with_local_defaults()
        .expect("Docker client")
        .negotiate_version()
        .await
        .expect("the Docker engine answers");
    let broker = format!("{}-broker", stack.name);
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(std::sync::Mutex::new("before"));
    let set_phase = |p: &'static str| {
        *phase.lock().unwrap() = p;
        eprintln!("outage test: phase {p}");
    };
    let clients = start_load(api, 4, stop.clone(), phase.clone());

    tokio::time::sleep(Duration::from_secs(5)).await;
    set_phase("down");
    docker
        .stop_container(
            &broker,
            Some(StopContainerOptionsBuilder::default().t(5).build()),
        )
        .await
        .expect("stop the broker");
    eprintln!("outage test: broker stopped");
    tokio::time::sleep(Duration::from_secs(10)).await;
    set_phase("restarting");
    docker
        .start_container(&broker, None)
        .await
        .expect("start the broker");
    eprintln!("outage test: broker started");
    set_phase("after");
    tokio::time::sleep(Duration::from_secs(10)).await;
    // Keep going (bounded) until the broker acknowledges again, so that the end of the outage
    // is part of the evidence.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(45) && ingest_503s_now(api).await {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut outcomes = Vec::new();
    for client in clients {
        outcomes.extend(client.await.expect("client task"));
    }

    let mut tally: BTreeMap<(&str, String), usize> = BTreeMap::new();
    let mut samples: BTreeMap<(&str, String), &str> = BTreeMap::new();
    for o in &outcomes {
        let status = o.status.map_or("no answer".to_owned(), |s| s.to_string());
        if let Some(error) = &o.error {
            samples.entry((o.phase, status.clone())).or_insert(error);
        }
        *tally.entry((o.phase, status)).or_default() += 1;
    }
    eprintln!("outage test: outcomes by phase and status: {tally:?}");
    eprintln!("outage test: first error by phase and status: {samples:#?}");
    stack.fleet(&["logs", "ingest", "--tail", "30"]).await;
    print_broker_log(stack).await;

    let unavailable: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status == Some(StatusCode::SERVICE_UNAVAILABLE))
        .collect();
    assert!(
        !unavailable.is_empty(),
        "no request got 503 while the broker was down: {tally:?}"
    );
    for o in &unavailable {
        let secs: u64 = o
            .retry_after
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("503 without a numeric Retry-After: {o:?}"));
        assert!(secs >= 1, "{o:?}");
    }
    let acked: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.status.is_some_and(|s| s.is_success()))
        .collect();
    assert!(
        acked.iter().any(|o| o.phase == "before"),
        "nothing was acknowledged before the outage: {tally:?}"
    );
    // Ingest replaces a producer that librdkafka declared unusable (the broker lost its state)
    // and the broker's host listener reconnects by itself, so the stack recovers unaided.
    assert!(
        acked.iter().any(|o| o.phase == "after"),
        "ingest acknowledged nothing after the broker came back: {tally:?}"
    );
    let (in_topic, records) = read_whole_topic(bootstrap, Duration::from_secs(60))
        .await
        .expect("the topic can be read from the host after the broker restarted");
    let missing: Vec<&str> = acked
        .iter()
        .map(|o| o.event_id.as_str())
        .filter(|id| !in_topic.contains(*id))
        .collect();
    let late = unavailable
        .iter()
        .filter(|o| in_topic.contains(&o.event_id))
        .count();
    eprintln!(
        "outage test: {} acknowledged, {} answered 503 ({late} of those reached the topic anyway), \
         topic holds {records} records / {} distinct event ids",
        acked.len(),
        unavailable.len(),
        in_topic.len()
    );
    assert!(
        missing.is_empty(),
        "{} acknowledged events are not in the broker: {missing:?}",
        missing.len()
    );
}

/// The broker's log without the repetitive per-request storage errors: start-up, panics,
/// warnings, and how many lines were left out.
async fn print_broker_log(stack: &TestStack) {
    let output = stack
        .fleet_quiet(&["logs", "broker", "--tail", "5000"])
        .await;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    let mut left_out = 0;
    eprintln!("--- broker log (storage errors per request left out)");
    for line in text.lines() {
        if line.contains("UnableToSend") || line.contains("SendError") {
            left_out += 1;
        } else {
            eprintln!("{line}");
        }
    }
    eprintln!("--- end of broker log; {left_out} `UnableToSend`/`SendError` lines left out");
}

/// One probe POST: whether ingest still answers 503.
async fn ingest_503s_now(api: &Api) -> bool {
    let probe = event(999, 0).to_string().into_bytes();
    match api.try_post("application/json", None, probe).await {
        Ok(answer) => answer.status == StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => true,
    }
}

/// What every scenario gets: the stack (torn down when the last scenario is done), the Kafka
/// bootstrap address on the host and the API client.
struct Shared {
    stack: TestStack,
    bootstrap: String,
    api: Api,
}

/// Launches the stack the scenarios share.
async fn launch() -> Shared {
    let stack = TestStack::new(
        "ingest-api-t",
        &[
            ("FLEET_INGEST__MAX_BODY_BYTES", &MAX_BODY_BYTES.to_string()),
            (
                "FLEET_INGEST__MAX_RECORDS_PER_REQUEST",
                &MAX_RECORDS_PER_REQUEST.to_string(),
            ),
            // Short, so that an outage shows as 503 quickly.
            ("FLEET_INGEST__PRODUCE_TIMEOUT", "2s"),
        ],
    );
    let out = stack.fleet_ok(&["launch-infra"]).await;
    assert!(
        out.contains(&format!("127.0.0.1:{}", stack.ingest_port)),
        "{out}"
    );
    let bootstrap = stack.kafka_bootstrap().await;
    let api = Api::new(stack.ingest_port);
    Shared {
        stack,
        bootstrap,
        api,
    }
}

/// Each check is a test of its own on one shared stack; the broker outage comes last, as it
/// stops and starts the broker.
fn main() -> std::process::ExitCode {
    use support::scenarios::{run, scenario};
    run(
        launch(),
        vec![
            // 200: one event and an array, read back at partition/offset.
            scenario(
                "accepted_events_are_in_the_broker",
                |s: Arc<Shared>| async move {
                    accepted_events_are_in_the_broker(&s.api, &s.bootstrap).await;
                },
            ),
            // 200: a batch with bad records.
            scenario("partial_batch", |s: Arc<Shared>| async move {
                partial_batch(&s.api, &s.bootstrap).await;
            }),
            // 400, 413, 415, 422.
            scenario("refused_bodies", |s: Arc<Shared>| async move {
                refused_bodies(&s.api).await;
            }),
            scenario("gzip_and_ndjson", |s: Arc<Shared>| async move {
                gzip_and_ndjson(&s.api, &s.bootstrap).await;
            }),
            // 413: more records than the cap (the amplification body).
            scenario("too_many_records", |s: Arc<Shared>| async move {
                too_many_records(&s.api).await;
            }),
            // 422: values the database cannot hold, nothing produced.
            scenario("unstorable_values", |s: Arc<Shared>| async move {
                unstorable_values(&s.api, &s.bootstrap).await;
            }),
            scenario("retried_post_is_stored_once", |s: Arc<Shared>| async move {
                retried_post_is_stored_once(&s.api, &s.stack).await;
            }),
            // Under load.
            scenario("broker_outage", |s: Arc<Shared>| async move {
                broker_outage(&s.api, &s.stack, &s.bootstrap).await;
            }),
        ],
    )
}
