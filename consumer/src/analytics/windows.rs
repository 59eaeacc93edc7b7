//! Per-second and per-minute windows by event time (UTC): the allowed lateness and the SQL
//! that maintains `window_metrics` (whose rows are the wire type
//! [`fleet_common::wire::WindowMetric`]).

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_common::wire::Granularity;

/// How late an event may be and still count in its windows: events older than the greatest
/// stored event time (the watermark) by more than this are stored in `diag` and the other
/// aggregates, but not in `window_metrics` or `sensor_histograms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lateness(pub Duration);

impl Lateness {
    /// The oldest event time still counted when the watermark is `watermark`; `None` when
    /// the lateness reaches beyond any representable time (everything counts).
    pub fn cutoff(self, watermark: DateTime<Utc>) -> Option<DateTime<Utc>> {
        TimeDelta::from_std(self.0)
            .ok()
            .and_then(|d| watermark.checked_sub_signed(d))
    }
}

/// `insert_diag` (an `INSERT INTO diag ... ON CONFLICT DO NOTHING` without parameters) made to
/// return the Kafka position of every row it really inserts, with the topic's (`$1`) watermark raised to the
/// greatest event time among them and returned on every row (nothing when nothing was
/// inserted).
pub(crate) fn watermarked_insert(insert_diag: &str) -> String {
    format!(
        "WITH inserted AS ({} RETURNING kafka_partition, kafka_offset, ts), watermark AS (\n\
         {}\n\
         SELECT $1, max(ts) FROM inserted HAVING count(*) > 0\n\
         {RAISE_ON_CONFLICT})\n\
         SELECT kafka_partition, kafka_offset, (SELECT max_ts FROM watermark) FROM inserted",
        insert_diag.trim_end(),
        INSERT_WATERMARK
    )
}

/// Raises the topic's (`$1`) watermark to `$2` (the greatest event time of a batch copied
/// whole into `diag`) and returns it as it is after the raise.
pub(crate) fn raise_watermark() -> String {
    format!("{INSERT_WATERMARK}\nVALUES ($1, $2)\n{RAISE_ON_CONFLICT}")
}

/// The head of both watermark raises.
const INSERT_WATERMARK: &str = "INSERT INTO window_watermark AS m (topic, max_ts)";

/// The tail of both watermark raises: the watermark never moves back, and is returned as it is
/// after the raise.
const RAISE_ON_CONFLICT: &str = "ON CONFLICT (topic) DO UPDATE SET max_ts = GREATEST(m.max_ts, EXCLUDED.max_ts)\n\
     RETURNING max_ts";

/// Bit of `window_vehicle_minutes.seconds` that says the vehicle is counted in the minute
/// window itself; bits 0 to 59 are the seconds of that minute it is counted in.
pub(crate) const MINUTE_BIT: i64 = 1 << 60;

/// The bit of `window_vehicle_minutes.seconds` for the second window starting at `start`.
pub(crate) fn second_bit(start: DateTime<Utc>) -> i64 {
    1 << (start - Granularity::Minute.window_start(start)).num_seconds()
}

/// Forgets which vehicles were counted in windows that no event can reach any more: those
/// that ended over a minute before the cutoff `$1`. (Raising the allowed lateness later lets
/// events reach such windows again; their vehicles may then be counted twice.)
pub(crate) const PRUNE_WINDOW_VEHICLES: &str = r#"
DELETE FROM window_vehicle_minutes WHERE minute_start < $1::timestamptz - interval '2 minutes'
"#;

/// How far before the cutoff [`PRUNE_WINDOW_VEHICLES`] forgets windows.
pub(crate) const PRUNE_MARGIN: TimeDelta = TimeDelta::minutes(2);

