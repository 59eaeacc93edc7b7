//! The router end to end, with the broker faked: request parsing, validation and status mapping.
//!
//! Over 500 lines: one list of request/answer cases through the whole router, sharing the fake
//! broker and the request helpers above the first case; each case is a few lines, and split
//! they would only repeat those helpers.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use serde_json::{Value, json};
use tower::ServiceExt;

use super::app;
use crate::test_support::{FakeBroker, Mode, event_json, state};

async fn send(
    broker: &Arc<FakeBroker>,
    request: Request<Body>,
) -> (StatusCode, Option<String>, String) {
    let response = app(state(broker.clone())).oneshot(request).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        retry_after,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

fn post(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post("/events");
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(body.into()).unwrap()
}

fn post_json(body: &Value) -> Request<Body> {
    post(Some("application/json"), body.to_string())
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[tokio::test]
async fn one_valid_event_is_produced_keyed_by_vin() {
    let broker = FakeBroker::new(Mode::Ack);
    let event = event_json(7);
    let (status, _, body) = send(&broker, post_json(&event)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        json_of(&body),
        json!({"accepted": 1, "rejected": 0, "results": [
            {"index": 0, "status": "ok", "partition": 1, "offset": 0}
        ]})
    );
    let appended = broker.appended.lock().unwrap();
    assert_eq!(appended.len(), 1);
    assert_eq!(appended[0].0, event["vin"].as_str().unwrap());
    let produced: Value = serde_json::from_slice(&appended[0].1).unwrap();
    assert_eq!(produced["event_id"], event["event_id"]);
    assert_eq!(produced["ts"], "2025-06-01T12:00:00.000000Z");
}

#[tokio::test]
async fn mixed_batch_reports_each_record_in_order() {
    let broker = FakeBroker::new(Mode::Ack);
    let mut bad = event_json(2);
    bad["speed"] = json!(-3.0);
    let body = json!([event_json(1), bad, event_json(3)]);
    let (status, _, body) = send(&broker, post_json(&body)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let report = json_of(&body);
    assert_eq!(report["accepted"], 2);
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["results"][1]["status"], "rejected");
    assert!(
        report["results"][1]["error"]
            .as_str()
            .unwrap()
            .starts_with("field `speed`: -3"),
        "{report}"
    );
    assert_eq!(report["results"][2]["offset"], 1);
    let keys: Vec<String> = broker
        .appended
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        keys,
        [
            event_json(1)["vin"].as_str().unwrap(),
            event_json(3)["vin"].as_str().unwrap()
        ]
    );
}

#[tokio::test]
async fn all_invalid_is_422_naming_field_and_rule() {
    let broker = FakeBroker::new(Mode::Ack);
    let mut bad = event_json(1);
    bad["sensors"]["pressure_hpa"] = json!(5.0);
    let (status, _, body) = send(&broker, post_json(&json!([bad]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let error = json_of(&body)["error"].as_str().unwrap().to_owned();
    assert!(error.contains("field `sensors.pressure_hpa`"), "{error}");
    assert!(error.contains("outside [300, 1100]"), "{error}");
    assert!(broker.appended.lock().unwrap().is_empty());

    let (status, _, _) = send(&broker, post_json(&json!([]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn malformed_json_is_400_with_line_and_column() {
    let broker = FakeBroker::new(Mode::Ack);
    let (status, _, body) = send(&broker, post(Some("application/json"), "{\n\"vin\": tru")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let error = json_of(&body)["error"].as_str().unwrap().to_owned();
    assert!(
        error.starts_with("malformed JSON at line 2 column"),
        "{error}"
    );

    let (status, _, _) = send(&broker, post(Some("application/json"), "\"just a string\"")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_or_missing_content_type_is_415() {
    let broker = FakeBroker::new(Mode::Ack);
    let body = event_json(1).to_string();
    for content_type in [Some("text/plain"), Some("multipart/form-data"), None] {
        let (status, _, text) = send(&broker, post(content_type, body.clone())).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}: {text}"
        );
    }
}

#[tokio::test]
async fn oversized_body_is_413() {
    let broker = FakeBroker::new(Mode::Ack);
    let body = json!((0..40).map(event_json).collect::<Vec<_>>()).to_string();
    assert!(body.len() > 4096);
    let (status, _, text) = send(&broker, post(Some("application/json"), body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(broker.appended.lock().unwrap().is_empty());
}

#[tokio::test]
async fn broker_failure_is_503_with_retry_after() {
    for mode in [Mode::Fail, Mode::Hang] {
        let broker = FakeBroker::new(mode);
        let (status, retry_after, body) =
            send(&broker, post_json(&json!([event_json(1), event_json(2)]))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{mode:?}: {body}");
        assert_eq!(retry_after.as_deref(), Some("1"), "{mode:?}");
        let report = json_of(&body);
        assert_eq!(report["failed"], 2, "{report}");
        assert_eq!(report["accepted"], 0, "{report}");
        assert_eq!(report["results"][0]["status"], "failed", "{report}");
    }
}

#[tokio::test]
async fn ndjson_is_accepted() {
    let broker = FakeBroker::new(Mode::Ack);
    let body = format!("{}\n{}\n", event_json(1), event_json(2));
    let (status, _, text) = send(&broker, post(Some("application/x-ndjson"), body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(json_of(&text)["accepted"], 2);
}

#[tokio::test]
async fn get_events_negotiates_json_and_html() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = app(state(broker.clone()));
    // One accepted record, then the counts.
    let response = router
        .clone()
        .oneshot(post_json(&event_json(1)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let request = Request::get("/events")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let got = serde_json::from_slice::<Value>(&body).unwrap();
    let counts = json!({
        "events_received": 42,
        "accepted_by_this_replica": 1,
        "topic": "telemetry",
        "partitions": [
            {"partition": 0, "low": 0, "high": 12},
            {"partition": 1, "low": 0, "high": 30}
        ]
    });
    for (key, want) in counts.as_object().unwrap() {
        assert_eq!(&got[key], want, "{key}");
    }
    assert!(got.get("error").is_none());
    // The fleet figures (nothing read from the output topics in this test).
    assert_eq!(
        (&got["events_stored"], &got["vehicles_total"]),
        (&json!(0), &json!(0))
    );

    let request = Request::get("/events")
        .header(header::ACCEPT, "text/html,*/*;q=0.8")
        .body(Body::empty())
        .unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let page = String::from_utf8(body.to_vec()).unwrap();
    assert!(page.contains(r#"id="received">42<"#), "{page}");
}

#[tokio::test]
async fn health_and_readiness() {
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let ready = FakeBroker::new(Mode::Ack);
    assert_eq!(send(&ready, get("/healthz")).await.0, StatusCode::OK);
    assert_eq!(send(&ready, get("/readyz")).await.0, StatusCode::OK);

    let down = Arc::new(FakeBroker {
        mode: Mode::Fail,
        ready: false,
        appended: Default::default(),
    });
    assert_eq!(send(&down, get("/healthz")).await.0, StatusCode::OK);
    let (status, _, body) = send(&down, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("all brokers are down"), "{body}");
    let json_get = Request::get("/events")
        .header(header::ACCEPT, "application/json")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&down, json_get).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    // The page still renders and shows the error.
    let (status, _, page) = send(&down, get("/events")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("all brokers are down"), "{page}");
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn post_gzip(body: Vec<u8>) -> Request<Body> {
    Request::post("/events")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn gzip_body_is_inflated() {
    let broker = FakeBroker::new(Mode::Ack);
    let body = json!([event_json(1), event_json(2)]).to_string();
    let (status, _, text) = send(&broker, post_gzip(gzip(body.as_bytes()))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(json_of(&text)["accepted"], 2);
    assert_eq!(broker.appended.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn gzip_inflating_past_the_limit_is_413() {
    let broker = FakeBroker::new(Mode::Ack);
    // Compresses far below the 4 KiB limit, inflates far above it.
    let body = json!((0..40).map(|_| event_json(1)).collect::<Vec<_>>()).to_string();
    let compressed = gzip(body.as_bytes());
    assert!(compressed.len() < 4096 && body.len() > 4096);
    let (status, _, text) = send(&broker, post_gzip(compressed)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(text.contains("inflates to more than 4096 bytes"), "{text}");
    assert!(broker.appended.lock().unwrap().is_empty());
}

#[tokio::test]
async fn corrupt_gzip_is_400_and_other_codings_415() {
    let broker = FakeBroker::new(Mode::Ack);
    let (status, _, text) = send(&broker, post_gzip(b"{\"not\": \"gzip\"}".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("inflating the gzip request body"), "{text}");

    let request = Request::post("/events")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_ENCODING, "br")
        .body(Body::from(event_json(1).to_string()))
        .unwrap();
    let (status, _, text) = send(&broker, request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{text}");
    assert!(broker.appended.lock().unwrap().is_empty());
}

#[tokio::test]
async fn metrics_count_requests_records_and_latency() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = app(state(broker.clone()));
    let mut bad = event_json(3);
    bad["speed"] = json!(-1.0);
    let requests = [
        post_json(&json!([event_json(1), event_json(2), bad])),
        post(Some("text/plain"), "x"),
        Request::get("/nowhere").body(Body::empty()).unwrap(),
    ];
    for request in requests {
        router.clone().oneshot(request).await.unwrap();
    }
    let response = router
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    for line in [
        r#"ingest_http_requests_total{method="POST",path="/events",code="200"} 1"#,
        r#"ingest_http_requests_total{method="POST",path="/events",code="415"} 1"#,
        r#"ingest_http_requests_total{method="GET",path="unmatched",code="404"} 1"#,
        r#"ingest_records_total{outcome="accepted"} 2"#,
        r#"ingest_records_total{outcome="rejected"} 1"#,
        r#"ingest_records_total{outcome="failed"} 0"#,
        r#"ingest_produce_latency_seconds_bucket{le="+Inf"} 2"#,
        "ingest_produce_latency_seconds_count 2",
        "ingest_producer_queue_depth 3",
        "ingest_producer_replacements_total 1",
        "# TYPE ingest_produce_latency_seconds histogram",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
    }
}

fn rate_limited_state(broker: &Arc<FakeBroker>, per_second: u32) -> crate::app::AppState {
    crate::app::AppState::new(
        broker.clone(),
        crate::app::Settings {
            rate_limit_per_vin: per_second,
            ..crate::test_support::settings()
        },
    )
}

#[tokio::test]
async fn records_over_the_vin_rate_are_429_in_the_results() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = app(rate_limited_state(&broker, 2));
    // Three events of vehicle 1 and one of vehicle 2: the third of vehicle 1 is over its rate.
    let body = json!([event_json(1), event_json(1), event_json(2), event_json(1)]);
    let response = router.clone().oneshot(post_json(&body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let report: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(report["accepted"], 3, "{report}");
    assert_eq!(report["rate_limited"], 1, "{report}");
    let limited = &report["results"][3];
    assert_eq!(limited["status"], "rate_limited", "{report}");
    assert_eq!(limited["code"], 429, "{report}");
    assert_eq!(limited["retry_after"], 1, "{report}");
    assert_eq!(broker.appended.lock().unwrap().len(), 3);

    // Vehicle 1 again at once: every record is over its rate, so the request is 429.
    let response = router
        .clone()
        .oneshot(post_json(&json!([event_json(1)])))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    assert_eq!(broker.appended.lock().unwrap().len(), 3);

    let metrics = router
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let text = axum::body::to_bytes(metrics.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(
        text.contains("ingest_records_total{outcome=\"rate_limited\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains(r#"ingest_http_requests_total{method="POST",path="/events",code="429"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn invalid_records_take_no_tokens_and_zero_means_off() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = app(rate_limited_state(&broker, 1));
    let body = json!([bad_speed(1), bad_speed(1), event_json(1)]);
    let response = router.oneshot(post_json(&body)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::RETRY_AFTER).is_none());

    // Off (the default): many events of one vehicle all pass.
    let many = json!((0..8).map(|_| event_json(4)).collect::<Vec<_>>());
    let (status, retry_after, text) = send(&broker, post_json(&many)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(retry_after, None);
    assert_eq!(json_of(&text)["accepted"], 8);
}

#[tokio::test]
async fn a_new_rate_holds_for_the_next_request_and_in_the_document() {
    let broker = FakeBroker::new(Mode::Ack);
    let state = rate_limited_state(&broker, 1);
    let router = app(state.clone());
    let one = || post_json(&json!([event_json(9)]));
    let status = |response: axum::response::Response| response.status();
    assert_eq!(
        status(router.clone().oneshot(one()).await.unwrap()),
        StatusCode::OK
    );
    assert_eq!(
        status(router.clone().oneshot(one()).await.unwrap()),
        StatusCode::TOO_MANY_REQUESTS
    );
    let rate_text = |doc: &Value| {
        doc["paths"]["/events"]["post"]["description"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(rate_text(&openapi_of(router.clone()).await).contains("1 events/s per VIN now"));

    // Raised live: the same vehicle's bucket refills at the new rate.
    state.rate_limiter.set_per_second(1_000);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert_eq!(
        status(router.clone().oneshot(one()).await.unwrap()),
        StatusCode::OK
    );
    // Off: any number passes.
    state.rate_limiter.set_per_second(0);
    let many = json!((0..8).map(|_| event_json(9)).collect::<Vec<_>>());
    let response = router.clone().oneshot(post_json(&many)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::RETRY_AFTER).is_none());
    assert!(rate_text(&openapi_of(router).await).contains("off now"));
}

fn bad_speed(serial: u64) -> Value {
    let mut event = event_json(serial);
    event["speed"] = json!(-1.0);
    event
}

const TOKEN_OF_1: &str = "token-of-vehicle-1-0123456789";
const DASHBOARD_TOKEN: &str = "token-of-the-dashboard-0123";

fn tokens() -> crate::auth::Tokens {
    let vin = event_json(1)["vin"].as_str().unwrap().to_owned();
    crate::auth::Tokens::parse(
        std::path::Path::new("tokens"),
        &format!("{vin} {TOKEN_OF_1}\ndashboard {DASHBOARD_TOKEN}\n"),
    )
    .unwrap()
}

fn authed_router(broker: &Arc<FakeBroker>) -> axum::Router {
    app(state(broker.clone()).with_tokens(tokens(), true))
}

fn post_with_token(token: Option<&str>, body: &Value) -> Request<Body> {
    let mut request = Request::post("/events").header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Body::from(body.to_string())).unwrap()
}

#[tokio::test]
async fn missing_or_bad_token_is_401_with_challenge() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = authed_router(&broker);
    for token in [None, Some("not-the-token-0123456789")] {
        let response = router
            .clone()
            .oneshot(post_with_token(token, &json!([event_json(1)])))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="fleet-ingest""#
        );
    }
    // 401 comes before the body is looked at.
    let request = Request::post("/events")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("x"))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(broker.appended.lock().unwrap().is_empty());
    // Reading stays open.
    let response = router
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_token_covers_only_its_own_vehicle() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = authed_router(&broker);
    let response = router
        .clone()
        .oneshot(post_with_token(
            Some(TOKEN_OF_1),
            &json!([event_json(1), event_json(1)]),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(broker.appended.lock().unwrap().len(), 2);

    // One record of another vehicle refuses the whole request.
    let response = router
        .clone()
        .oneshot(post_with_token(
            Some(TOKEN_OF_1),
            &json!([event_json(1), event_json(2)]),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let error = serde_json::from_slice::<Value>(&body).unwrap()["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.starts_with("record 1 is of vehicle "), "{error}");
    assert_eq!(broker.appended.lock().unwrap().len(), 2);

    // An invalid record is rejected as usual, whatever its VIN.
    let mut other = bad_speed(2);
    other["vin"] = json!("not a vin");
    let response = router
        .oneshot(post_with_token(
            Some(TOKEN_OF_1),
            &json!([event_json(1), other]),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn openapi_of(router: axum::Router) -> Value {
    let response = router
        .oneshot(Request::get("/openapi.json").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

/// Every `$ref` in `value`, as JSON pointers into the document.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_describes_every_route_and_status() {
    let broker = FakeBroker::new(Mode::Ack);
    let doc = openapi_of(app(state(broker.clone()))).await;
    assert_eq!(doc["openapi"], "3.0.3");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        paths,
        [
            "/events",
            "/events/stream",
            "/healthz",
            "/metrics",
            "/openapi.json",
            "/readyz"
        ]
    );
    let post_codes: Vec<&str> = doc["paths"]["/events"]["post"]["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        post_codes,
        [
            "200", "400", "401", "403", "408", "413", "415", "422", "429", "503"
        ]
    );
    assert_eq!(doc["paths"]["/events"]["post"]["security"], json!([]));
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let pointer = target.strip_prefix('#').unwrap();
        assert!(doc.pointer(pointer).is_some(), "dangling {target}");
    }

    // Every GET route answers with a status the document lists.
    for path in [
        "/events",
        "/events/stream",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
    ] {
        let response = app(state(broker.clone()))
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let code = response.status().as_str().to_owned();
        assert!(
            doc["paths"][path]["get"]["responses"][&code].is_object(),
            "GET {path} answered {code}, undocumented"
        );
    }

    // A real report carries what the schema requires, with documented statuses and fields.
    let router = app(rate_limited_state(&broker, 1));
    let response = router
        .oneshot(post_json(&json!([
            event_json(5),
            event_json(5),
            bad_speed(6)
        ])))
        .await
        .unwrap();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let report: Value = serde_json::from_slice(&body).unwrap();
    let schemas = &doc["components"]["schemas"];
    for key in schemas["IngestReport"]["required"].as_array().unwrap() {
        assert!(report.get(key.as_str().unwrap()).is_some(), "{key} missing");
    }
    for key in report.as_object().unwrap().keys() {
        assert!(
            schemas["IngestReport"]["properties"][key].is_object(),
            "{key}"
        );
    }
    let statuses = schemas["RecordResult"]["properties"]["status"]["enum"]
        .as_array()
        .unwrap();
    for result in report["results"].as_array().unwrap() {
        assert!(statuses.contains(&result["status"]), "{result}");
        for key in result.as_object().unwrap().keys() {
            assert!(
                schemas["RecordResult"]["properties"][key].is_object(),
                "{key}"
            );
        }
    }
}

#[tokio::test]
async fn openapi_requires_the_bearer_token_when_tokens_are_on() {
    let broker = FakeBroker::new(Mode::Ack);
    let doc = openapi_of(authed_router(&broker)).await;
    assert_eq!(
        doc["paths"]["/events"]["post"]["security"],
        json!([{"bearer": []}])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// A request body that sends `first` and then nothing more, ever; `polled` turns true once
/// anyone reads it.
fn hanging_body(first: &'static str, polled: Arc<std::sync::atomic::AtomicBool>) -> Body {
    use futures::StreamExt;
    let stream = futures::stream::once(async move {
        polled.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(first.as_bytes()))
    })
    .chain(futures::stream::pending());
    Body::from_stream(stream)
}

fn limited_router(
    broker: &Arc<FakeBroker>,
    timeout_ms: u64,
    max_concurrent: usize,
) -> axum::Router {
    app(
        state(broker.clone()).with_request_limits(crate::shedding::RequestLimits {
            timeout: std::time::Duration::from_millis(timeout_ms),
            max_concurrent,
        }),
    )
}

fn slow_post(polled: Arc<std::sync::atomic::AtomicBool>) -> Request<Body> {
    Request::post("/events")
        .header(header::CONTENT_TYPE, "application/json")
        .body(hanging_body("[", polled))
        .unwrap()
}

#[tokio::test]
async fn a_body_that_never_ends_is_408_after_the_request_timeout() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = limited_router(&broker, 300, 8);
    let started = std::time::Instant::now();
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        router.oneshot(slow_post(Arc::default())),
    )
    .await
    .expect("answered, not hanging")
    .unwrap();
    assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert_eq!(response.headers()[header::CONNECTION], "close");
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let error = json_of(std::str::from_utf8(&body).unwrap())["error"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(error.contains("ingest.request_timeout"), "{error}");
    assert!(broker.appended.lock().unwrap().is_empty());
}

#[tokio::test]
async fn requests_over_the_cap_are_503_with_retry_after_and_the_cap_frees_up() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = limited_router(&broker, 500, 2);
    let slow: Vec<_> = (0..2)
        .map(|_| tokio::spawn(router.clone().oneshot(slow_post(Arc::default()))))
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    for request in [
        post_json(&event_json(1)),
        Request::get("/events/stream").body(Body::empty()).unwrap(),
        Request::get("/openapi.json").body(Body::empty()).unwrap(),
    ] {
        let response = router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = std::str::from_utf8(&body).unwrap();
        assert!(body.contains("ingest.max_concurrent_requests"), "{body}");
    }
    // The probes stay outside the cap.
    let health = router
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert!(broker.appended.lock().unwrap().is_empty());
    // The slow ones time out and free their places.
    for slow in slow {
        let response = slow.await.unwrap().unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
    }
    let response = router.oneshot(post_json(&event_json(1))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bad_token_is_401_before_the_body_is_read() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = authed_router(&broker);
    for token in [None, Some("not-the-token-0123456789")] {
        let polled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut request = slow_post(polled.clone());
        if let Some(token) = token {
            request.headers_mut().insert(
                header::AUTHORIZATION,
                format!("Bearer {token}").parse().unwrap(),
            );
        }
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            router.clone().oneshot(request),
        )
        .await
        .expect("refused at once, without waiting for the body")
        .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(
            !polled.load(std::sync::atomic::Ordering::SeqCst),
            "the body was read"
        );
    }
    // A dashboard token cannot send events.
    let response = router
        .oneshot(post_with_token(
            Some(DASHBOARD_TOKEN),
            &json!([event_json(1)]),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(broker.appended.lock().unwrap().is_empty());
}

async fn status_of_get(router: &axum::Router, uri: &str, token: Option<&str>) -> StatusCode {
    let mut request = Request::get(uri).header(header::ACCEPT, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    if response.status() == StatusCode::UNAUTHORIZED {
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="fleet-ingest""#
        );
    }
    response.status()
}

#[tokio::test]
async fn the_dashboard_needs_a_dashboard_token_when_tokens_are_on() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = authed_router(&broker);
    for uri in ["/events", "/events/stream"] {
        assert_eq!(
            status_of_get(&router, uri, None).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_of_get(&router, uri, Some("not-the-token-0123456789")).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_of_get(&router, uri, Some(TOKEN_OF_1)).await,
            StatusCode::FORBIDDEN,
            "a vehicle's token does not show the fleet"
        );
        assert_eq!(
            status_of_get(&router, uri, Some(DASHBOARD_TOKEN)).await,
            StatusCode::OK
        );
        // A browser passes it as the query parameter.
        let with_query = format!("{uri}?access_token={DASHBOARD_TOKEN}");
        assert_eq!(
            status_of_get(&router, &with_query, None).await,
            StatusCode::OK
        );
        let wrong_query = format!("{uri}?access_token={TOKEN_OF_1}");
        assert_eq!(
            status_of_get(&router, &wrong_query, None).await,
            StatusCode::FORBIDDEN
        );
    }
    // The page passes the token on to its stream.
    let response = router
        .clone()
        .oneshot(
            Request::get(format!("/events?access_token={DASHBOARD_TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&page).contains(r#"get("access_token")"#));
    // Probes and the description stay open.
    for uri in ["/healthz", "/openapi.json", "/metrics"] {
        assert_eq!(
            status_of_get(&router, uri, None).await,
            StatusCode::OK,
            "{uri}"
        );
    }

    // Configured open, the dashboard needs no token while POST still does.
    let open = app(state(broker.clone()).with_tokens(tokens(), false));
    for uri in ["/events", "/events/stream"] {
        assert_eq!(
            status_of_get(&open, uri, None).await,
            StatusCode::OK,
            "{uri}"
        );
    }
    let response = open
        .oneshot(post_with_token(None, &json!([event_json(1)])))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// A router with `settings` changed from the test defaults by `change`.
fn router_with(broker: &Arc<FakeBroker>, change: fn(&mut crate::app::Settings)) -> axum::Router {
    let mut settings = crate::test_support::settings();
    change(&mut settings);
    app(crate::app::AppState::new(broker.clone(), settings))
}

async fn answer(router: axum::Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn records_past_the_cap_are_413_naming_the_cap() {
    let broker = FakeBroker::new(Mode::Ack);
    // The test settings allow 10 records per request.
    let body = json!((0..11).map(event_json).collect::<Vec<_>>());
    let (status, _, text) = send(&broker, post_json(&body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    let error = json_of(&text)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains("more than 10 records")
            && error.contains("ingest.max_records_per_request")
            && error.contains("INGEST_MAX_RECORDS_PER_REQUEST"),
        "{error}"
    );
    let lines: String = (0..11).map(|i| format!("{}\n", event_json(i))).collect();
    let (status, _, text) = send(&broker, post(Some("application/x-ndjson"), lines)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(broker.appended.lock().unwrap().is_empty());
    // At the cap all is well.
    let body = json!((0..10).map(event_json).collect::<Vec<_>>());
    let (status, _, text) = send(&broker, post_json(&body)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[tokio::test]
async fn the_amplification_body_is_413_in_a_small_answer() {
    // The reported body: 524,287 zeros, 1 MiB inflated, about 1 KiB as gzip.
    let broker = FakeBroker::new(Mode::Ack);
    let router = router_with(&broker, |s| {
        s.max_body_bytes = 1_048_576;
        s.max_records_per_request = 1_000;
    });
    let zeros = format!("[{}0]", "0,".repeat(524_286));
    let compressed = gzip(zeros.as_bytes());
    assert!(compressed.len() < 2_000, "{}", compressed.len());
    let (status, text) = answer(router, post_gzip(compressed)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
    assert!(text.contains("more than 1000 records"), "{text}");
    assert!(text.len() < 1_000, "{} bytes", text.len());
    assert!(broker.appended.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_answer_about_many_bad_records_stays_small() {
    let broker = FakeBroker::new(Mode::Ack);
    let router = router_with(&broker, |s| {
        s.max_body_bytes = 1_048_576;
        s.max_records_per_request = 1_000;
    });
    // 999 zeros and one record with a 100,000-character unknown field: every record rejected.
    let mut huge = event_json(1);
    huge["x".repeat(100_000)] = json!(1);
    let mut records = vec![huge];
    records.extend((1..1_000).map(|_| json!(0)));
    let (status, text) = answer(router, post_json(&json!(records))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // About 40 bytes per record, however long the reasons.
    assert!(text.len() < 50_000, "{} bytes", text.len());
    let report = json_of(&text);
    assert_eq!(report["rejected"], 1_000);
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 1_000, "one entry per record");
    let first = results[0]["error"].as_str().unwrap();
    assert!(first.starts_with("field `xxx"), "{}", &first[..50]);
    assert!(
        first.ends_with("more bytes)") && first.len() < 400,
        "{first}"
    );
    let error = report["error"].as_str().unwrap();
    assert!(
        error.len() < 500
            && error.ends_with("reasons are given for the first 20 rejected records only"),
        "{error}"
    );
    let described = crate::routes::ingest::DESCRIBED_REJECTIONS;
    for (i, result) in results.iter().enumerate().take(described).skip(1) {
        assert_eq!(result["index"], i);
        assert_eq!(result["status"], "rejected");
        let error = result["error"].as_str().unwrap();
        assert!(error.contains("invalid type: integer"), "{i}: {error}");
    }
    for (i, result) in results.iter().enumerate().skip(described) {
        assert_eq!(result, &json!({"index": i, "status": "rejected"}));
    }
    assert!(broker.appended.lock().unwrap().is_empty());
}

#[tokio::test]
async fn values_the_database_cannot_hold_are_422_naming_the_field() {
    let broker = FakeBroker::new(Mode::Ack);
    let mut seq = event_json(1);
    seq["seq"] = json!(1_u64 << 63);
    let mut nul = event_json(2);
    nul["make"] = json!("Vol\u{0}vo");
    let mut ancient = event_json(3);
    ancient["ts"] = json!(-1e11);
    let (status, _, text) = send(&broker, post_json(&json!([seq, nul, ancient]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    let report = json_of(&text);
    let error = |i: usize| report["results"][i]["error"].as_str().unwrap().to_owned();
    assert!(
        error(0).starts_with("field `seq`: 9223372036854775808 is larger than"),
        "{}",
        error(0)
    );
    assert!(
        error(1).starts_with("field `make`: contains a NUL character"),
        "{}",
        error(1)
    );
    assert!(error(2).starts_with("field `ts`: -1199-"), "{}", error(2));
    // The old client's form is under the same rules.
    let form = "timestamp=1748779200&make=Vol%00vo&model=XC40&position_x=1&position_y=2\
                &position_z=3&speed=10&vin=QWERTYUIOPASDFGH1";
    let (status, _, text) = send(
        &broker,
        post(Some("application/x-www-form-urlencoded"), form),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(
        text.contains("field `make`: contains a NUL character"),
        "{text}"
    );
    assert!(broker.appended.lock().unwrap().is_empty());
}
