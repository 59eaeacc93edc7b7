//! The dashboard's part of the API description: `GET /events` (its JSON) and
//! `GET /events/stream` (Server-Sent Events), and the schemas of their figures.

use serde_json::{Map, Value, json};

use crate::auth::ACCESS_TOKEN_PARAM;
use crate::dashboard::state::{
    HISTOGRAM_WINDOWS_KEPT, MAX_LISTED, MINUTES_KEPT, ONLINE_WITHIN, SECONDS_KEPT, TRAIL_LEN,
};
use crate::routes::stream::RETRY;
use crate::routes::watch::VEHICLES_LISTED;

/// The keys every dashboard answer has: the topic's counts, the fleet's figures and vehicles.
const FIGURES_REQUIRED: [&str; 8] = [
    "events_received",
    "accepted_by_this_replica",
    "partitions",
    "events_stored",
    "vehicles_total",
    "vehicles_online",
    "map",
    "vehicles",
];

/// What both dashboard operations share when the dashboard needs a token (`auth`): the
/// security requirement, the `access_token` parameter and the 401 and 403 answers.
fn with_auth(mut operation: Value, auth: bool, unauthorized: &Value, error: &Value) -> Value {
    if !auth {
        return operation;
    }
    operation["security"] = json!([{ "bearer": [] }, { "access_token": [] }]);
    operation["responses"]["401"] = unauthorized.clone();
    let mut forbidden = error.clone();
    forbidden["description"] = json!(
        "The token is a vehicle's: the dashboard needs a `dashboard` token of INGEST_TOKENS_FILE."
    );
    operation["responses"]["403"] = forbidden;
    operation
}

/// `GET /events`; `auth`: whether it needs a dashboard token; `unauthorized` and `error` are
/// the 401 answer and an error answer of the document.
pub(super) fn get_events(auth: bool, unauthorized: &Value, error: &Value) -> Value {
    let operation = json!({
        "operationId": "getEvents",
        "summary": "The live fleet dashboard: JSON (the topic's counts and the fleet's figures) when the Accept header prefers application/json, else the dashboard page, which follows GET /events/stream.",
        "responses": {
            "200": {
                "description": "The counts and figures (JSON), or the page (HTML, also when the broker cannot be asked; it shows the error).",
                "content": {
                    "application/json": { "schema": { "$ref": "#/components/schemas/EventCounts" } },
                    "text/html": { "schema": { "type": "string" } }
                }
            },
            "503": {
                "description": "JSON only: the broker could not be asked; `error` says why (the fleet's figures are still there).",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/EventCounts" } } }
            }
        }
    });
    with_auth(operation, auth, unauthorized, error)
}

/// `GET /events/stream`, as [`get_events`].
pub(super) fn get_stream(auth: bool, unauthorized: &Value, error: &Value) -> Value {
    let retry_ms = RETRY.as_millis();
    let operation = json!({
        "operationId": "streamEvents",
        "summary": "The dashboard's live updates as Server-Sent Events, one per second.",
        "description": format!(
            "Every SSE event carries `id` (increasing, also across restarts of ingest), `event` (`snapshot` or `delta`), `retry: {retry_ms}` and `data`: one DashboardUpdate as JSON (see `x-event-data`). A new stream starts with a snapshot (the most recently seen vehicles, with their trails, as many as fit in INGEST_DASHBOARD_MAX_MESSAGE_BYTES; `vehicles_omitted` counts the others), then one delta per second (the figures whole, the vehicles changed since the previous update as far as they fit, the rest in the next deltas, and in `gone` the vehicles forgotten after INGEST_DASHBOARD_VEHICLE_TTL without an event). Reconnecting with Last-Event-ID gets exactly the deltas missed while they are kept (the last INGEST_DASHBOARD_RESUME_UPDATES), nothing until the next tick when up to date, and a new snapshot otherwise (an id too old, unknown or from an earlier run); a stream that falls behind also gets a new snapshot. Comment lines keep an idle connection alive."
        ),
        "parameters": [{
            "name": "Last-Event-ID",
            "in": "header",
            "required": false,
            "description": "The id of the last update received (a whole number), sent by a reconnecting EventSource; anything else counts as absent.",
            "schema": { "type": "string" }
        }],
        "responses": {
            "200": {
                "description": "The stream; it stays open.",
                "content": {
                    "text/event-stream": {
                        "schema": {
                            "type": "object",
                            "description": "One SSE event: its `id:`, `event:`, `retry:` and `data:` lines; `data` is a DashboardUpdate as JSON (see `x-event-data`).",
                            "required": ["data"],
                            "properties": {
                                "id": { "type": "string" },
                                "event": { "type": "string", "enum": ["snapshot", "delta"] },
                                "retry": { "type": "integer", "minimum": 0 },
                                "data": { "type": "string", "contentMediaType": "application/json" }
                            }
                        },
                        "x-event-data": { "$ref": "#/components/schemas/DashboardUpdate" }
                    }
                }
            }
        }
    });
    with_auth(operation, auth, unauthorized, error)
}