/// Adds the new events per window (`$1..$4`: granularity, start, events, speed sum; only
/// events at or after the cutoff) to `window_metrics`; a vehicle counts once per window.
/// `$5..$7` are the `(minute start, vin, second of the minute)` triples of the new events not
/// known to be counted yet: one `window_vehicle_minutes` row per vehicle and minute takes
/// their bits (`seconds | new`, see [`MINUTE_BIT`]) and keeps in `added` the bits it did not
/// hold before (under the row lock, so concurrent writers count a vehicle once); those bits
/// are the vehicles new to each window. Returns the updated rows.
pub(crate) const UPSERT_WINDOWS: &str = r#"
WITH seen AS (
    SELECT * FROM unnest($5::timestamptz[], $6::text[], $7::int4[]) AS s(minute_start, vin, second)
), marked AS (
    INSERT INTO window_vehicle_minutes AS w (minute_start, vin, seconds, added)
    SELECT minute_start, vin, bits, bits
      FROM (SELECT minute_start, vin, bit_or(1::int8 << second) | (1::int8 << 60) AS bits
              FROM seen GROUP BY 1, 2) b
     ORDER BY 1, 2
    ON CONFLICT (minute_start, vin) DO UPDATE
       SET seconds = w.seconds | EXCLUDED.seconds, added = EXCLUDED.seconds & ~w.seconds
    RETURNING minute_start, vin, added
), fresh AS (
    SELECT 'minute' AS granularity, minute_start AS window_start, count(*) AS n
      FROM marked WHERE added & (1::int8 << 60) <> 0 GROUP BY 2
    UNION ALL
    SELECT 'second', s.minute_start + make_interval(secs => s.second), count(*)
      FROM seen s JOIN marked m USING (minute_start, vin)
     WHERE m.added & (1::int8 << s.second) <> 0 GROUP BY 2
)
INSERT INTO window_metrics AS m (granularity, window_start, events, vehicles, speed_sum)
SELECT b.granularity, b.window_start, b.events, COALESCE(f.n, 0), b.speed_sum
  FROM unnest($1::text[], $2::timestamptz[], $3::int8[], $4::float8[])
       AS b(granularity, window_start, events, speed_sum)
  LEFT JOIN fresh f USING (granularity, window_start)
 ORDER BY 1, 2
ON CONFLICT (granularity, window_start) DO UPDATE
   SET events = m.events + EXCLUDED.events,
       vehicles = m.vehicles + EXCLUDED.vehicles,
       speed_sum = m.speed_sum + EXCLUDED.speed_sum
RETURNING granularity, window_start, events, vehicles, speed_sum
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn names_match_date_trunc_and_the_sql() {
        for g in Granularity::ALL {
            assert_eq!(Granularity::from_name(g.as_str()), Some(g));
            assert!(UPSERT_WINDOWS.contains(&format!("'{}'", g.as_str())));
        }
        assert!(PRUNE_WINDOW_VEHICLES.contains("interval '2 minutes'"));
        assert_eq!(PRUNE_MARGIN, TimeDelta::minutes(2));
        assert_eq!(Granularity::from_name("hour"), None);
        assert_eq!(serde_json::to_value(Granularity::Minute).unwrap(), "minute");
    }

    #[test]
    fn each_second_of_a_minute_has_its_own_bit_below_the_minute_bit() {
        assert_eq!(second_bit(t("2026-11-21T10:17:00Z")), 1);
        assert_eq!(second_bit(t("2026-11-21T10:17:01Z")), 2);
        assert_eq!(second_bit(t("2026-11-21T10:17:59Z")), 1 << 59);
        assert_eq!(second_bit(t("1969-12-31T23:59:59Z")), 1 << 59);
        assert!(second_bit(t("2026-11-21T10:17:59Z")) < MINUTE_BIT);
        assert!(UPSERT_WINDOWS.contains(&format!("(1::int8 << {})", MINUTE_BIT.trailing_zeros())));
    }

    /// The rule the SQL applies: counted when there is no cutoff or `ts >= cutoff`.
    fn admits(l: Lateness, ts: DateTime<Utc>, watermark: DateTime<Utc>) -> bool {
        l.cutoff(watermark).is_none_or(|cutoff| ts >= cutoff)
    }

    #[test]
    fn lateness_is_measured_from_the_watermark() {
        let watermark = t("2026-11-21T10:00:00Z");
        let hour = Lateness(Duration::from_secs(3600));
        assert_eq!(hour.cutoff(watermark), Some(t("2026-11-21T09:00:00Z")));
        assert!(admits(hour, t("2026-11-21T09:00:00Z"), watermark));
        assert!(!admits(hour, t("2026-11-21T08:59:59.999Z"), watermark));
        assert!(admits(hour, t("2026-11-21T10:05:00Z"), watermark), "ahead");
        let zero = Lateness(Duration::ZERO);
        assert!(!admits(zero, t("2026-11-21T09:59:59Z"), watermark));
    }

    #[test]
    fn huge_lateness_admits_everything() {
        let forever = Lateness(Duration::from_secs(u64::MAX));
        assert_eq!(forever.cutoff(t("2026-11-21T10:00:00Z")), None);
        assert!(admits(
            forever,
            t("1970-01-01T00:00:00Z"),
            t("2026-11-21T10:00:00Z")
        ));
    }
}
