//! A by-hand check of the aggregates against a brute-force recomputation from `diag`
//! (`consumer --check-analytics`): windows and counts by SQL `GROUP BY`, histograms by the
//! Rust binning rule. Exact only while no event was dropped from windows for lateness and the
//! histogram bins are the ones the aggregates were built with.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fleet_common::wire::{Granularity, Sensor};
use tokio_postgres::Client;

use super::histograms::HistogramBins;

/// What the check compared and where the aggregates differ from `diag`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CheckReport {
    /// Rows in `diag`.
    pub diag_rows: i64,
    /// Windows compared (both granularities).
    pub windows: i64,
    /// Vehicles compared.
    pub vehicles: i64,
    /// Make and model rows compared.
    pub make_models: i64,
    /// Histogram bins compared.
    pub histogram_bins: usize,
    /// One line per difference.
    pub mismatches: Vec<String>,
}

impl CheckReport {
    /// True when nothing differs.
    pub fn is_consistent(&self) -> bool {
        self.mismatches.is_empty()
    }
}

const DIFF_WINDOWS: &str = r#"
WITH brute AS (
    SELECT g.granularity, date_trunc(g.granularity, d.ts, 'UTC') AS window_start,
           count(*) AS events, count(DISTINCT d.vin) AS vehicles, avg(d.speed) AS mean_speed
      FROM diag d CROSS JOIN (VALUES ('second'), ('minute')) AS g(granularity)
     GROUP BY 1, 2
)
SELECT granularity, window_start, b.events, b.vehicles, b.mean_speed,
       m.events, m.vehicles, m.speed_sum / NULLIF(m.events, 0),
       count(*) OVER () AS compared
  FROM brute b FULL JOIN window_metrics m USING (granularity, window_start)
"#;

const DIFF_VEHICLES: &str = r#"
WITH span AS (
    SELECT vin::text AS vin, min(ts) AS first_seen, max(ts) AS last_seen, count(*) AS events
      FROM diag GROUP BY 1
), latest AS (
    SELECT DISTINCT ON (vin) vin::text AS vin, seq, position_x, position_y, lat, lon, speed
      FROM diag ORDER BY vin, ts DESC, seq DESC
), brute AS (
    SELECT * FROM span JOIN latest USING (vin)
)
SELECT vin,
       ROW(b.first_seen, b.last_seen, b.events, b.seq, b.position_x, b.position_y, b.lat, b.lon,
           b.speed)::text,
       ROW(v.first_seen, v.last_seen, v.events, v.last_seq, v.position_x, v.position_y, v.lat,
           v.lon, v.speed)::text
  FROM brute b FULL JOIN vehicle_summary v USING (vin)
 WHERE ROW(b.first_seen, b.last_seen, b.events, b.seq, b.position_x, b.position_y, b.lat,
           b.lon, b.speed)
       IS DISTINCT FROM
       ROW(v.first_seen, v.last_seen, v.events, v.last_seq, v.position_x, v.position_y, v.lat,
           v.lon, v.speed)
"#;

const DIFF_MAKE_MODELS: &str = r#"
WITH brute AS (
    SELECT make::text AS make, model::text AS model, count(*) AS events,
           count(DISTINCT vin) AS vehicles
      FROM diag GROUP BY 1, 2
    UNION ALL
    SELECT make::text, '', count(*), count(DISTINCT vin) FROM diag GROUP BY 1
)
SELECT make, model, b.events, b.vehicles, c.events, c.vehicles
  FROM brute b FULL JOIN make_model_counts c USING (make, model)
 WHERE (b.events, b.vehicles) IS DISTINCT FROM (c.events, c.vehicles)
"#;

