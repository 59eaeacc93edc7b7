//! A batch's rows as one array per `diag` column: the parameters of the `unnest` insert that
//! the probe for refused rows runs.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::batch::Entry;

/// The batch's rows as one array per `diag` column, the parameters of the `unnest` insert.
#[derive(Debug, Default, PartialEq)]
pub struct Columns {
    timestamp: Vec<f64>,
    vin: Vec<String>,
    make: Vec<String>,
    model: Vec<String>,
    position_x: Vec<f64>,
    position_y: Vec<f64>,
    position_z: Vec<f64>,
    speed: Vec<f64>,
    event_id: Vec<Uuid>,
    seq: Vec<i64>,
    ts: Vec<DateTime<Utc>>,
    heading: Vec<f64>,
    lat: Vec<f64>,
    lon: Vec<f64>,
    temperature_c: Vec<Option<f64>>,
    humidity_pct: Vec<Option<f64>>,
    pressure_hpa: Vec<Option<f64>>,
    kafka_partition: Vec<i32>,
    kafka_offset: Vec<i64>,
}

impl Columns {
    /// Splits rows into columns.
    pub fn new<'a>(entries: impl IntoIterator<Item = &'a Entry>) -> Self {
        let mut c = Self::default();
        for Entry { row: r, .. } in entries {
            c.timestamp.push(r.timestamp);
            c.vin.push(r.vin.clone());
            c.make.push(r.make.clone());
            c.model.push(r.model.clone());
            c.position_x.push(r.position_x);
            c.position_y.push(r.position_y);
            c.position_z.push(r.position_z);
            c.speed.push(r.speed);
            c.event_id.push(r.event_id);
            c.seq.push(r.seq);
            c.ts.push(r.ts);
            c.heading.push(r.heading);
            c.lat.push(r.lat);
            c.lon.push(r.lon);
            c.temperature_c.push(r.temperature_c);
            c.humidity_pct.push(r.humidity_pct);
            c.pressure_hpa.push(r.pressure_hpa);
            c.kafka_partition.push(r.kafka_partition);
            c.kafka_offset.push(r.kafka_offset);
        }
        c
    }

    /// The parameters `$1..$19` of the insert, in column order.
    pub fn params(&self) -> [&(dyn ToSql + Sync); 19] {
        [
            &self.timestamp,
            &self.vin,
            &self.make,
            &self.model,
            &self.position_x,
            &self.position_y,
            &self.position_z,
            &self.speed,
            &self.event_id,
            &self.seq,
            &self.ts,
            &self.heading,
            &self.lat,
            &self.lon,
            &self.temperature_c,
            &self.humidity_pct,
            &self.pressure_hpa,
            &self.kafka_partition,
            &self.kafka_offset,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::entry;
    use super::super::sql::INSERT_DIAG;
    use super::*;

    #[test]
    fn columns_keep_row_order() {
        let entries = [entry(1), entry(2), entry(3)];
        let c = Columns::new(&entries);
        assert!(Columns::default().event_id.is_empty());
        assert_eq!(c.seq, vec![1, 2, 3]);
        assert_eq!(c.kafka_offset, vec![101, 102, 103]);
        assert_eq!(c.kafka_partition, vec![1, 1, 1]);
        assert_eq!(c.event_id[1], entries[1].row.event_id);
        assert_eq!(c.vin[0], "1M8GDM9AXKP042788");
    }

    #[test]
    fn one_parameter_per_insert_column() {
        let columns_in_sql = INSERT_DIAG
            .split_once('(')
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(cols, _)| cols.split(',').count())
            .unwrap();
        assert_eq!(columns_in_sql, Columns::default().params().len());
        assert!(INSERT_DIAG.contains("$19::int8[]") && !INSERT_DIAG.contains("$20"));
    }
}