/// The `access_token` security scheme: a dashboard token in the query, for browsers.
pub(super) fn access_token_scheme() -> Value {
    json!({
        "type": "apiKey",
        "in": "query",
        "name": ACCESS_TOKEN_PARAM,
        "description": "A `dashboard` token of INGEST_TOKENS_FILE as the RFC 6750 query parameter, for a browser's page and its EventSource (which cannot send headers). The page passes it on to its stream."
    })
}

/// The schemas `EventCounts`, `DashboardUpdate` and the ones they use.
pub(super) fn schemas() -> Map<String, Value> {
    let event_counts = object(
        [
            topic_properties(),
            fleet_properties(),
            props(json!({
                "topic": { "type": "string" },
                "vehicles": {
                    "type": "array",
                    "items": { "$ref": "#/components/schemas/Vehicle" },
                    "description": format!("The {VEHICLES_LISTED} most recently seen vehicles, newest first.")
                }
            })),
        ],
        &[&["topic"][..], &FIGURES_REQUIRED].concat(),
    );
    let update = object(
        [
            props(json!({
                "id": { "type": "integer", "format": "int64", "description": "The SSE event id." },
                "kind": { "type": "string", "enum": ["snapshot", "delta"], "description": "The SSE event name: a snapshot replaces the client's picture, a delta amends it." },
                "at": { "type": "string", "format": "date-time", "description": "When the update was made." },
                "vehicles": {
                    "type": "array",
                    "items": { "$ref": "#/components/schemas/Vehicle" },
                    "description": "Snapshot: the most recently seen vehicles that fit in the message cap, newest first. Delta: vehicles whose summary changed since the previous update (those that did not fit follow in the next deltas)."
                },
                "gone": {
                    "type": "array",
                    "items": { "type": "string" },
                    "description": "Delta only, when any: VINs forgotten since the previous update (no event for INGEST_DASHBOARD_VEHICLE_TTL)."
                },
                "vehicles_omitted": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Snapshot only, when any: vehicles left out to stay under INGEST_DASHBOARD_MAX_MESSAGE_BYTES; they arrive with their next change."
                },
                "trails": {
                    "type": "object",
                    "additionalProperties": { "type": "array", "items": { "$ref": "#/components/schemas/Point" } },
                    "description": format!("Snapshot only: per VIN its last {TRAIL_LEN} positions, oldest first.")
                }
            })),
            topic_properties(),
            fleet_properties(),
        ],
        &[&["id", "kind", "at"][..], &FIGURES_REQUIRED].concat(),
    );
    let window = object(
        [props(json!({
            "window_start": { "type": "string", "format": "date-time", "description": "Start of the window (event time)." },
            "events": { "type": "integer", "format": "int64" },
            "vehicles": { "type": "integer", "format": "int64", "description": "Distinct vehicles." },
            "mean_speed": { "type": "number", "nullable": true, "description": "m/s." }
        }))],
        &["window_start", "events", "vehicles"],
    );
    let vehicle = object(
        [props(json!({
            "vin": { "type": "string" },
            "make": { "type": "string", "description": "Of its latest event." },
            "model": { "type": "string", "description": "Of its latest event." },
            "first_seen": { "type": "string", "format": "date-time", "description": "Earliest event time." },
            "last_seen": { "type": "string", "format": "date-time", "description": "Greatest event time." },
            "events": { "type": "integer", "format": "int64", "description": "Events stored for it." },
            "last_position": {
                "type": "object",
                "additionalProperties": false,
                "required": ["x", "y"],
                "properties": {
                    "x": { "type": "number", "description": "Metres east of the area's origin." },
                    "y": { "type": "number", "description": "Metres north of the area's origin." }
                }
            },
            "last_speed": { "type": "number", "description": "m/s, at its latest event." }
        }))],
        &[
            "vin",
            "make",
            "model",
            "first_seen",
            "last_seen",
            "events",
            "last_position",
            "last_speed",
        ],
    );
    let count = |model: bool| {
        let mut p = props(json!({
            "make": { "type": "string" },
            "vehicles": { "type": "integer", "minimum": 0, "description": "Vehicles whose latest event names it." },
            "events": { "type": "integer", "format": "int64", "description": "Events stored for those vehicles." }
        }));
        let mut required = vec!["make", "vehicles", "events"];
        if model {
            p.insert("model".into(), json!({ "type": "string" }));
            required.push("model");
        }
        object([p], &required)
    };
    let histogram = object(
        [props(json!({
            "sensor": { "type": "string", "enum": ["temperature_c", "humidity_pct", "pressure_hpa"] },
            "window_start": { "type": "string", "format": "date-time", "description": "Start of the minute window." },
            "bins": { "type": "array", "items": {
                "type": "object",
                "additionalProperties": false,
                "required": ["count"],
                "properties": {
                    "lower": { "type": "number", "nullable": true, "description": "Lower bound; null for the bin below the range." },
                    "count": { "type": "integer", "format": "int64" }
                }
            }, "description": "Bins with at least one event, lowest first." }
        }))],
        &["sensor", "window_start", "bins"],
    );
    let map = object(
        [props(json!({
            "origin_lat": { "type": "number", "description": "Latitude of the origin (x = y = 0)." },
            "origin_lon": { "type": "number", "description": "Longitude of the origin." },
            "radius_m": { "type": "number", "description": "Radius of the simulated area, metres." }
        }))],
        &["origin_lat", "origin_lon", "radius_m"],
    );
    let partition = object(
        [props(json!({
            "partition": { "type": "integer" },
            "low": { "type": "integer", "format": "int64", "description": "Oldest offset still stored." },
            "high": { "type": "integer", "format": "int64", "description": "Offset of the next record." }
        }))],
        &["partition", "low", "high"],
    );
    let point = json!({
        "type": "array",
        "items": { "type": "number" },
        "minItems": 2,
        "maxItems": 2,
        "description": "[x, y] in metres from the area's origin."
    });
    Map::from_iter([
        ("EventCounts".to_owned(), event_counts),
        ("DashboardUpdate".to_owned(), update),
        ("WindowPoint".to_owned(), window),
        ("Vehicle".to_owned(), vehicle),
        ("MakeCount".to_owned(), count(false)),
        ("ModelCount".to_owned(), count(true)),
        ("SensorHistogram".to_owned(), histogram),
        ("MapArea".to_owned(), map),
        ("PartitionWatermarks".to_owned(), partition),
        ("Point".to_owned(), point),
    ])
}

