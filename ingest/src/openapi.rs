//! The OpenAPI 3.0 description of the HTTP API, served at `GET /openapi.json`. Written by hand
//! next to the handlers it describes; the limits and options in it are the running process's
//! (body limit, whether a bearer token is required, the per-vehicle rate now).
//! [`dashboard`] describes `GET /events` and `GET /events/stream`.

mod dashboard;
#[cfg(test)]
mod tests;

use fleet_common::event::limits::{
    ALTITUDE, MAX_FUTURE_SECS, MAX_HORIZONTAL, MAX_SPEED, PRESSURE, TEMPERATURE,
};
use fleet_common::event::{MAX_NAME_LEN, MAX_SEQ};
use serde_json::{Value, json};

use crate::app::Settings;
use crate::decode::legacy_form::{EVENT_ID_NAMESPACE, POSITION_VALUES};
use crate::routes::ingest::{DESCRIBED_REJECTIONS, MAX_RECORD_ERROR_CHARS};

/// The document for a process running with `settings`; `auth` says whether `POST /events` needs
/// a bearer token, `dashboard_auth` whether the dashboard needs one, `rate_limit_per_vin` is the
/// per-vehicle rate now (0: off).
pub fn document(
    settings: &Settings,
    auth: bool,
    dashboard_auth: bool,
    rate_limit_per_vin: u32,
) -> Value {
    let limit = settings.max_body_bytes;
    let max_records = settings.max_records_per_request;
    let rate = match rate_limit_per_vin {
        0 => "off now".to_owned(),
        n => format!("{n} events/s per VIN now"),
    };
    let security = if auth {
        json!([{ "bearer": [] }])
    } else {
        json!([])
    };
    let error = |description: &str| {
        json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
        })
    };
    let report = |description: &str, retry_after: bool| {
        let mut response = json!({
            "description": description,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/IngestReport" } } }
        });
        if retry_after {
            response["headers"] =
                json!({ "Retry-After": { "$ref": "#/components/headers/Retry-After" } });
        }
        response
    };
    let mut unauthorized = error(
        "Bearer tokens are on (INGEST_TOKENS_FILE) and the request has no valid token. Checked before anything else.",
    );
    unauthorized["headers"] = json!({
        "WWW-Authenticate": {
            "description": "The challenge.",
            "schema": { "type": "string", "enum": [crate::auth::CHALLENGE] }
        }
    });

    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "fleet ingest",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The HTTP front door of the fleet telemetry pipeline. POST /events answers 2xx only after the broker acknowledged every record it reports as ok.",
        },
        "paths": {
            "/events": {
                "post": {
                    "operationId": "postEvents",
                    "summary": "Validate telemetry events and produce them to the topic, keyed by VIN.",
                    "description": format!(
                        "One result per record, in body order. Records of one vehicle over the per-vehicle rate ({rate}; the live key ingest.rate_limit_per_vin changes it while ingest runs) are refused with status `rate_limited`; invalid records with `rejected`. A body may be sent gzip-compressed with the header `Content-Encoding: gzip` (or `x-gzip`; `identity` or none for a plain body), which describes the bytes on the wire, not the schema of the body. The body limit ({limit} bytes, INGEST_MAX_BODY_BYTES) applies to the body as sent and, for gzip, to the inflated body."
                    ),
                    "security": security,
                    "requestBody": {
                        "required": true,
                        "content": {
                            "application/json": {
                                "schema": { "oneOf": [
                                    { "$ref": "#/components/schemas/TelemetryEvent" },
                                    { "type": "array", "minItems": 1, "maxItems": max_records, "items": { "$ref": "#/components/schemas/TelemetryEvent" } }
                                ] }
                            },
                            "application/x-ndjson": {
                                "schema": { "type": "string", "description": "One TelemetryEvent JSON object per line; blank lines are skipped. `application/ndjson` is accepted too." }
                            },
                            "application/x-www-form-urlencoded": {
                                "schema": { "$ref": "#/components/schemas/LegacyForm" },
                                "encoding": { "position": { "style": "form", "explode": true } }
                            }
                        }
                    },
                    "responses": {
                        "200": report("At least one record was acknowledged and none failed. Rate-limited records, if any, are marked in the results and the response carries Retry-After.", true),
                        "400": error("The body is not well-formed JSON / NDJSON (line and column named), not an object or array, a form body that is not `name=value` pairs joined by `&` with valid percent escapes and UTF-8 (the pair named), not valid gzip, or could not be read."),
                        "401": unauthorized,
                        "403": error("Bearer tokens are on and a valid record belongs to another vehicle than the token's. Nothing of the request is produced."),
                        "413": error(&format!("The body is larger than {limit} bytes, as sent or after gzip inflation, or holds more than {max_records} records (INGEST_MAX_RECORDS_PER_REQUEST); nothing of it is checked or produced.")),
                        "415": error("Content-Type is not application/json, application/x-ndjson or application/x-www-form-urlencoded (UTF-8), or Content-Encoding is neither gzip nor identity."),
                        "422": {
                            "description": "No record was acknowledged: every record was invalid, or the body holds no events (then only `error` is set).",
                            "content": { "application/json": { "schema": { "oneOf": [
                                { "$ref": "#/components/schemas/IngestReport" },
                                { "$ref": "#/components/schemas/Error" }
                            ] } } }
                        },
                        "429": report("No record was acknowledged and some were refused because their vehicle is over its rate; send them again after Retry-After.", true),
                        "503": report("The broker did not acknowledge some records in time; send those again after Retry-After. Records reported ok are stored.", true)
                    }
                },
                "get": dashboard::get_events(dashboard_auth, &unauthorized, &error(""))
            },
            "/events/stream": {
                "get": dashboard::get_stream(dashboard_auth, &unauthorized, &error(""))
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Liveness: the process serves HTTP.",
                    "responses": { "200": {
                        "description": "Always.",
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Status" } } }
                    } }
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "readyz",
                    "summary": "Readiness: the broker answers a metadata request for the topic in time.",
                    "responses": {
                        "200": {
                            "description": "Ready.",
                            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Status" } } }
                        },
                        "503": {
                            "description": "Not ready; `error` says why.",
                            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Status" } } }
                        }
                    }
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text exposition: ingest_http_requests_total{method,path,code}, ingest_records_total{outcome}, ingest_produce_latency_seconds (histogram), ingest_producer_queue_depth, ingest_producer_replacements_total.",
                    "responses": { "200": {
                        "description": "The metrics.",
                        "content": { "text/plain; version=0.0.4": { "schema": { "type": "string" } } }
                    } }
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document.",
                    "responses": { "200": {
                        "description": "The OpenAPI document.",
                        "content": { "application/json": { "schema": { "type": "object" } } }
                    } }
                }
            }
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A vehicle's token from INGEST_TOKENS_FILE (`VIN TOKEN` lines); it covers records of that VIN only. The dashboard takes a `dashboard TOKEN` line's token instead."
                },
                "access_token": dashboard::access_token_scheme()
            },
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before sending the records that were not acknowledged again.",
                    "schema": { "type": "integer", "minimum": 1 }
                }
            },
            "schemas": schemas(),
        }
    });
    add_shedding(&mut doc, &error);
    doc
}

