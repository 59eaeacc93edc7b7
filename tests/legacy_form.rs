//! The old vehicle client's `application/x-www-form-urlencoded` body against a real stack (the
//! real `fleet` binary, `launch-infra`, no vehicles): both variants (`position_x/y/z` and the
//! older `position` 3 times) posted with the old client's random VINs (17 letters and digits,
//! no check digit) answer 200 with a partition and offset, and the consumer stores each in
//! `diag` at that position with the old columns filled and NULL sensors; a gzip form body works;
//! a retried identical POST is stored once; a bad field is 422 naming the field; a malformed
//! body is 400.
//!
//! The stack runs under a name (`legacy-form-t-<pid>`) and host ports of its own; a guard tears
//! it down also when an assertion fails.

mod support;

use std::time::{Duration, Instant};

use fleet_common::Vin;
use fleet_common::wire::{IngestReport, RecordResult};
use rand::Rng;
use reqwest::StatusCode;
use serde_json::Value;
use support::TestStack;

const FORM: &str = "application/x-www-form-urlencoded";

/// How long the consumer may take to store a row.
const STORE_TIMEOUT: Duration = Duration::from_secs(120);

/// A VIN as the old client makes them: 17 random upper-case letters and digits, and (checked)
/// not one whose check digit happens to be right.
fn random_legacy_vin() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    loop {
        let vin: String = (0..17)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        if Vin::parse(&vin).is_err() {
            return vin;
        }
    }
}

/// One reading of the old client.
#[derive(Debug, Clone)]
struct Reading {
    timestamp: f64,
    vin: String,
    make: &'static str,
    model: &'static str,
    position: [f64; 3],
    speed: f64,
}

impl Reading {
    /// A reading of `vin` at `age` before now (whole milliseconds, as a float).
    fn new(vin: &str, age: Duration) -> Self {
        let now = chrono::Utc::now().timestamp_millis() - age.as_millis() as i64;
        Self {
            timestamp: now as f64 / 1000.0,
            vin: vin.to_owned(),
            make: "Saab",
            model: "9-3 Sport",
            position: [120.5, -33.25, 14.0],
            speed: 17.75,
        }
    }

    /// The body the old client sends: `position_x/y/z`, or with `older` the older client's
    /// `position` 3 times.
    fn form(&self, older: bool) -> String {
        let [x, y, z] = self.position;
        let position = if older {
            format!("position={x}&position={y}&position={z}")
        } else {
            format!("position_x={x}&position_y={y}&position_z={z}")
        };
        format!(
            "timestamp={}&make={}&model={}&{position}&speed={}&vin={}",
            self.timestamp,
            self.make,
            self.model.replace(' ', if older { "%20" } else { "+" }),
            self.speed,
            self.vin
        )
    }
}

/// A response: status and JSON body.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    body: Value,
}

impl Answer {
    /// The one record's partition and offset, checked to be `ok`.
    fn position(&self) -> (i32, i64) {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        let report: IngestReport = serde_json::from_value(self.body.clone())
            .unwrap_or_else(|e| panic!("not a report ({e}): {}", self.body));
        assert_eq!(report.results.len(), 1, "{}", self.body);
        let r = &report.results[0];
        let &RecordResult::Ok {
            partition, offset, ..
        } = r
        else {
            panic!("{r:?} is not ok");
        };
        assert!(partition >= 0 && offset >= 0, "{r:?}");
        (partition, offset)
    }

    fn error(&self) -> &str {
        self.body["error"].as_str().expect("an error message")
    }
}

