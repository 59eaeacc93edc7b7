//! Per-vehicle summaries (`vehicle_summary`) and per make and model counts
//! (`make_model_counts`): the SQL that folds a batch's new events into them, and the summary
//! ([`VehicleSummary`], the wire format of `telemetry.summary`) read from its rows.

use fleet_common::wire::{LastPosition, VehicleSummary};

/// The summary (the value published to `telemetry.summary`) from a row of
/// [`UPSERT_VEHICLES`]'s `RETURNING` list.
pub fn from_row(row: &tokio_postgres::Row) -> Result<VehicleSummary, tokio_postgres::Error> {
    Ok(VehicleSummary {
        vin: row.try_get("vin")?,
        make: row.try_get("make")?,
        model: row.try_get("model")?,
        first_seen: row.try_get("first_seen")?,
        last_seen: row.try_get("last_seen")?,
        last_seq: row.try_get("last_seq")?,
        events: row.try_get("events")?,
        last_position: LastPosition {
            x: row.try_get("position_x")?,
            y: row.try_get("position_y")?,
            lat: row.try_get("lat")?,
            lon: row.try_get("lon")?,
        },
        last_speed: row.try_get("speed")?,
    })
}

/// Folds the new events of each vehicle (`$1..$12`: one element per VIN, see
/// `VehicleColumns`) into `vehicle_summary`: first seen is the least event time, the latest
/// event is the one with the greatest `(ts, seq)` whether it is new or already stored, so the
/// outcome does not depend on the order events arrive in. Returns the updated rows.
pub(crate) const UPSERT_VEHICLES: &str = r#"
INSERT INTO vehicle_summary AS v (vin, make, model, first_seen, last_seen, last_seq, events,
                                  position_x, position_y, lat, lon, speed, updated_at)
SELECT u.*, now()
  FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[],
              $6::int8[], $7::int8[], $8::float8[], $9::float8[], $10::float8[],
              $11::float8[], $12::float8[]) AS u
 ORDER BY 1
ON CONFLICT (vin) DO UPDATE SET
    first_seen = LEAST(v.first_seen, EXCLUDED.first_seen),
    events = v.events + EXCLUDED.events,
    updated_at = now(),
    make = CASE WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN EXCLUDED.make ELSE v.make END,
    model = CASE WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN EXCLUDED.model ELSE v.model END,
    last_seen = CASE WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN EXCLUDED.last_seen ELSE v.last_seen END,
    last_seq = CASE WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN EXCLUDED.last_seq ELSE v.last_seq END,
    position_x = CASE WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN EXCLUDED.position_x ELSE v.position_x END,
    position_y = CASE WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN EXCLUDED.position_y ELSE v.position_y END,
    lat = CASE WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN EXCLUDED.lat ELSE v.lat END,
    lon = CASE WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN EXCLUDED.lon ELSE v.lon END,
    speed = CASE WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN EXCLUDED.speed ELSE v.speed END
RETURNING vin, make, model, first_seen, last_seen, last_seq, events,
          position_x, position_y, lat, lon, speed
"#;

/// The summaries stored within `$1` seconds before the newest stored one: what a replica that
/// starts or takes partitions over produces again, since the replica before it may have
/// stopped with them gathered and not yet produced (`consumer.publish_interval`).
pub const SELECT_RECENT_SUMMARIES: &str = r#"
SELECT vin, make, model, first_seen, last_seen, last_seq, events,
       position_x, position_y, lat, lon, speed
  FROM vehicle_summary
 WHERE updated_at >= (SELECT max(updated_at) FROM vehicle_summary) - make_interval(secs => $1)
 ORDER BY vin
"#;

/// Folds the new events per make and model (`$4..$6`; model `''` holds the make's total) into
/// `make_model_counts`; a vehicle counts once per row: the `(make, model, vin)` pairs
/// `$1..$3` that `make_model_vehicles` did not hold yet are added to the vehicles.
pub(crate) const UPSERT_MAKE_MODELS: &str = r#"
WITH new_vehicles AS (
    INSERT INTO make_model_vehicles (make, model, vin)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING
    RETURNING make, model
), fresh AS (
    SELECT make, model, count(*) AS n FROM new_vehicles GROUP BY 1, 2
)
INSERT INTO make_model_counts AS c (make, model, events, vehicles)
SELECT b.make, b.model, b.events, COALESCE(f.n, 0)
  FROM unnest($4::text[], $5::text[], $6::int8[]) AS b(make, model, events)
  LEFT JOIN fresh f USING (make, model)
 ORDER BY 1, 2
ON CONFLICT (make, model) DO UPDATE
   SET events = c.events + EXCLUDED.events, vehicles = c.vehicles + EXCLUDED.vehicles
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_event_is_chosen_by_event_time_then_seq() {
        assert!(
            UPSERT_VEHICLES
                .contains("(EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq)")
        );
        let newer = "WHEN (EXCLUDED.last_seen, EXCLUDED.last_seq) > (v.last_seen, v.last_seq) THEN";
        for column in [
            "make",
            "last_seen",
            "last_seq",
            "position_x",
            "lat",
            "lon",
            "speed",
        ] {
            assert!(
                UPSERT_VEHICLES.contains(&format!(
                    "{column} = CASE {newer} EXCLUDED.{column} ELSE v.{column} END"
                )),
                "{column}"
            );
        }
    }
}