/// Adds the load-shedding answers to the operations under [`crate::shedding`]: 408 past the
/// request timeout, and 503 with `Retry-After` over the cap on requests or connections.
fn add_shedding(doc: &mut Value, error: &impl Fn(&str) -> Value) {
    let timeout = error(
        "The request (its body included) took longer than INGEST_REQUEST_TIMEOUT; the connection is closed.",
    );
    let mut overloaded = error(
        "Load shedding: ingest serves INGEST_MAX_CONCURRENT_REQUESTS requests or holds INGEST_MAX_CONNECTIONS connections already; send again after Retry-After.",
    );
    overloaded["headers"] =
        json!({ "Retry-After": { "$ref": "#/components/headers/Retry-After" } });
    for (path, method) in [
        ("/events", "post"),
        ("/events", "get"),
        ("/events/stream", "get"),
        ("/openapi.json", "get"),
    ] {
        let responses = &mut doc["paths"][path][method]["responses"];
        responses["408"] = timeout.clone();
        match responses.get_mut("503") {
            // The operation's own 503 (a broker outage) or the load shedder's.
            Some(own) => {
                let schema = own["content"]["application/json"]["schema"].take();
                own["content"]["application/json"]["schema"] = json!({ "anyOf": [
                    schema,
                    { "$ref": "#/components/schemas/Error" }
                ] });
                own["description"] = json!(format!(
                    "{} Or: {}",
                    own["description"].as_str().unwrap_or_default(),
                    overloaded["description"].as_str().unwrap_or_default()
                ));
                own["headers"] = overloaded["headers"].clone();
            }
            None => responses["503"] = overloaded.clone(),
        }
    }
}

