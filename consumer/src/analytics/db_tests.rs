//! Checks against a real PostgreSQL, ignored by default (`cargo test` needs no database). Run
//! by hand with a role that may create databases in `CONSUMER_TEST_PG` (it owns them and
//! applies the schema, as `fleet_admin` does in a stack) and, in `CONSUMER_TEST_PG_APP`, the
//! application role the sink logs in as (default: the same), e.g.
//! `CONSUMER_TEST_PG='host=127.0.0.1 port=35440 user=postgres' cargo test --release -p consumer
//! -- --ignored`. Each test works in a database of its own and drops it at the end.
//!
//! Over 500 lines: one list of database scenarios sharing the throwaway-database set-up and the
//! table readers at the top; they need a real PostgreSQL and run together by hand or through
//! `tests/consumer_database.rs`.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_common::{EventTime, Position, Sensors, TelemetryEvent, Vin};
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;

use super::{AnalyticsSettings, HistogramBins, check};
use crate::batch::{Batch, Record};
use crate::flush::tests::FakeDlq;
use crate::flush::{FlushError, flush};
use crate::row::DiagRow;
use crate::sink::{PgSettings, PgSink, STAGED_AFTER_REFUSAL, Sink, Written};

/// The tables a batch may change, read back whole (offsets aside: their `updated_at` moves on
/// every commit).
const TABLES: [&str; 8] = [
    "diag",
    "vehicle_summary",
    "make_model_counts",
    "make_model_vehicles",
    "window_metrics",
    "window_vehicle_minutes",
    "window_watermark",
    "sensor_histograms",
];

/// A database created for one test, dropped by [`TestDb::drop_db`].
struct TestDb {
    admin: Client,
    name: String,
    /// The owner's connection to the test database.
    owner_config: tokio_postgres::Config,
    /// The application role's connection to the test database.
    config: tokio_postgres::Config,
}

async fn connect(config: &tokio_postgres::Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connecting");
    tokio::spawn(connection);
    client
}

impl TestDb {
    async fn create(tag: &str) -> Self {
        let db = Self::create_empty(tag).await;
        let mut owner = connect(&db.owner_config).await;
        let app_role = db
            .config
            .get_user()
            .expect("a role in CONSUMER_TEST_PG_APP");
        fleet_common::schema::apply(&mut owner, app_role)
            .await
            .expect("applying the schema");
        db
    }

    /// A new database without the schema.
    async fn create_empty(tag: &str) -> Self {
        let text = std::env::var("CONSUMER_TEST_PG")
            .expect("CONSUMER_TEST_PG, e.g. 'host=127.0.0.1 port=35440 user=postgres'");
        let app_text = std::env::var("CONSUMER_TEST_PG_APP").unwrap_or_else(|_| text.clone());
        let mut config: tokio_postgres::Config = text.parse().expect("a libpq connection string");
        let mut app: tokio_postgres::Config = app_text.parse().expect("a libpq connection string");
        config.dbname("postgres");
        let admin = connect(&config).await;
        let name = format!("consumer_{tag}_{}", std::process::id());
        // One statement per call: several would run as one transaction, which these refuse.
        for statement in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin
                .batch_execute(&statement)
                .await
                .expect("creating the test database");
        }
        config.dbname(&name);
        app.dbname(&name);
        Self {
            admin,
            name,
            owner_config: config,
            config: app,
        }
    }

    fn sink(&self, lateness: Duration) -> PgSink {
        self.sink_with_timeout(lateness, Duration::from_secs(30))
    }

    /// A sink whose statements may each take `timeout`.
    fn sink_with_timeout(&self, lateness: Duration, timeout: Duration) -> PgSink {
        PgSink::new(PgSettings {
            config: self.config.clone(),
            target: self.name.clone(),
            group: "fleet-consumer".into(),
            topic: "telemetry".into(),
            timeout,
            analytics: AnalyticsSettings {
                topic: "telemetry".into(),
                allowed_lateness: lateness,
                bins: HistogramBins::default(),
            },
        })
    }

    async fn drop_db(self) {
        // The owner may not end the application role's sessions (it is no superuser); the
        // application role ends its own.
        let mut app = self.config.clone();
        app.dbname("postgres");
        connect(&app)
            .await
            .execute(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity
                  WHERE datname = $1 AND usename = current_user AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .await
            .expect("ending the application role's sessions");
        self.admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .expect("dropping the test database");
    }
}

