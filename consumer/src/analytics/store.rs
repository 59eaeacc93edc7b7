//! The analytics part of a batch's transaction: the rows really inserted into `diag` are
//! staged in a temporary table (`RETURNING` of the insert), and every aggregate is updated
//! from that table only, so a replayed batch (nothing inserted) changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement, Transaction};

use super::histograms::{self, Histogram, HistogramBins, Sensor};
use super::summary::{self, VehicleSummary};
use super::windows::{self, Granularity, Lateness, WindowMetric};

/// What the analytics need to know.
#[derive(Debug, Clone)]
pub struct AnalyticsSettings {
    /// The input topic, key of the event-time watermark.
    pub topic: String,
    /// How far behind the watermark an event may be and still count in windows.
    pub allowed_lateness: Duration,
    /// Histogram bins per sensor.
    pub bins: HistogramBins,
}

/// The aggregates a batch changed, as they are after it, and what it left out of windows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregates {
    /// Vehicles with new events.
    pub vehicles: Vec<VehicleSummary>,
    /// Windows with new events.
    pub windows: Vec<WindowMetric>,
    /// Complete histograms of the minute windows with new events.
    pub histograms: Vec<Histogram>,
    /// New events too late for their windows.
    pub late_dropped: u64,
}

/// The columns staged from `diag`'s `RETURNING` list.
const STAGED_COLUMNS: &str = "event_id, vin, make, model, ts, seq, position_x, position_y, \
                              lat, lon, speed, temperature_c, humidity_pct, pressure_hpa";

/// The per-session table of the rows inserted by the current transaction; emptied at commit.
const CREATE_STAGED: &str = r#"
CREATE TEMPORARY TABLE IF NOT EXISTS analytics_staged (
    event_id uuid, vin text, make text, model text, ts timestamptz, seq bigint,
    position_x float8, position_y float8, lat float8, lon float8, speed float8,
    temperature_c float8, humidity_pct float8, pressure_hpa float8
) ON COMMIT DELETE ROWS
"#;

/// `insert_diag` (an `INSERT INTO diag ... ON CONFLICT DO NOTHING`) made to stage the rows it
/// really inserts; its row count stays the number inserted.
pub fn staging_insert(insert_diag: &str) -> String {
    format!(
        "WITH inserted AS ({} RETURNING {STAGED_COLUMNS})\n\
         INSERT INTO analytics_staged ({STAGED_COLUMNS}) SELECT {STAGED_COLUMNS} FROM inserted",
        insert_diag.trim_end()
    )
}

/// The analytics statements, prepared on one connection.
pub struct Statements {
    /// The `diag` insert that stages what it inserts.
    pub stage: Statement,
    vehicles: Statement,
    make_models: Statement,
    watermark: Statement,
    late: Statement,
    windows: Statement,
    prune: Statement,
    histograms: Statement,
    select_histograms: Statement,
}

impl Statements {
    /// Creates the session's staging table and prepares the statements; `insert_diag` is the
    /// plain `diag` insert.
    pub async fn prepare(
        client: &Client,
        insert_diag: &str,
    ) -> Result<Self, tokio_postgres::Error> {
        client
            .batch_execute(&format!(
                "SET client_min_messages = warning; {CREATE_STAGED}; RESET client_min_messages"
            ))
            .await?;
        Ok(Self {
            stage: client.prepare(&staging_insert(insert_diag)).await?,
            vehicles: client.prepare(summary::UPSERT_VEHICLES).await?,
            make_models: client.prepare(summary::UPSERT_MAKE_MODELS).await?,
            watermark: client.prepare(windows::ADVANCE_WATERMARK).await?,
            late: client.prepare(windows::COUNT_LATE).await?,
            windows: client.prepare(windows::UPSERT_WINDOWS).await?,
            prune: client.prepare(windows::PRUNE_WINDOW_VEHICLES).await?,
            histograms: client.prepare(histograms::UPSERT_HISTOGRAMS).await?,
            select_histograms: client.prepare(histograms::SELECT_HISTOGRAMS).await?,
        })
    }

    /// Folds the rows staged by [`stage`](Self::stage) in `tx` into every aggregate and
    /// returns the changed ones. Call only when rows were inserted.
    pub async fn update(
        &self,
        tx: &Transaction<'_>,
        settings: &AnalyticsSettings,
    ) -> Result<Aggregates, tokio_postgres::Error> {
        let vehicles = tx
            .query(&self.vehicles, &[])
            .await?
            .iter()
            .map(VehicleSummary::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        tx.execute(&self.make_models, &[]).await?;

        let watermark: Option<DateTime<Utc>> = tx
            .query_opt(&self.watermark, &[&settings.topic])
            .await?
            .map(|row| row.try_get(0))
            .transpose()?;
        let Some(watermark) = watermark else {
            // Nothing staged.
            return Ok(Aggregates {
                vehicles,
                ..Aggregates::default()
            });
        };
        let cutoff = Lateness(settings.allowed_lateness).cutoff(watermark);
        let late: i64 = match cutoff {
            Some(_) => {
                tx.execute(&self.prune, &[&cutoff]).await?;
                tx.query_one(&self.late, &[&cutoff]).await?.try_get(0)?
            }
            None => 0,
        };

        let mut windows = Vec::new();
        for row in tx.query(&self.windows, &[&cutoff]).await? {
            let name: String = row.try_get("granularity")?;
            let Some(granularity) = Granularity::from_name(&name) else {
                continue;
            };
            windows.push(WindowMetric {
                granularity,
                window_start: row.try_get("window_start")?,
                events: row.try_get("events")?,
                vehicles: row.try_get("vehicles")?,
                speed_sum: row.try_get("speed_sum")?,
            });
        }

        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&cutoff];
        let bins: Vec<_> = Sensor::ALL.iter().map(|s| settings.bins.of(*s)).collect();
        for b in &bins {
            params.extend([&b.lower as &(dyn ToSql + Sync), &b.upper, &b.width]);
        }
        tx.execute(&self.histograms, &params).await?;
        let rows = tx.query(&self.select_histograms, &[&cutoff]).await?;
        let histograms = histograms::group_bins(
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()?,
        );

        Ok(Aggregates {
            vehicles,
            windows,
            histograms,
            late_dropped: u64::try_from(late).unwrap_or(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_keeps_the_insert_and_returns_every_staged_column() {
        let sql =
            staging_insert("INSERT INTO diag (a) VALUES (1) ON CONFLICT (event_id) DO NOTHING\n");
        assert!(sql.starts_with(
            "WITH inserted AS (INSERT INTO diag (a) VALUES (1) ON CONFLICT (event_id) DO NOTHING RETURNING event_id,"
        ));
        assert!(sql.contains("INSERT INTO analytics_staged (event_id, vin,"));
        for column in STAGED_COLUMNS.split(", ") {
            assert!(CREATE_STAGED.contains(&format!(" {column} ")), "{column}");
        }
    }
}
