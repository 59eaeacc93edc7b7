//! The dashboard's answers hold to their schemas: every key documented, every required key
//! there, JSON types and enums as described; the stream's frames as described.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::app::{AppState, app};
use fleet_common::wire::{Bin, Granularity, Histogram, Sensor};

use crate::dashboard::fixtures::{summary, window};
use crate::dashboard::messages::Incoming;
use crate::dashboard::{Dashboard, DashboardLimits, MapArea};
use crate::test_support::{FakeBroker, Mode, settings};

/// `schema` (OpenAPI 3.0) as JSON Schema 2020-12, as strict as the document means it: a
/// `nullable` type also takes `null`, and an object schema that does not say otherwise takes no
/// key it does not list ("every key documented").
fn json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .filter(|(key, _)| *key != "nullable")
                .map(|(key, value)| (key.clone(), json_schema(value)))
                .collect();
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(kind)) = map.get("type") {
                    out.insert("type".into(), serde_json::json!([kind, "null"]));
                }
                if let Some(Value::Array(allowed)) = out.get_mut("enum") {
                    allowed.push(Value::Null);
                }
            }
            if map.get("type").and_then(Value::as_str) == Some("object")
                && !map.contains_key("additionalProperties")
            {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(json_schema).collect()),
        other => other.clone(),
    }
}

/// Where `value` departs from the schema `name` of `doc` (its `$ref`s resolved in `doc`), one
/// line each: a key the schema does not list, a required key missing, a JSON type or enum value
/// not described, as the `jsonschema` crate finds them.
fn departures(doc: &Value, name: &str, value: &Value) -> Vec<String> {
    assert!(
        doc["components"]["schemas"][name].is_object(),
        "no schema {name}"
    );
    let schema = serde_json::json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": { "schemas": json_schema(&doc["components"]["schemas"]) },
    });
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&schema)
        .unwrap_or_else(|e| panic!("schema {name}: {e}"));
    validator
        .iter_errors(value)
        .map(|e| format!("{name}{}: {e}", e.instance_path()))
        .collect()
}

/// Asserts that `value` holds to the schema `name`.
fn assert_holds(doc: &Value, name: &str, value: &Value) {
    let out = departures(doc, name, value);
    assert!(out.is_empty(), "{name}:\n{}\n{value:#}", out.join("\n"));
}

fn now() -> DateTime<Utc> {
    "2026-11-21T10:00:10Z".parse().unwrap()
}

/// A dashboard with two vehicles, a per-second and a per-minute window and a histogram.
fn dashboard() -> Arc<Dashboard> {
    let dashboard = Arc::new(Dashboard::new(
        MapArea::default(),
        DashboardLimits::default(),
        7,
    ));
    dashboard.apply(
        [
            summary("1M8GDM9AXKP042788", "Volvo", "XC40", 3, 2),
            summary("1M8GDM9AXKP042789", "Ford", "Transit", 5, 9),
            window(Granularity::Second, now(), 4, 2, Some(2.5)),
            window(Granularity::Minute, now(), 4, 2, None),
            Incoming::Histogram(Histogram {
                sensor: Sensor::TemperatureC,
                window_start: now(),
                bins: vec![
                    Bin {
                        lower: None,
                        count: 1,
                    },
                    Bin {
                        lower: Some(20.0),
                        count: 3,
                    },
                ],
            }),
        ],
        now(),
    );
    dashboard.set_reader_error(Some("no metadata for telemetry.summary".into()));
    dashboard
}

fn router(broker: Arc<FakeBroker>, dashboard: Arc<Dashboard>) -> axum::Router {
    app(AppState::new(broker, settings()).with_dashboard(dashboard))
}

async fn body_json(response: axum::response::Response) -> Value {
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn document(router: axum::Router) -> Value {
    let request = Request::get("/openapi.json").body(Body::empty()).unwrap();
    body_json(router.oneshot(request).await.unwrap()).await
}

#[tokio::test]
async fn the_events_json_holds_to_its_schema_also_when_the_broker_is_away() {
    let dashboard = dashboard();
    let up = FakeBroker::new(Mode::Ack);
    let doc = document(router(up.clone(), dashboard.clone())).await;
    let away = Arc::new(FakeBroker {
        mode: Mode::Ack,
        ready: false,
        appended: Mutex::default(),
    });
    for (broker, status) in [
        (up, StatusCode::OK),
        (away, StatusCode::SERVICE_UNAVAILABLE),
    ] {
        let request = Request::get("/events")
            .header(header::ACCEPT, "application/json")
            .body(Body::empty())
            .unwrap();
        let response = router(broker, dashboard.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), status);
        let schema = &doc["paths"]["/events"]["get"]["responses"][status.as_str()]["content"]["application/json"]
            ["schema"];
        // A 503 is the broker's (EventCounts) or the load shedder's (Error).
        let schema = schema.get("anyOf").map_or(schema, |any_of| &any_of[0]);
        assert_eq!(schema["$ref"], "#/components/schemas/EventCounts");
        let counts = body_json(response).await;
        assert_eq!(counts["vehicles"].as_array().unwrap().len(), 2, "{counts}");
        assert_holds(&doc, "EventCounts", &counts);
    }
}