/// Compares every aggregate table with a recomputation from `diag`.
pub async fn check(
    client: &Client,
    bins: &HistogramBins,
) -> Result<CheckReport, tokio_postgres::Error> {
    let mut report = CheckReport {
        diag_rows: client
            .query_one("SELECT count(*) FROM diag", &[])
            .await?
            .try_get(0)?,
        vehicles: client
            .query_one("SELECT count(*) FROM vehicle_summary", &[])
            .await?
            .try_get(0)?,
        make_models: client
            .query_one("SELECT count(*) FROM make_model_counts", &[])
            .await?
            .try_get(0)?,
        ..CheckReport::default()
    };

    for row in client.query(DIFF_WINDOWS, &[]).await? {
        report.windows = row.try_get("compared")?;
        let granularity: String = row.try_get(0)?;
        let start: DateTime<Utc> = row.try_get(1)?;
        let brute: (Option<i64>, Option<i64>, Option<f64>) =
            (row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
        let stored: (Option<i64>, Option<i64>, Option<f64>) =
            (row.try_get(5)?, row.try_get(6)?, row.try_get(7)?);
        let speeds_agree = match (brute.2, stored.2) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
            (a, b) => a.is_none() && b.is_none(),
        };
        if brute.0 != stored.0 || brute.1 != stored.1 || !speeds_agree {
            report.mismatches.push(format!(
                "window {granularity} {start}: diag (events, vehicles, mean speed) = {brute:?}, \
                 window_metrics = {stored:?}"
            ));
        }
    }

    for row in client.query(DIFF_VEHICLES, &[]).await? {
        let vin: String = row.try_get(0)?;
        let brute: Option<String> = row.try_get(1)?;
        let stored: Option<String> = row.try_get(2)?;
        report.mismatches.push(format!(
            "vehicle {vin}: diag {brute:?}, vehicle_summary {stored:?}"
        ));
    }

    for row in client.query(DIFF_MAKE_MODELS, &[]).await? {
        let make: String = row.try_get(0)?;
        let model: String = row.try_get(1)?;
        let brute: (Option<i64>, Option<i64>) = (row.try_get(2)?, row.try_get(3)?);
        let stored: (Option<i64>, Option<i64>) = (row.try_get(4)?, row.try_get(5)?);
        report.mismatches.push(format!(
            "make/model {make}/{model:?}: diag (events, vehicles) = {brute:?}, \
             make_model_counts = {stored:?}"
        ));
    }

    check_histograms(client, bins, &mut report).await?;
    Ok(report)
}

/// Bins every `diag` row in Rust and compares the counts with `sensor_histograms`.
async fn check_histograms(
    client: &Client,
    bins: &HistogramBins,
    report: &mut CheckReport,
) -> Result<(), tokio_postgres::Error> {
    type Cell = (Sensor, DateTime<Utc>, u64);
    let mut brute: HashMap<Cell, i64> = HashMap::new();
    let rows = client
        .query(
            "SELECT ts, temperature_c, humidity_pct, pressure_hpa FROM diag",
            &[],
        )
        .await?;
    for row in rows {
        let ts: DateTime<Utc> = row.try_get(0)?;
        let window = Granularity::Minute.window_start(ts);
        for (i, sensor) in Sensor::ALL.into_iter().enumerate() {
            let Some(value) = row.try_get::<_, Option<f64>>(i + 1)? else {
                continue; // no reading (the old client has no sensors): in no bin
            };
            let lower = bins.of(sensor).bin_lower(value);
            *brute.entry((sensor, window, lower.to_bits())).or_default() += 1;
        }
    }
    let mut stored: HashMap<Cell, i64> = HashMap::new();
    for row in client
        .query(
            "SELECT sensor, window_start, bin_lower, count FROM sensor_histograms",
            &[],
        )
        .await?
    {
        let name: String = row.try_get(0)?;
        let Some(sensor) = Sensor::from_name(&name) else {
            report
                .mismatches
                .push(format!("sensor_histograms: unknown sensor {name:?}"));
            continue;
        };
        let lower: f64 = row.try_get(2)?;
        stored.insert((sensor, row.try_get(1)?, lower.to_bits()), row.try_get(3)?);
    }
    report.histogram_bins = brute.len().max(stored.len());
    let mut cells: Vec<&Cell> = brute.keys().chain(stored.keys()).collect();
    cells.sort();
    cells.dedup();
    for cell in cells {
        let (b, s) = (brute.get(cell), stored.get(cell));
        if b != s {
            let (sensor, window, lower) = cell;
            report.mismatches.push(format!(
                "histogram {sensor} {window} bin {}: diag {b:?}, sensor_histograms {s:?}",
                f64::from_bits(*lower)
            ));
        }
    }
    Ok(())
}
