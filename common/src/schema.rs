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