/// The topic's counts, in `GET /events` and every update.
fn topic_properties() -> Map<String, Value> {
    props(json!({
        "events_received": { "type": "integer", "format": "int64", "description": "Records in the topic: the sum of the partitions' high watermarks (what every replica produced)." },
        "accepted_by_this_replica": { "type": "integer", "minimum": 0, "description": "Records this ingest replica acknowledged since it started." },
        "partitions": { "type": "array", "items": { "$ref": "#/components/schemas/PartitionWatermarks" } },
        "error": { "type": "string", "description": "Why the broker could not be asked (then the counts are 0)." }
    }))
}

/// The fleet's figures, from the consumer's output topics, in `GET /events` and every update.
fn fleet_properties() -> Map<String, Value> {
    let windows = |kept: usize, width: &str| {
        json!({
            "type": "array",
            "items": { "$ref": "#/components/schemas/WindowPoint" },
            "description": format!("The newest {kept} {width} windows (event time), oldest first.")
        })
    };
    let mut p = props(json!({
        "events_stored": { "type": "integer", "format": "int64", "description": "Events stored: the sum of the counts of the vehicles kept (rows in diag once the consumer caught up, while no vehicle was forgotten)." },
        "vehicles_total": { "type": "integer", "minimum": 0, "description": "Vehicles seen within INGEST_DASHBOARD_VEHICLE_TTL (older ones are forgotten)." },
        "vehicles_online": { "type": "integer", "minimum": 0, "description": format!("Vehicles whose latest event is at most {} s old.", ONLINE_WITHIN.num_seconds()) },
        "makes": { "type": "array", "items": { "$ref": "#/components/schemas/MakeCount" }, "description": format!("Per make, by name: the {MAX_LISTED} with the most vehicles.") },
        "models": { "type": "array", "items": { "$ref": "#/components/schemas/ModelCount" }, "description": format!("Per make and model, by name: the {MAX_LISTED} with the most vehicles.") },
        "histograms": { "type": "array", "items": { "$ref": "#/components/schemas/SensorHistogram" }, "description": format!("Per sensor its newest minute window (of the last {HISTOGRAM_WINDOWS_KEPT} kept).") },
        "messages_applied": { "type": "integer", "minimum": 0, "description": "Output messages read since ingest started." },
        "map": { "$ref": "#/components/schemas/MapArea" },
        "reader_error": { "type": "string", "description": "Why the consumer's output topics cannot be read, if they cannot." }
    }));
    p.insert("per_second".into(), windows(SECONDS_KEPT, "per-second"));
    p.insert("per_minute".into(), windows(MINUTES_KEPT, "per-minute"));
    p
}

/// The members of a JSON object literal.
fn props(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("called with object literals only"),
    }
}

/// A closed object schema with the merged `properties` and the `required` ones.
fn object(properties: impl IntoIterator<Item = Map<String, Value>>, required: &[&str]) -> Value {
    let properties: Map<String, Value> = properties.into_iter().flatten().collect();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": required,
        "properties": properties,
    })
}