/// Every row of every aggregate table and of `diag`, as text.
async fn snapshot(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for table in TABLES {
        let rows = client
            .query(&format!("SELECT t::text FROM {table} t ORDER BY 1"), &[])
            .await
            .expect("reading a table");
        out.extend(
            rows.iter()
                .map(|r| format!("{table}: {}", r.get::<_, String>(0))),
        );
    }
    out
}

/// A small deterministic generator (xorshift), so runs repeat.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A value in `[lo, hi)`.
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (self.next() % 1_000_000) as f64 / 1_000_000.0 * (hi - lo)
    }
}

const MAKES: [(&str, &str); 3] = [("Volvo", "XC40"), ("Volvo", "XC90"), ("Scania", "R500")];

/// `per_vehicle` events of each of `vehicles` vehicles over about three minutes from `start`,
/// in a shuffled order, some of them out of event-time order.
fn events(vehicles: usize, per_vehicle: u64, start: DateTime<Utc>, seed: u64) -> Vec<DiagRow> {
    let mut noise = Noise(seed);
    let mut rows = Vec::new();
    for v in 0..vehicles {
        let vin = Vin::parse_legacy(&format!("TESTVIN{:010}", v + seed as usize)).unwrap();
        let (make, model) = MAKES[v % MAKES.len()];
        for seq in 0..per_vehicle {
            let millis = (seq * 1_700 + noise.next() % 900) as i64;
            let mut e = TelemetryEvent::example(
                Uuid::from_u64_pair(seed, (v as u64) << 32 | seq),
                vin.clone(),
                seq,
                EventTime(start + TimeDelta::milliseconds(millis)),
            );
            e.make = make.into();
            e.model = model.into();
            e.speed = noise.range(0.0, 40.0);
            e.position = Position {
                x: noise.range(-1e4, 1e4),
                y: noise.range(-1e4, 1e4),
                z: 0.0,
                lat: noise.range(59.0, 60.0),
                lon: noise.range(17.0, 19.0),
            };
            e.sensors = Some(Sensors {
                temperature_c: noise.range(-70.0, 80.0),
                humidity_pct: noise.range(0.0, 100.0),
                pressure_hpa: noise.range(880.0, 1120.0),
            });
            rows.push(DiagRow::from_event(&e, 0, 0).unwrap());
        }
    }
    // Shuffle (Fisher-Yates) so that batches mix vehicles and event times.
    for i in (1..rows.len()).rev() {
        let j = (noise.next() % (i as u64 + 1)) as usize;
        rows.swap(i, j);
    }
    rows
}

fn batch(rows: &[DiagRow], partition: i32, first_offset: i64) -> Batch {
    let mut b = Batch::new();
    for (i, row) in rows.iter().enumerate() {
        let offset = first_offset + i as i64;
        let row = DiagRow {
            kafka_partition: partition,
            kafka_offset: offset,
            ..row.clone()
        };
        let record = Record {
            partition,
            offset,
            key: None,
            payload: None,
            timestamp_ms: None,
        };
        b.add(record, Ok(row));
    }
    b
}

async fn write(sink: &mut PgSink, b: &Batch) -> Written {
    sink.write(b.entries(), Some(b.next_offsets()))
        .await
        .expect("writing a batch")
}