/// `POST /events` with `body`, gzip-encoded when `gzip`.
async fn post(stack: &TestStack, body: &str, gzip: bool) -> Answer {
    let mut request = reqwest::Client::new()
        .post(stack.events_url())
        .timeout(Duration::from_secs(30))
        .header("content-type", FORM);
    request = if gzip {
        request
            .header("content-encoding", "gzip")
            .body(support::gzip(body.as_bytes()))
    } else {
        request.body(body.to_owned())
    };
    let response = request.send().await.expect("POST /events answers");
    let status = response.status();
    let text = response.text().await.expect("a response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    eprintln!("POST /events -> {status} {body}");
    Answer { status, body }
}

/// A `diag` row, old columns and what the old client does not send.
#[derive(Debug, PartialEq)]
struct Row {
    timestamp: f64,
    vin: String,
    make: String,
    model: String,
    position: [f64; 3],
    speed: f64,
    sensors: [Option<f64>; 3],
    kafka: (i32, i64),
}

/// The rows of `vin`, oldest first, once there are at least `count` (waits for the consumer).
async fn rows_of(pg: &tokio_postgres::Client, vin: &str, count: usize) -> Vec<Row> {
    let started = Instant::now();
    loop {
        let rows = pg
            .query(
                "SELECT timestamp, vin::text, make, model, position_x, position_y, position_z, \
                        speed, temperature_c, humidity_pct, pressure_hpa, kafka_partition, \
                        kafka_offset \
                   FROM diag WHERE vin = $1::text::char(17) ORDER BY timestamp, id",
                &[&vin],
            )
            .await
            .expect("query diag");
        if rows.len() >= count {
            return rows
                .iter()
                .map(|r| Row {
                    timestamp: r.get(0),
                    vin: r.get(1),
                    make: r.get(2),
                    model: r.get(3),
                    position: [r.get(4), r.get(5), r.get(6)],
                    speed: r.get(7),
                    sensors: [r.get(8), r.get(9), r.get(10)],
                    kafka: (r.get(11), r.get(12)),
                })
                .collect();
        }
        assert!(
            started.elapsed() < STORE_TIMEOUT,
            "the consumer stored {} of {count} rows of {vin} in {STORE_TIMEOUT:?}",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The row `reading` must become, stored at `kafka`.
fn expected(reading: &Reading, kafka: (i32, i64)) -> Row {
    Row {
        timestamp: reading.timestamp,
        vin: reading.vin.clone(),
        make: reading.make.to_owned(),
        model: reading.model.to_owned(),
        position: reading.position,
        speed: reading.speed,
        sensors: [None, None, None],
        kafka,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_old_clients_form_is_accepted_and_stored() {
    let stack = TestStack::new("legacy-form-t", &[]);
    stack.fleet_ok(&["launch-infra"]).await;
    let pg = stack.postgres().await;

    eprintln!("== both variants with random VINs: 200, stored with NULL sensors");
    let current = Reading::new(&random_legacy_vin(), Duration::from_secs(3));
    let older = Reading::new(&random_legacy_vin(), Duration::from_secs(2));
    let current_at = post(&stack, &current.form(false), false).await.position();
    let older_at = post(&stack, &older.form(true), false).await.position();
    assert_eq!(
        rows_of(&pg, &current.vin, 1).await,
        [expected(&current, current_at)]
    );
    assert_eq!(
        rows_of(&pg, &older.vin, 1).await,
        [expected(&older, older_at)]
    );

    eprintln!("== a gzip form body");
    let zipped = Reading::new(&random_legacy_vin(), Duration::from_secs(1));
    let zipped_at = post(&stack, &zipped.form(false), true).await.position();
    assert_eq!(
        rows_of(&pg, &zipped.vin, 1).await,
        [expected(&zipped, zipped_at)]
    );

    eprintln!("== a retried identical POST is stored once");
    let vin = random_legacy_vin();
    let retried = Reading::new(&vin, Duration::from_secs(2));
    let first = post(&stack, &retried.form(false), false).await.position();
    let second = post(&stack, &retried.form(false), false).await.position();
    assert_eq!(first.0, second.0, "same key, same partition");
    assert!(
        second.1 > first.1,
        "the retry is a second record in the broker"
    );
    // A later reading of the same vehicle lands after both copies: once it is stored, the
    // consumer is past both.
    let later = Reading::new(&vin, Duration::ZERO);
    let later_at = post(&stack, &later.form(false), false).await.position();
    assert!(later_at.1 > second.1);
    let rows = rows_of(&pg, &vin, 2).await;
    assert_eq!(
        rows,
        [expected(&retried, first), expected(&later, later_at)],
        "the retried reading is stored once, at its first position"
    );
    let event_ids: i64 = pg
        .query_one(
            "SELECT count(DISTINCT event_id) FROM diag WHERE vin = $1::text::char(17)",
            &[&vin],
        )
        .await
        .expect("query diag")
        .get(0);
    assert_eq!(event_ids, 2);

    eprintln!("== 422 names the field");
    let bad = Reading::new(&random_legacy_vin(), Duration::ZERO);
    let cases = [
        (
            bad.form(false).replace("speed=17.75", "speed=fast"),
            "field `speed`",
        ),
        (
            bad.form(false).replace("speed=17.75", "speed=250"),
            "field `speed`",
        ),
        (
            bad.form(false).replace(&bad.vin, &bad.vin.to_lowercase()),
            "field `vin`",
        ),
        (
            bad.form(false).replace("&make=Saab", ""),
            "field `make`: missing",
        ),
        (format!("{}&colour=red", bad.form(false)), "field `colour`"),
        (
            bad.form(true).replace("&position=14", ""),
            "field `position`",
        ),
    ];
    for (body, field) in cases {
        let answer = post(&stack, &body, false).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(answer.error().contains(field), "{body}: {}", answer.error());
        assert_eq!(answer.body["results"][0]["status"], "rejected");
    }

    eprintln!("== 400 for a malformed body");
    for body in ["make=Vol%zzvo", "{\"vin\": \"QWERTYUIOPASDFGH1\"}"] {
        let answer = post(&stack, body, false).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(
            answer.error().starts_with("malformed form body, pair 1"),
            "{}",
            answer.error()
        );
    }
    let rejected: i64 = pg
        .query_one(
            "SELECT count(*) FROM diag WHERE vin = $1::text::char(17)",
            &[&bad.vin],
        )
        .await
        .expect("query diag")
        .get(0);
    assert_eq!(rejected, 0, "no rejected reading is stored");
}
