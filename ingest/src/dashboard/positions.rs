//! What the map draws: the latest positions of the most recently seen vehicles, at most
//! `INGEST_DASHBOARD_MAP_VEHICLES` of them, grouped by make (the map colours by make) as flat
//! lists of whole metres, so that thousands of dots cost a few bytes each.

use std::collections::BTreeMap;

use serde::Serialize;

use super::state::FleetState;

/// The positions of one make's vehicles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MakePositions {
    /// The make.
    pub make: String,
    /// `x0, y0, x1, y1, ...`: each vehicle's latest position, whole metres east and north of
    /// the area's origin.
    pub xy: Vec<i32>,
}

/// The map's vehicles.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Positions {
    /// Per make, by name.
    pub positions: Vec<MakePositions>,
    /// Vehicles kept but not drawn (beyond the map's cap, or to stay under the message cap).
    pub positions_omitted: usize,
}

impl Positions {
    /// Vehicles drawn.
    pub fn drawn(&self) -> usize {
        self.positions.iter().map(|m| m.xy.len() / 2).sum()
    }
}

/// The positions of `state`'s `limit` most recently seen vehicles.
pub fn recent_positions(state: &FleetState, limit: usize) -> Positions {
    let newest = state.newest(limit);
    let drawn = newest.len();
    let mut by_make: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (row, _) in newest {
        let p = row.last_position;
        by_make
            .entry(&row.make)
            .or_default()
            .extend([metres(p.x), metres(p.y)]);
    }
    Positions {
        positions: by_make
            .into_iter()
            .map(|(make, xy)| MakePositions {
                make: make.to_owned(),
                xy,
            })
            .collect(),
        positions_omitted: state.vehicle_count() - drawn,
    }
}

/// `value` metres rounded to whole metres (saturating; a pixel of the map is several metres).
pub fn metres(value: f64) -> i32 {
    // `as` saturates and maps NaN to 0.
    value.round() as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::fixtures::summary;

    #[test]
    fn the_newest_vehicles_are_drawn_grouped_by_make() {
        let mut state = FleetState::default();
        state.apply(summary("A", "Volvo", "XC40", 1, 5));
        state.apply(summary("B", "Ford", "Transit", 1, 9));
        state.apply(summary("C", "Volvo", "XC60", 1, 7));
        state.apply(summary("D", "Volvo", "XC60", 1, 1));
        let p = recent_positions(&state, 3);
        assert_eq!(p.positions_omitted, 1, "D is the oldest");
        assert_eq!(p.drawn(), 3);
        assert_eq!(
            p.positions,
            [
                MakePositions {
                    make: "Ford".into(),
                    xy: vec![9, -9]
                },
                MakePositions {
                    make: "Volvo".into(),
                    xy: vec![7, -7, 5, -5]
                },
            ]
        );
        assert_eq!(recent_positions(&state, 10).drawn(), 4);
        assert_eq!(metres(-1234.5), -1235);
        assert_eq!(metres(f64::NAN), 0);
    }
}
