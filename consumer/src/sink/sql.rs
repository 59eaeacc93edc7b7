//! The SQL of the sink: the `unnest` insert of the probe, the binary `COPY` straight into
//! `diag`, the staging table with its binary `COPY` and the insert from it, and the offsets'
//! upsert and select.

use tokio_postgres::types::Type;

/// The batch's rows into `diag` from one array per column ([`super::columns::Columns::params`]), each
/// event once; the probe's statement.
pub(super) const INSERT_DIAG: &str = r#"
INSERT INTO diag ("timestamp", vin, make, model, position_x, position_y, position_z, speed,
                  event_id, seq, ts, heading, lat, lon, temperature_c, humidity_pct,
                  pressure_hpa, kafka_partition, kafka_offset)
SELECT * FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[], $5::float8[],
                     $6::float8[], $7::float8[], $8::float8[], $9::uuid[], $10::int8[],
                     $11::timestamptz[], $12::float8[], $13::float8[], $14::float8[],
                     $15::float8[], $16::float8[], $17::float8[], $18::int4[], $19::int8[])
ON CONFLICT (event_id) DO NOTHING
"#;

/// The columns a batch gives `diag`, in the order of the staging table and of the copy.
pub(super) use fleet_common::schema::DIAG_WRITTEN_COLUMNS as DIAG_COLUMNS;

/// The connection's staging table: a batch's rows are copied into it (binary `COPY`) and
/// inserted into `diag` from there by one statement; emptied at every commit, and rolled back
/// with a failed transaction.
pub(super) const CREATE_STAGING: &str = r#"
CREATE TEMP TABLE IF NOT EXISTS diag_staging (
    "timestamp" float8, vin text, make text, model text, position_x float8, position_y float8,
    position_z float8, speed float8, event_id uuid, seq int8, ts timestamptz, heading float8,
    lat float8, lon float8, temperature_c float8, humidity_pct float8, pressure_hpa float8,
    kafka_partition int4, kafka_offset int8
) ON COMMIT DELETE ROWS
"#;

/// The types of the staging table's columns, in order (those of [`super::columns::Columns::params`]).
pub(super) const STAGING_TYPES: [Type; 19] = [
    Type::FLOAT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::UUID,
    Type::INT8,
    Type::TIMESTAMPTZ,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::INT4,
    Type::INT8,
];

/// The copy of a batch's rows straight into `diag`: all of them or, on any clash or refused
/// value, none (the batch then goes through the staging table).
pub(super) fn copy_diag() -> String {
    format!("COPY diag ({DIAG_COLUMNS}) FROM STDIN (FORMAT binary)")
}

/// The copy of a batch's rows into the staging table.
pub(super) const COPY_STAGING: &str = "COPY diag_staging FROM STDIN (FORMAT binary)";

/// The rows of the staging table into `diag`, each event once (a replay inserts nothing).
pub(super) fn insert_from_staging() -> String {
    format!(
        "INSERT INTO diag ({DIAG_COLUMNS})\nSELECT {DIAG_COLUMNS} FROM diag_staging\n\
         ON CONFLICT (event_id) DO NOTHING"
    )
}

/// The partitions' next offsets of this group and topic, never moved back.
pub(super) const UPSERT_OFFSETS: &str = r#"
INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset, updated_at)
SELECT $1, $2, p, o, now() FROM unnest($3::int4[], $4::int8[]) AS t(p, o)
ON CONFLICT (consumer_group, topic, kafka_partition) DO UPDATE
   SET next_offset = GREATEST(consumer_offsets.next_offset, EXCLUDED.next_offset),
       updated_at = now()
"#;

/// The stored next offsets of some partitions of this group and topic.
pub(super) const SELECT_OFFSETS: &str = r#"
SELECT kafka_partition, next_offset FROM consumer_offsets
 WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = ANY($3::int4[])
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_fills_the_columns_the_unnest_insert_fills() {
        let names = |sql: &str| -> Vec<String> {
            sql.split(',')
                .map(|c| c.trim().trim_matches('"').to_owned())
                .collect()
        };
        let unnest_columns = INSERT_DIAG
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(cols, _)| names(cols))
            .unwrap();
        assert_eq!(names(DIAG_COLUMNS), unnest_columns);
        assert_eq!(STAGING_TYPES.len(), unnest_columns.len());
        for column in &unnest_columns {
            assert!(CREATE_STAGING.contains(column.as_str()), "{column}");
        }
        let insert = insert_from_staging();
        assert!(
            insert.contains("FROM diag_staging")
                && insert.contains("ON CONFLICT (event_id) DO NOTHING")
        );
        assert!(CREATE_STAGING.contains("ON COMMIT DELETE ROWS"));
        assert!(copy_diag().starts_with(&format!("COPY diag ({DIAG_COLUMNS})")));
    }

    #[test]
    fn offsets_upsert_never_moves_back() {
        assert!(UPSERT_OFFSETS.contains("GREATEST(consumer_offsets.next_offset"));
    }
}
