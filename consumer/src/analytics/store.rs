//! The analytics part of a batch's transaction: the `diag` insert returns the rows it really
//! inserted (by Kafka position) and raises the event-time watermark; what those rows add to
//! each aggregate is computed in Rust ([`super::delta`]) and folded in with one upsert per
//! aggregate, all sent at once (pipelined on the connection). A replayed batch (nothing
//! inserted) changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use fleet_common::wire::{Granularity, Histogram, VehicleSummary, WindowMetric};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Statement, Transaction};

use super::delta::{self, Known, Probed};
use super::histograms::{self, HistogramBins};
use super::summary;
use super::windows::{self, Lateness};
use crate::row::DiagRow;

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

/// Where `window_vehicle_minutes` was last pruned: windows before this start were deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pruned(pub Option<DateTime<Utc>>);

impl Pruned {
    /// The bound to prune `window_vehicle_minutes` to for `cutoff`, when it moved into a later minute
    /// since the last pruning (pruning is garbage collection: once a minute is enough).
    pub fn due(self, cutoff: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        let bound = cutoff?.checked_sub_signed(windows::PRUNE_MARGIN)?;
        let minute = Granularity::Minute.window_start(bound);
        match self.0 {
            Some(last) if Granularity::Minute.window_start(last) >= minute => None,
            _ => Some(bound),
        }
    }
}

/// What a batch's analytics did, besides the aggregates: to apply to the sink's memory once
/// the transaction committed.
#[derive(Debug, Default)]
pub struct Learnt {
    /// Pairs the aggregate tables hold now.
    pub probed: Probed,
    /// The bound `window_vehicle_minutes` was pruned to, if it was.
    pub pruned: Option<DateTime<Utc>>,
}

impl Learnt {
    /// Applies what the committed batch taught to `known` and `pruned`.
    pub fn apply(self, known: &mut Known, pruned: &mut Pruned) {
        if let Some(bound) = self.pruned {
            known.forget_windows_before(bound);
            pruned.0 = Some(bound);
        }
        known.learn(self.probed);
    }
}

/// The analytics statements, prepared on one connection.
pub struct Statements {
    /// The `diag` insert that returns what it inserted and raises the watermark (`$1` =
    /// topic); see [`windows::watermarked_insert`].
    pub insert: Statement,
    /// Raises the watermark (`$1` = topic) to `$2` and returns it; for a batch copied whole
    /// into `diag` ([`windows::raise_watermark`]).
    pub raise_watermark: Statement,
    vehicles: Statement,
    make_models: Statement,
    prune: Statement,
    windows: Statement,
    histograms: Statement,
    select_histograms: Statement,
}

impl Statements {
    /// Prepares the statements; `insert_diag` is the plain `diag` insert (no parameters).
    pub async fn prepare(
        client: &Client,
        insert_diag: &str,
    ) -> Result<Self, tokio_postgres::Error> {
        let insert_sql = windows::watermarked_insert(insert_diag);
        let raise_sql = windows::raise_watermark();
        let (
            insert,
            raise_watermark,
            vehicles,
            make_models,
            prune,
            windows,
            histograms,
            select_histograms,
        ) = futures::try_join!(
            client.prepare(&insert_sql),
            client.prepare(&raise_sql),
            client.prepare(summary::UPSERT_VEHICLES),
            client.prepare(summary::UPSERT_MAKE_MODELS),
            client.prepare(windows::PRUNE_WINDOW_VEHICLES),
            client.prepare(windows::UPSERT_WINDOWS),
            client.prepare(histograms::UPSERT_HISTOGRAMS),
            client.prepare(histograms::SELECT_HISTOGRAMS),
        )?;
        Ok(Self {
            insert,
            raise_watermark,
            vehicles,
            make_models,
            prune,
            windows,
            histograms,
            select_histograms,
        })
    }

    /// Folds `rows` (the rows the batch really inserted) into every aggregate, with the
    /// topic's `watermark` as the insert raised it, and returns the changed aggregates.
    /// `known` and `pruned` are the sink's memory; what to add to it comes back with the
    /// aggregates, to apply after the commit.
    pub async fn update(
        &self,
        tx: &Transaction<'_>,
        rows: &[&DiagRow],
        watermark: DateTime<Utc>,
        settings: &AnalyticsSettings,
        known: &Known,
        pruned: Pruned,
    ) -> Result<(Aggregates, Learnt), tokio_postgres::Error> {
        let cutoff = Lateness(settings.allowed_lateness).cutoff(watermark);
        let (delta, probed) = delta::compute(rows, cutoff, &settings.bins, known);
        let prune_to = pruned.due(cutoff);
        let (v, m, w, h) = (
            &delta.vehicles,
            &delta.make_models,
            &delta.windows,
            &delta.histograms,
        );
        let vehicle_params: [&(dyn ToSql + Sync); 12] = [
            &v.vin,
            &v.make,
            &v.model,
            &v.first_seen,
            &v.last_seen,
            &v.last_seq,
            &v.events,
            &v.position_x,
            &v.position_y,
            &v.lat,
            &v.lon,
            &v.speed,
        ];
        let make_model_params: [&(dyn ToSql + Sync); 6] = [
            &m.pair_make,
            &m.pair_model,
            &m.pair_vin,
            &m.make,
            &m.model,
            &m.events,
        ];
        let window_params: [&(dyn ToSql + Sync); 7] = [
            &w.granularity,
            &w.window_start,
            &w.events,
            &w.speed_sum,
            &w.vehicle_minute_start,
            &w.vehicle_vin,
            &w.vehicle_second,
        ];
        let histogram_params: [&(dyn ToSql + Sync); 4] =
            [&h.sensor, &h.window_start, &h.bin_lower, &h.count];
        let touched_params: [&(dyn ToSql + Sync); 2] = [&h.touched_sensor, &h.touched_window_start];
        // Sent in this order at once (each request goes out when its future is first
        // polled); the histograms are read back after their upsert.
        let prune = async {
            match prune_to {
                Some(_) => tx.execute(&self.prune, &[&cutoff]).await,
                None => Ok(0),
            }
        };
        let (vehicle_rows, _, _, window_rows, _, histogram_rows) = futures::try_join!(
            tx.query(&self.vehicles, &vehicle_params),
            tx.execute(&self.make_models, &make_model_params),
            prune,
            tx.query(&self.windows, &window_params),
            tx.execute(&self.histograms, &histogram_params),
            tx.query(&self.select_histograms, &touched_params),
        )?;

        let vehicles = vehicle_rows
            .iter()
            .map(summary::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let mut windows = Vec::new();
        for row in &window_rows {
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
        let histograms = histograms::group_bins(
            histogram_rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect::<Result<Vec<_>, tokio_postgres::Error>>()?,
        );
        let aggregates = Aggregates {
            vehicles,
            windows,
            histograms,
            late_dropped: delta.late,
        };
        Ok((
            aggregates,
            Learnt {
                probed,
                pruned: prune_to,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn pruning_is_due_once_per_minute_of_cutoff() {
        let never = Pruned::default();
        assert_eq!(never.due(None), None, "no cutoff, nothing out of reach");
        let cutoff = t("2026-11-21T10:05:30Z");
        assert_eq!(never.due(Some(cutoff)), Some(t("2026-11-21T10:03:30Z")));
        let done = Pruned(Some(t("2026-11-21T10:03:30Z")));
        assert_eq!(done.due(Some(t("2026-11-21T10:05:59Z"))), None);
        assert_eq!(
            done.due(Some(t("2026-11-21T10:06:00Z"))),
            Some(t("2026-11-21T10:04:00Z"))
        );
    }
}