fn schemas() -> Value {
    let mut schemas = own_schemas();
    if let Value::Object(map) = &mut schemas {
        map.extend(dashboard::schemas());
    }
    schemas
}

/// The schemas of `POST /events` and the probes.
fn own_schemas() -> Value {
    let number = |min: f64, max: f64, description: &str| json!({ "type": "number", "minimum": min, "maximum": max, "description": description });
    // Not blank, and no control character (Unicode Cc: U+0000-U+001F, U+007F-U+009F).
    let name = || {
        json!({
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_NAME_LEN,
            "pattern": "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$",
            "description": "Not blank; no control characters (NUL included)."
        })
    };
    json!({
        "LegacyForm": {
            "type": "object",
            "additionalProperties": false,
            "required": ["timestamp", "make", "model", "speed", "vin"],
            // Exactly one of the two position variants.
            "oneOf": [
                { "required": ["position_x", "position_y", "position_z"], "not": { "required": ["position"] } },
                { "required": ["position"], "not": { "anyOf": [
                    { "required": ["position_x"] }, { "required": ["position_y"] }, { "required": ["position_z"] }
                ] } }
            ],
            "description": format!(
                "The old vehicle client's body, one reading per request, accepted unchanged in two variants: `position_x`, `position_y`, `position_z` each once, or (older) `position` exactly {POSITION_VALUES} times in the order x, y, z. The client sends exactly these fields: an unknown field, a field given more than once, a mix of both position variants, a missing field, a value that is not a number or a value out of range rejects the reading (422 naming the field as the form calls it). An empty body holds no events (422). The reading is stored without sensors (NULL columns), heading, lat and lon 0. The client sends no event_id and no seq; ingest derives both from the reading, so they are the same on every replica, after restarts and for a retried identical POST: `event_id` is a name-based UUID (version 8, RFC 9562 B.2: SHA-256 over namespace {EVENT_ID_NAMESPACE} and the JSON array [vin, timestamp in microseconds, make, model, x, y, z, speed]), so a retried reading is stored once; `seq` is the timestamp in microseconds since the epoch (grows with the client's clock; not from 0, with gaps). Two readings identical in every field, timestamp included, are one reading."
            ),
            "properties": {
                "timestamp": {
                    "type": "number",
                    "minimum": 0,
                    "description": format!("Event time, epoch seconds with fractions; at most {MAX_FUTURE_SECS} s in the future.")
                },
                "make": name(),
                "model": name(),
                "position_x": number(-MAX_HORIZONTAL, MAX_HORIZONTAL, "Metres, local frame. Required unless `position` is sent."),
                "position_y": number(-MAX_HORIZONTAL, MAX_HORIZONTAL, "Metres, local frame. Required unless `position` is sent."),
                "position_z": number(ALTITUDE.0, ALTITUDE.1, "Metres, local frame. Required unless `position` is sent."),
                "position": {
                    "type": "array",
                    "minItems": POSITION_VALUES,
                    "maxItems": POSITION_VALUES,
                    // OpenAPI 3.0 has no per-index item schema: the items carry the widest of
                    // the three ranges (x and y; z's altitude range lies inside it).
                    "items": number(-MAX_HORIZONTAL, MAX_HORIZONTAL, "x, y, then z, each in the range of position_x/y/z."),
                    "description": "The older variant: x, y, z as `position=x&position=y&position=z`, with the ranges of position_x/y/z; not combined with them."
                },
                "speed": number(0.0, MAX_SPEED, "m/s."),
                "vin": { "type": "string", "pattern": "^[A-Z0-9]{17}$", "description": "17 upper-case letters or digits; no check digit required." }
            }
        },
        "TelemetryEvent": {
            "type": "object",
            "additionalProperties": false,
            "required": ["event_id", "vin", "seq", "ts", "make", "model", "position", "speed", "sensors"],
            "properties": {
                "event_id": { "type": "string", "format": "uuid", "description": "Set by the vehicle; the idempotency key." },
                "vin": { "type": "string", "format": "vin", "pattern": "^[A-HJ-NPR-Z0-9]{17}$", "description": "17 characters with a valid check digit in position 9 (ISO 3779; format `vin`)." },
                "seq": { "type": "integer", "minimum": 0, "maximum": MAX_SEQ, "description": "Per-vehicle counter from 0; at most the largest PostgreSQL bigint." },
                "ts": {
                    "oneOf": [
                        { "type": "string", "format": "date-time" },
                        { "type": "number", "minimum": 0, "description": "Epoch seconds." }
                    ],
                    "description": format!("Event time; not before 1970-01-01T00:00:00Z, at most {MAX_FUTURE_SECS} s in the future.")
                },
                "make": name(),
                "model": name(),
                "position": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["x", "y", "z"],
                    "properties": {
                        "x": number(-MAX_HORIZONTAL, MAX_HORIZONTAL, "Metres, local frame."),
                        "y": number(-MAX_HORIZONTAL, MAX_HORIZONTAL, "Metres, local frame."),
                        "z": number(ALTITUDE.0, ALTITUDE.1, "Metres, local frame."),
                        "lat": number(-90.0, 90.0, "Degrees; 0 when absent."),
                        "lon": number(-180.0, 180.0, "Degrees; 0 when absent.")
                    }
                },
                "speed": number(0.0, MAX_SPEED, "m/s."),
                "heading": number(0.0, 360.0, "Degrees; 0 when absent."),
                "sensors": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["temperature_c", "humidity_pct", "pressure_hpa"],
                    "properties": {
                        "temperature_c": number(TEMPERATURE.0, TEMPERATURE.1, "°C."),
                        "humidity_pct": number(0.0, 100.0, "%."),
                        "pressure_hpa": number(PRESSURE.0, PRESSURE.1, "hPa.")
                    }
                }
            }
        },
        "IngestReport": {
            "type": "object",
            "required": ["accepted", "rejected", "results"],
            "properties": {
                "error": { "type": "string", "description": "Why the request as a whole did not succeed; absent on 200." },
                "accepted": { "type": "integer", "minimum": 0, "description": "Records acknowledged by the broker." },
                "rejected": { "type": "integer", "minimum": 0, "description": "Records refused as invalid." },
                "rate_limited": { "type": "integer", "minimum": 1, "description": "Records refused because their vehicle is over its rate; absent when 0." },
                "failed": { "type": "integer", "minimum": 1, "description": "Records the broker did not acknowledge; absent when 0." },
                "results": { "type": "array", "items": { "$ref": "#/components/schemas/RecordResult" } }
            }
        },
        "RecordResult": {
            "type": "object",
            "required": ["index", "status"],
            "description": "The fate of one record, by `status`: `ok` (with partition and offset), `rejected` (invalid; sending again will not help), `rate_limited` (code 429, send again after retry_after seconds), `failed` (not acknowledged in time; send again).",
            "properties": {
                "index": { "type": "integer", "minimum": 0, "description": "Position in the body, from 0." },
                "status": { "type": "string", "enum": ["ok", "rejected", "rate_limited", "failed"] },
                "partition": { "type": "integer", "description": "ok only." },
                "offset": { "type": "integer", "format": "int64", "description": "ok only." },
                "error": { "type": "string", "description": format!("All but ok: the field and the rule it breaks, or what went wrong (at most {MAX_RECORD_ERROR_CHARS} characters). Rejected records past the first {DESCRIBED_REJECTIONS} of a request have none.") },
                "code": { "type": "integer", "enum": [429], "description": "rate_limited only." },
                "retry_after": { "type": "integer", "minimum": 1, "description": "rate_limited only: seconds until the vehicle may send again." }
            }
        },
        "Error": {
            "type": "object",
            "additionalProperties": false,
            "required": ["error"],
            "properties": { "error": { "type": "string" } }
        },
        "Status": {
            "type": "object",
            "required": ["status"],
            "properties": {
                "status": { "type": "string", "enum": ["ok", "ready", "not ready"] },
                "error": { "type": "string" }
            }
        }
    })
}