/// The next SSE event of `body`: its id and data; asserts its name and retry.
async fn next_event(body: &mut axum::body::BodyDataStream) -> (String, Value) {
    let frame = body.next().await.unwrap().unwrap();
    let frame = String::from_utf8(frame.to_vec()).unwrap();
    let field = |name: &str| {
        frame
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {name} in {frame}"))
            .to_owned()
    };
    assert_eq!(field("event"), "view");
    assert_eq!(field("retry"), "1000");
    let data: Value = serde_json::from_str(&field("data")).unwrap();
    (field("id"), data)
}

#[tokio::test]
async fn the_stream_sends_described_frames_of_described_updates() {
    let dashboard = dashboard();
    let broker = FakeBroker::new(Mode::Ack);
    let doc = document(router(broker.clone(), dashboard.clone())).await;
    let stream = &doc["paths"]["/events/stream"]["get"];
    let parameters: Vec<&str> = stream["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(parameters, ["sort", "order", "page", "page_size"]);
    let media = &stream["responses"]["200"]["content"]["text/event-stream"];
    assert_eq!(
        media["x-event-data"]["$ref"],
        "#/components/schemas/DashboardUpdate"
    );

    // A query the table cannot answer: 400, as described.
    // A page above the stated maximum is refused whether or not it fits the server's integers.
    for query in [
        "sort=colour",
        "page=-1",
        "page=4294967296",
        "page=423446726173949630397546496",
        "page_size=0",
        "page_size=101",
    ] {
        let request = Request::get(format!("/events/stream?{query}"))
            .body(Body::empty())
            .unwrap();
        let response = router(broker.clone(), dashboard.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(stream["responses"]["400"].is_object());
        assert!(body_json(response).await["error"].is_string());
    }

    let request = Request::get("/events/stream?sort=vin&order=asc&page_size=1&page=1")
        .body(Body::empty())
        .unwrap();
    let response = router(broker, dashboard.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/event-stream"
    );
    let mut body = response.into_body().into_data_stream();
    let (id, first) = next_event(&mut body).await;
    assert_eq!(id, "7", "before the first tick: the current id");
    assert_holds(&doc, "DashboardUpdate", &first);
    assert_eq!(first["table"]["rows"][0]["vin"], "1M8GDM9AXKP042789");
    assert_eq!(first["table"]["pages"], 2);

    // The next tick reaches the open stream, with the same page, described as well.
    let frame = dashboard.tick(Default::default(), now());
    let (id, update) = next_event(&mut body).await;
    assert_eq!(id, frame.id.to_string());
    assert_eq!(update["table"]["page"], 1);
    assert_eq!(
        update["table"]["rows"][0]["trail"][0],
        serde_json::json!([9, -9])
    );
    assert_holds(&doc, "DashboardUpdate", &update);
}

#[test]
fn the_schema_check_finds_departures() {
    let doc = serde_json::json!({ "components": { "schemas": { "S": {
        "type": "object",
        "additionalProperties": false,
        "required": ["a"],
        "properties": {
            "a": { "type": "integer" },
            "k": { "type": "string", "enum": ["x"] },
            "n": { "type": "string", "nullable": true },
            "o": { "type": "object", "properties": {} }
        }
    } } } });
    let value = serde_json::json!({ "a": "one", "k": "y", "z": 1 });
    let out = departures(&doc, "S", &value);
    assert_eq!(out.len(), 3, "{out:?}");
    let out = departures(&doc, "S", &serde_json::json!({}));
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(
        out[0].starts_with("S: ") && out[0].contains("\"a\""),
        "{out:?}"
    );
    // `nullable` takes null; an object schema takes no key it does not list.
    assert!(departures(&doc, "S", &serde_json::json!({ "a": 1, "n": null })).is_empty());
    let out = departures(
        &doc,
        "S",
        &serde_json::json!({ "a": 1, "o": { "extra": 1 } }),
    );
    assert_eq!(out.len(), 1, "{out:?}");
}
