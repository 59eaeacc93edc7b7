//! The dashboard's part of the API description: `GET /events` (its JSON) and
//! `GET /events/stream` (Server-Sent Events), and the schemas of their figures.

use serde_json::{Map, Value, json};

use crate::auth::ACCESS_TOKEN_PARAM;
use crate::dashboard::EVENT_NAME;
use crate::dashboard::state::{
    HISTOGRAM_WINDOWS_KEPT, MAX_LISTED, MINUTES_KEPT, ONLINE_WITHIN, SECONDS_KEPT, TRAIL_LEN,
};
use crate::dashboard::table::{DEFAULT_PAGE_SIZE, MAX_PAGE, MAX_PAGE_SIZE, SortKey};
use crate::routes::stream::RETRY;
use crate::routes::watch::VEHICLES_LISTED;

/// The keys every dashboard answer has: the topic's counts and the fleet's figures.
const FIGURES_REQUIRED: [&str; 7] = [
    "events_received",
    "accepted_by_this_replica",
    "partitions",
    "events_stored",
    "vehicles_total",
    "vehicles_online",
    "map",
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
    let mut bad_query = error.clone();
    bad_query["description"] = json!(format!(
        "The query cannot be read (an unknown sort or order, a page that is not a whole number), page is above {MAX_PAGE} or page_size is not between 1 and {MAX_PAGE_SIZE}."
    ));
    let operation = json!({
        "operationId": "streamEvents",
        "summary": "The dashboard's live updates as Server-Sent Events, one per second.",
        "description": format!(
            "Every SSE event carries `id` (increasing by one per second, also across restarts of ingest), `event: {EVENT_NAME}`, `retry: {retry_ms}` and `data`: one DashboardUpdate as JSON (see `x-event-data`), the whole picture the page shows: the topic's counts, the fleet's figures, the positions of the INGEST_DASHBOARD_MAP_VEHICLES most recently seen vehicles for the map, and the page of the vehicle table the query asks for, each row with its trail. Its size does not grow with the fleet, and no event exceeds INGEST_DASHBOARD_MAX_MESSAGE_BYTES (the map draws fewer vehicles, the table leaves out trails, then rows, rather). The first event comes at once, then one per second; a reconnecting client gets the current picture (Last-Event-ID is not needed); another page or order is another stream. Comment lines keep an idle connection alive."
        ),
        "parameters": [
            {
                "name": "sort",
                "in": "query",
                "required": false,
                "description": "The table's column: the rows are sorted by it, then by VIN.",
                "schema": { "type": "string", "enum": SortKey::NAMES, "default": "events" }
            },
            {
                "name": "order",
                "in": "query",
                "required": false,
                "schema": { "type": "string", "enum": ["asc", "desc"], "default": "desc" }
            },
            {
                "name": "page",
                "in": "query",
                "required": false,
                "description": "The table's page, from 0; a page past the last one gets the last one.",
                "schema": { "type": "integer", "minimum": 0, "maximum": MAX_PAGE, "default": 0 }
            },
            {
                "name": "page_size",
                "in": "query",
                "required": false,
                "description": "Rows of the page.",
                "schema": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": DEFAULT_PAGE_SIZE }
            }
        ],
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
                                "event": { "type": "string", "enum": [EVENT_NAME] },
                                "retry": { "type": "integer", "minimum": 0 },
                                "data": { "type": "string", "contentMediaType": "application/json" }
                            }
                        },
                        "x-event-data": { "$ref": "#/components/schemas/DashboardUpdate" }
                    }
                }
            },
            "400": bad_query
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
        &[&["topic", "vehicles"][..], &FIGURES_REQUIRED].concat(),
    );
    let update = object(
        [
            props(json!({
                "id": { "type": "integer", "format": "int64", "description": "The SSE event id." },
                "at": { "type": "string", "format": "date-time", "description": "When the update was made." },
                "positions": {
                    "type": "array",
                    "items": { "$ref": "#/components/schemas/MakePositions" },
                    "description": "The map: the latest positions of the most recently seen vehicles (at most INGEST_DASHBOARD_MAP_VEHICLES), per make, by name."
                },
                "positions_omitted": { "type": "integer", "minimum": 0, "description": "Vehicles kept but not on the map (beyond its cap, or to stay under the message cap)." },
                "table": { "$ref": "#/components/schemas/TablePage" }
            })),
            topic_properties(),
            fleet_properties(),
        ],
        &[
            &["id", "at", "positions", "positions_omitted", "table"][..],
            &FIGURES_REQUIRED,
        ]
        .concat(),
    );
    let make_positions = object(
        [props(json!({
            "make": { "type": "string" },
            "xy": { "type": "array", "items": { "type": "integer" }, "description": "x0, y0, x1, y1, ...: each vehicle's latest position, whole metres east and north of the area's origin." }
        }))],
        &["make", "xy"],
    );
    let table = object(
        [props(json!({
            "sort": { "type": "string", "enum": SortKey::NAMES },
            "order": { "type": "string", "enum": ["asc", "desc"] },
            "page": { "type": "integer", "minimum": 0, "description": "The page sent (the last one when a later one was asked for)." },
            "page_size": { "type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE },
            "pages": { "type": "integer", "minimum": 1 },
            "total": { "type": "integer", "minimum": 0, "description": "Vehicles in the table: every vehicle seen within INGEST_DASHBOARD_VEHICLE_TTL." },
            "rows": { "type": "array", "items": { "$ref": "#/components/schemas/TableRow" }, "description": "The page, in the table's order." },
            "rows_omitted": { "type": "integer", "minimum": 1, "description": "When any: rows of the page left out to stay under the message cap." },
            "trails_omitted": { "type": "integer", "minimum": 1, "description": "When any: rows sent without their trail to stay under the message cap." }
        }))],
        &[
            "sort",
            "order",
            "page",
            "page_size",
            "pages",
            "total",
            "rows",
        ],
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
    let mut table_row = vehicle.clone();
    table_row["properties"]["trail"] = json!({
        "type": "array",
        "items": { "$ref": "#/components/schemas/Point" },
        "description": format!("Its last {TRAIL_LEN} positions, oldest first, whole metres.")
    });
    table_row["required"]
        .as_array_mut()
        .expect("an object schema lists its required members")
        .push(json!("trail"));
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
        ("TableRow".to_owned(), table_row),
        ("TablePage".to_owned(), table),
        ("MakePositions".to_owned(), make_positions),
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
        "vehicles_online": { "type": "integer", "minimum": 0, "description": format!("Vehicles whose latest event is at most {} s older than the newest event known while the input topic grows (the summaries may lag behind the vehicles), or than now when it has not grown for that long.", ONLINE_WITHIN.num_seconds()) },
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