fn start() -> DateTime<Utc> {
    "2026-11-21T10:00:30.250Z".parse().unwrap()
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn replays_change_nothing_and_aggregates_match_diag() {
    let db = TestDb::create("replay").await;
    let mut sink = db.sink(Duration::from_secs(3600));
    let rows = events(7, 100, start(), 11);
    let (first, second) = rows.split_at(300);

    let w1 = write(&mut sink, &batch(first, 0, 0)).await;
    assert_eq!(w1.inserted, 300);
    assert!(!w1.aggregates.vehicles.is_empty() && !w1.aggregates.windows.is_empty());
    // The second batch repeats part of the first.
    let mut overlapping = first[250..].to_vec();
    overlapping.extend_from_slice(second);
    let w2 = write(&mut sink, &batch(&overlapping, 0, 300)).await;
    assert_eq!((w2.inserted, w2.rows), (400, 450));
    assert_eq!(w2.aggregates.late_dropped, 0);

    let client = connect(&db.config).await;
    let before = snapshot(&client).await;
    let report = check(&client, &HistogramBins::default()).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.mismatches);
    assert_eq!(report.diag_rows, 700);
    assert_eq!(report.vehicles, 7);
    assert!(
        report.windows > 150 && report.histogram_bins > 100,
        "{report:?}"
    );

    // Replays, whole and mixed: nothing inserted, nothing published, nothing changed.
    for b in [
        batch(first, 0, 0),
        batch(&overlapping, 0, 300),
        batch(&rows, 0, 0),
    ] {
        let w = write(&mut sink, &b).await;
        assert_eq!(w.inserted, 0);
        assert_eq!(w.aggregates, super::Aggregates::default());
    }
    assert_eq!(snapshot(&client).await, before);

    // The published figures are the stored ones.
    let stored: i64 = client
        .query_one(
            "SELECT events FROM vehicle_summary WHERE vin = $1",
            &[&w2.aggregates.vehicles[0].vin],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, w2.aggregates.vehicles[0].events);
    drop(client);
    db.drop_db().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn new_rows_go_straight_into_diag_and_a_repeated_event_sends_batches_through_staging() {
    let db = TestDb::create("straight").await;
    let mut sink = db.sink(Duration::from_secs(3600));
    let rows = events(5, 60, start(), 23);
    let per_batch = 10;
    let (first, rest) = rows.split_at(per_batch);

    let w = write(&mut sink, &batch(first, 0, 0)).await;
    assert_eq!((w.inserted, w.staged), (per_batch as u64, false));

    // A batch repeating one stored event: the straight copy is refused as a whole, the staged
    // insert stores the new rows and skips the repeated one.
    let mut repeating = rest[..per_batch].to_vec();
    repeating.push(first[3].clone());
    let mut offset = per_batch as i64;
    let w = write(&mut sink, &batch(&repeating, 0, offset)).await;
    assert_eq!(
        (w.inserted, w.rows, w.staged),
        (per_batch as u64, per_batch as u64 + 1, true)
    );
    offset += repeating.len() as i64;

    // New rows keep going through staging for a while, then straight again.
    let mut routes = Vec::new();
    for chunk in rest[per_batch..].chunks(per_batch) {
        let w = write(&mut sink, &batch(chunk, 0, offset)).await;
        assert_eq!(w.inserted, chunk.len() as u64);
        routes.push(w.staged);
        offset += chunk.len() as i64;
    }
    let staged = routes.iter().take_while(|s| **s).count();
    assert_eq!(staged, STAGED_AFTER_REFUSAL as usize, "{routes:?}");
    assert!(routes[staged..].iter().all(|s| !s), "{routes:?}");

    // Both routes leave the same books: every event once, aggregates equal to diag.
    let client = connect(&db.config).await;
    let report = check(&client, &HistogramBins::default()).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.mismatches);
    assert_eq!(report.diag_rows, rows.len() as i64);
    assert_eq!(report.vehicles, 5);
    drop(client);
    db.drop_db().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn last_position_is_the_latest_by_event_time_not_by_arrival() {
    let db = TestDb::create("latest").await;
    let mut sink = db.sink(Duration::from_secs(3600));
    let rows = events(1, 3, start(), 5);
    let mut sorted = rows.clone();
    sorted.sort_by_key(|r| r.ts);
    // Newest first, then the older ones in a later batch.
    write(&mut sink, &batch(&sorted[2..], 0, 0)).await;
    let w = write(&mut sink, &batch(&sorted[..2], 0, 1)).await;
    let v = &w.aggregates.vehicles[0];
    assert_eq!(v.events, 3);
    assert_eq!(v.last_seen, sorted[2].ts);
    assert_eq!(v.first_seen, sorted[0].ts);
    assert_eq!(v.last_position.x, sorted[2].position_x);
    assert_eq!(v.last_speed, sorted[2].speed);
    db.drop_db().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn a_replica_taking_over_reads_again_the_summaries_stored_just_before_the_newest() {
    let db = TestDb::create("recent").await;
    let mut sink = db.sink(Duration::from_secs(3600));
    assert!(
        sink.recent_summaries(Duration::from_secs(60))
            .await
            .unwrap()
            .is_empty(),
        "nothing stored, nothing to produce again"
    );
    // Two vehicles, then after a pause two others and one of the first again.
    let early = events(2, 2, start(), 11);
    write(&mut sink, &batch(&early, 0, 0)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let late: Vec<DiagRow> = events(2, 2, start(), 21)
        .into_iter()
        .chain(events(1, 1, start() + TimeDelta::seconds(30), 11))
        .map(|mut r| {
            r.event_id = Uuid::new_v4();
            r
        })
        .collect();
    let w = write(&mut sink, &batch(&late, 0, 4)).await;
    let mut expected = w.aggregates.vehicles.clone();
    expected.sort_by(|a, b| a.vin.cmp(&b.vin));
    assert_eq!(expected.len(), 3);
    let recent = sink.recent_summaries(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        recent, expected,
        "the second batch's vehicles, as they are stored"
    );
    let all = sink
        .recent_summaries(Duration::from_secs(60))
        .await
        .unwrap();
    let vins: Vec<&str> = all.iter().map(|v| v.vin.as_str()).collect();
    assert_eq!(all.len(), 4, "{vins:?}");
    assert_eq!(all.iter().map(|v| v.events).sum::<i64>(), 9);
    db.drop_db().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn events_beyond_the_lateness_are_stored_but_not_windowed() {
    let db = TestDb::create("late").await;
    let mut sink = db.sink(Duration::from_secs(600));
    let now = events(3, 20, start(), 21);
    write(&mut sink, &batch(&now, 0, 0)).await;
    let old = events(2, 2, start() - TimeDelta::hours(2), 22);
    let recent = events(1, 1, start() - TimeDelta::minutes(5), 23);
    let mut mixed = old.clone();
    mixed.extend(recent);
    let w = write(&mut sink, &batch(&mixed, 0, 100)).await;
    assert_eq!((w.inserted, w.aggregates.late_dropped), (5, 4));
    assert!(
        w.aggregates
            .windows
            .iter()
            .all(|m| m.window_start > start() - TimeDelta::minutes(10)),
        "{:?}",
        w.aggregates.windows
    );
    let client = connect(&db.config).await;
    let first_report = check(&client, &HistogramBins::default()).await.unwrap();
    assert_eq!(first_report.diag_rows, 65);
    let pruned_before = start() + TimeDelta::minutes(18);
    let count = async |sql: &str| -> i64 {
        client
            .query_one(sql, &[&pruned_before])
            .await
            .unwrap()
            .get(0)
    };
    let remembered = "SELECT count(*) FROM window_vehicle_minutes WHERE minute_start < $1";
    assert!(count(remembered).await > 0);

    // Half an hour later the early windows are out of reach: their vehicles are forgotten,
    // their figures kept.
    let later = events(1, 1, start() + TimeDelta::minutes(30), 24);
    write(&mut sink, &batch(&later, 0, 200)).await;
    assert_eq!(count(remembered).await, 0);
    assert!(count("SELECT count(*) FROM window_metrics WHERE window_start < $1").await > 0);
    // Only the old events' windows and histograms differ from diag.
    assert!(!first_report.mismatches.is_empty());
    for m in &first_report.mismatches {
        assert!(
            (m.starts_with("window ") || m.starts_with("histogram ")) && m.contains(" 08:"),
            "{m}"
        );
    }
    drop(client);
    db.drop_db().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn concurrent_replicas_on_the_same_windows_add_up() {
    let db = TestDb::create("concurrent").await;
    let rows = events(12, 60, start(), 31);
    // Partition by vehicle as the broker does (key = VIN).
    let (p0, p1): (Vec<DiagRow>, Vec<DiagRow>) = rows
        .into_iter()
        .partition(|r| r.vin.ends_with(['0', '2', '4', '6', '8']));
    let mut tasks = Vec::new();
    for (partition, part) in [(0, p0), (1, p1)] {
        let mut sink = db.sink(Duration::from_secs(3600));
        tasks.push(tokio::spawn(async move {
            for (i, chunk) in part.chunks(37).enumerate() {
                write(&mut sink, &batch(chunk, partition, i as i64 * 37)).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("a writer");
    }
    let client = connect(&db.config).await;
    let report = check(&client, &HistogramBins::default()).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.mismatches);
    assert_eq!(report.diag_rows, 720);
    drop(client);
    db.drop_db().await;
}

/// `n` events of `vehicles` vehicles reporting once a second in event-time order, as a backlog
/// from a live fleet looks (event `i` is vehicle `i % vehicles`' event `i / vehicles`).
fn backlog(n: u64, vehicles: u64, start: DateTime<Utc>) -> Vec<DiagRow> {
    let mut noise = Noise(97);
    (0..n)
        .map(|i| {
            let (v, seq) = (i % vehicles, i / vehicles);
            let vin = Vin::parse_legacy(&format!("BACKLOG{v:010}")).unwrap();
            let mut e = TelemetryEvent::example(
                Uuid::from_u64_pair(97, i),
                vin,
                seq,
                EventTime(start + TimeDelta::seconds(seq as i64)),
            );
            let (make, model) = MAKES[(v % 3) as usize];
            e.make = make.into();
            e.model = model.into();
            e.speed = noise.range(0.0, 40.0);
            e.sensors = Some(Sensors {
                temperature_c: noise.range(-70.0, 80.0),
                humidity_pct: noise.range(0.0, 100.0),
                pressure_hpa: noise.range(880.0, 1120.0),
            });
            DiagRow::from_event(&e, 0, 0).unwrap()
        })
        .collect()
}

/// Writes a 20,000-event backlog of 1,000 vehicles in batches of 500 and of 5,000 (each into a
/// fresh database) and prints the rows per second; every row must be stored and every
/// aggregate must match `diag`. A measurement aid (`-- --ignored --nocapture throughput`) as
/// much as a check of long runs.
#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn backlog_batches_are_stored_whole_and_timed() {
    let rows = backlog(20_000, 1_000, start());
    for batch_size in [500, 5_000] {
        let db = TestDb::create(&format!("backlog{batch_size}")).await;
        let mut sink = db.sink(Duration::from_secs(3600));
        let started = std::time::Instant::now();
        let mut inserted = 0;
        for (i, chunk) in rows.chunks(batch_size).enumerate() {
            let first_offset = (i * batch_size) as i64;
            inserted += write(&mut sink, &batch(chunk, 0, first_offset))
                .await
                .inserted;
        }
        let elapsed = started.elapsed();
        eprintln!(
            "sink: {} rows in batches of {batch_size} in {:.2} s: {:.0} rows/s",
            rows.len(),
            elapsed.as_secs_f64(),
            rows.len() as f64 / elapsed.as_secs_f64()
        );
        assert_eq!(inserted, rows.len() as u64);
        let client = connect(&db.config).await;
        let report = check(&client, &HistogramBins::default()).await.unwrap();
        assert!(report.is_consistent(), "{:#?}", report.mismatches);
        assert_eq!(report.diag_rows, rows.len() as i64);
        drop(client);
        db.drop_db().await;
    }
}

/// The number of rows of `diag` and of distinct event ids in it.
async fn diag_counts(client: &Client) -> (i64, i64) {
    let row = client
        .query_one("SELECT count(*), count(DISTINCT event_id) FROM diag", &[])
        .await
        .expect("counting diag");
    (row.get(0), row.get(1))
}

/// The id sequence of `diag` running out (SQLSTATE 2200H, as the old 32-bit `serial` did at
/// 2^31) is the server's fault: nothing is dead-lettered, the batch is kept and fails again
/// while the sequence is exhausted, and once it is fixed every record is stored exactly once.
#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn exhausted_ids_dead_letter_nothing_and_every_record_is_stored_once_after_the_fix() {
    let db = TestDb::create("ids").await;
    let owner = connect(&db.owner_config).await;
    let mut sink = db.sink(Duration::from_secs(3600));
    let dlq = FakeDlq::default();
    let rows = events(3, 10, start(), 23);
    write(&mut sink, &batch(&rows[..5], 0, 0)).await;
    // Two ids left before the old serial's limit.
    owner
        .batch_execute(
            "ALTER SEQUENCE diag_id_seq MAXVALUE 2147483647;
             SELECT setval('diag_id_seq', 2147483645);",
        )
        .await
        .expect("bringing the id sequence to its end");
    let mut b = batch(&rows[5..], 0, 5);
    for _ in 0..3 {
        match flush(&mut b, &mut sink, &dlq).await {
            Err(FlushError::Sink(e)) => {
                assert!(!e.is_rejection(), "{e}");
                assert!(e.to_string().contains("2200H"), "{e}");
            }
            other => panic!("expected a server-side failure, got {other:?}"),
        }
        assert_eq!(b.entries().len(), rows.len() - 5, "no row left the batch");
        assert!(b.poison().is_empty());
    }
    assert!(dlq.sent.lock().unwrap().is_empty(), "nothing dead-lettered");
    owner
        .batch_execute("ALTER SEQUENCE diag_id_seq NO MAXVALUE")
        .await
        .expect("fixing the id sequence");
    let flushed = flush(&mut b, &mut sink, &dlq)
        .await
        .expect("stored after the fix");
    assert_eq!(flushed.dead_letters, 0);
    assert!(dlq.sent.lock().unwrap().is_empty());
    let client = connect(&db.config).await;
    assert_eq!(diag_counts(&client).await, (30, 30));
    let max_id: i64 = client
        .query_one("SELECT max(id) FROM diag", &[])
        .await
        .unwrap()
        .get(0);
    assert!(max_id > i64::from(i32::MAX), "ids go past 2^31: {max_id}");
    drop((client, owner));
    db.drop_db().await;
}

/// A `diag` made by the old schema (a 32-bit `serial` id) becomes 64-bit, column and
/// sequence, when the schema is applied, keeping its rows and its next id; applying it again
/// changes nothing.
#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn an_old_serial_id_is_migrated_to_bigint() {
    let db = TestDb::create_empty("migrate").await;
    let mut owner = connect(&db.owner_config).await;
    let old = fleet_common::schema::SCHEMA_SQL.replace(
        "id              bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "id              serial PRIMARY KEY",
    );
    let old_table = &old[..old.find("-- Tables made before").unwrap()];
    owner.batch_execute(old_table).await.expect("the old table");
    owner
        .batch_execute(
            "INSERT INTO diag (event_id, seq, ts, kafka_partition, kafka_offset)
             VALUES (gen_random_uuid(), 0, now(), 0, 0);
             SELECT setval('diag_id_seq', 2000000000);",
        )
        .await
        .unwrap();
    let app_role = db.config.get_user().unwrap().to_owned();
    for _ in 0..2 {
        fleet_common::schema::apply(&mut owner, &app_role)
            .await
            .expect("applying the schema to the old table");
        let row = owner
            .query_one(
                "SELECT (SELECT atttypid::regtype::text FROM pg_attribute
                          WHERE attrelid = 'diag'::regclass AND attname = 'id'),
                        (SELECT seqtypid::regtype::text || ' ' || seqmax FROM pg_sequence
                          WHERE seqrelid = 'diag_id_seq'::regclass),
                        (SELECT last_value FROM diag_id_seq),
                        (SELECT count(*) FROM diag)",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "bigint");
        assert_eq!(row.get::<_, String>(1), format!("bigint {}", i64::MAX));
        assert_eq!(row.get::<_, i64>(2), 2_000_000_000);
        assert_eq!(row.get::<_, i64>(3), 1);
    }
    drop(owner);
    db.drop_db().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn old_window_vehicles_become_minute_rows_and_keep_counting_once() {
    let db = TestDb::create_empty("window_vehicles").await;
    let mut owner = connect(&db.owner_config).await;
    let vin = "TESTVIN0000000001";
    // The old table as stacks made before hold it: the vehicle counted in second 10:00:05
    // and in the minute 10:00; a second row of another minute without its minute row.
    owner
        .batch_execute(&format!(
            "CREATE TABLE window_vehicles (granularity text NOT NULL,
                 window_start timestamptz NOT NULL, vin text NOT NULL,
                 PRIMARY KEY (granularity, window_start, vin));
             INSERT INTO window_vehicles VALUES
                 ('second', '2026-11-21T10:00:05Z', '{vin}'),
                 ('minute', '2026-11-21T10:00:00Z', '{vin}'),
                 ('second', '2026-11-21T10:01:59Z', '{vin}');"
        ))
        .await
        .expect("the old table");
    let app_role = db.config.get_user().unwrap().to_owned();
    for _ in 0..2 {
        fleet_common::schema::apply(&mut owner, &app_role)
            .await
            .expect("applying the schema over the old table");
        let rows = owner
            .query(
                "SELECT minute_start, seconds, to_regclass('window_vehicles') IS NULL
                   FROM window_vehicle_minutes ORDER BY 1",
                &[],
            )
            .await
            .unwrap();
        let got: Vec<(DateTime<Utc>, i64, bool)> = rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            got,
            vec![
                (t("2026-11-21T10:00:00Z"), (1 << 60) | (1 << 5), true),
                (t("2026-11-21T10:01:00Z"), 1 << 59, true)
            ]
        );
    }
    // New events of that vehicle: second 5 and the minute already count it, second 6 not yet.
    let mut rows = events(1, 2, start(), 1);
    for (row, ts) in rows
        .iter_mut()
        .zip(["2026-11-21T10:00:05.5Z", "2026-11-21T10:00:06.5Z"])
    {
        row.vin = vin.into();
        row.ts = ts.parse().unwrap();
    }
    let mut sink = db.sink(Duration::from_secs(365 * 24 * 3600));
    let w = write(&mut sink, &batch(&rows, 0, 0)).await;
    let mut vehicles: Vec<(String, i64)> = w
        .aggregates
        .windows
        .iter()
        .map(|m| (m.window_start.format("%H:%M:%S").to_string(), m.vehicles))
        .collect();
    vehicles.sort();
    assert_eq!(
        vehicles,
        vec![
            ("10:00:00".to_owned(), 0),
            ("10:00:05".to_owned(), 0),
            ("10:00:06".to_owned(), 1)
        ]
    );
    drop(owner);
    db.drop_db().await;
}

/// The largest batch the configuration allows, against a statement limit it does not fit in
/// whole: the batch is split until its parts fit, every record is stored exactly once, the
/// aggregates match `diag` and the offsets cover the whole batch.
#[tokio::test]
#[ignore = "needs PostgreSQL: set CONSUMER_TEST_PG"]
async fn the_largest_allowed_batch_is_split_until_it_fits_the_statement_limit() {
    let max = fleet_common::config::BatchMaxRecords::MAX as u64;
    let rows = backlog(max, 1_000, start());
    let db = TestDb::create("largest").await;
    // Far below what the whole batch needs on any machine (a bare binary COPY of 100,000 rows
    // takes about 1.5 s here), so the split is certain, not a matter of the machine's load.
    let limit = Duration::from_millis(250);
    let mut sink = db.sink_with_timeout(Duration::from_secs(3600), limit);
    let dlq = FakeDlq::default();
    let mut b = batch(&rows, 0, 0);
    let started = std::time::Instant::now();
    let flushed = flush(&mut b, &mut sink, &dlq)
        .await
        .expect("the largest batch is stored");
    let part = b.progress().part_len;
    eprintln!(
        "largest batch: {max} records in {:.1} s, parts of {part:?} (statement limit {limit:?})",
        started.elapsed().as_secs_f64()
    );
    assert!(part.is_some_and(|n| n < max as usize), "split: {part:?}");
    assert_eq!(flushed.inserted, max);
    let client = connect(&db.config).await;
    assert_eq!(diag_counts(&client).await, (max as i64, max as i64));
    let next: i64 = client
        .query_one("SELECT next_offset FROM consumer_offsets", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, max as i64);
    let report = check(&client, &HistogramBins::default()).await.unwrap();
    assert!(report.is_consistent(), "{:#?}", report.mismatches);
    drop(client);
    db.drop_db().await;
}
