//! The PostgreSQL schema of `av_telemetry`. Every statement is idempotent, so applying it to an
//! existing database changes nothing.
//!
//! [`apply`] runs it under an advisory lock, so concurrent appliers do not race.
//!
//! `diag` keeps the old table's columns unchanged (so old queries still work) and adds the
//! idempotency key, the per-vehicle sequence, event time, sensors and the Kafka position.

/// The statements, in order, as one script.
pub const SCHEMA_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS diag (
    id              serial PRIMARY KEY,
    timestamp       float,
    vin             char(17),
    make            varchar(20),
    model           varchar(20),
    position_x      float,
    position_y      float,
    position_z      float,
    speed           float,
    event_id        uuid UNIQUE NOT NULL,
    seq             bigint NOT NULL,
    ts              timestamptz NOT NULL,
    heading         float,
    lat             float,
    lon             float,
    temperature_c   float,
    humidity_pct    float,
    pressure_hpa    float,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    ingested_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS diag_vin_seq ON diag (vin, seq);

CREATE TABLE IF NOT EXISTS consumer_offsets (
    consumer_group  text    NOT NULL,
    topic           text    NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint  NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);

-- Stream analytics, maintained by the consumer in the transaction of each batch from the rows
-- it really inserted into diag (a replay adds nothing).

-- Per vehicle: first and last event time, events, and the position and speed of the event
-- with the greatest (ts, seq).
CREATE TABLE IF NOT EXISTS vehicle_summary (
    vin         text PRIMARY KEY,
    make        text NOT NULL,
    model       text NOT NULL,
    first_seen  timestamptz NOT NULL,
    last_seen   timestamptz NOT NULL,
    last_seq    bigint NOT NULL,
    events      bigint NOT NULL,
    position_x  float8 NOT NULL,
    position_y  float8 NOT NULL,
    lat         float8 NOT NULL,
    lon         float8 NOT NULL,
    speed       float8 NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Per make and model (model = '' holds the make's total): events and distinct vehicles.
CREATE TABLE IF NOT EXISTS make_model_counts (
    make        text NOT NULL,
    model       text NOT NULL,
    events      bigint NOT NULL,
    vehicles    bigint NOT NULL,
    PRIMARY KEY (make, model)
);
-- The vehicles already counted in make_model_counts.vehicles.
CREATE TABLE IF NOT EXISTS make_model_vehicles (
    make        text NOT NULL,
    model       text NOT NULL,
    vin         text NOT NULL,
    PRIMARY KEY (make, model, vin)
);

-- Per-second and per-minute windows by event time (UTC); mean speed = speed_sum / events.
CREATE TABLE IF NOT EXISTS window_metrics (
    granularity  text NOT NULL CHECK (granularity IN ('second', 'minute')),
    window_start timestamptz NOT NULL,
    events       bigint NOT NULL,
    vehicles     bigint NOT NULL,
    speed_sum    float8 NOT NULL,
    PRIMARY KEY (granularity, window_start)
);
-- The vehicles already counted in window_metrics.vehicles.
CREATE TABLE IF NOT EXISTS window_vehicles (
    granularity  text NOT NULL,
    window_start timestamptz NOT NULL,
    vin          text NOT NULL,
    PRIMARY KEY (granularity, window_start, vin)
);
-- The greatest event time stored per input topic; events older than it by more than the
-- allowed lateness are not counted in windows.
CREATE TABLE IF NOT EXISTS window_watermark (
    topic        text PRIMARY KEY,
    max_ts       timestamptz NOT NULL
);

-- Per sensor and minute window: events per bin. bin_lower is the bin's lower bound;
-- '-Infinity' for values below the first bin, the upper bound of the range for values at or
-- above it.
CREATE TABLE IF NOT EXISTS sensor_histograms (
    sensor       text NOT NULL,
    window_start timestamptz NOT NULL,
    bin_lower    float8 NOT NULL,
    count        bigint NOT NULL,
    PRIMARY KEY (sensor, window_start, bin_lower)
);
"#;

/// Key of the advisory lock held while the schema is applied, so that the orchestrator and
/// consumer replicas starting together do not race on `CREATE TABLE IF NOT EXISTS`.
pub const SCHEMA_LOCK_KEY: i64 = 0x666c_6565_7473_6368; // "fleetsch"

/// Applies [`SCHEMA_SQL`] in one transaction under [`SCHEMA_LOCK_KEY`].
pub async fn apply(client: &mut tokio_postgres::Client) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // "already exists, skipping" notices are expected on every run.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK_KEY])
        .await?;
    tx.batch_execute(SCHEMA_SQL).await?;
    tx.commit().await
}
