//! Tests of the fleet state.

use fleet_common::wire::Sensor;

use super::*;
use crate::dashboard::fixtures::{summary, window};

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

#[test]
fn make_and_model_counts_come_from_the_latest_summaries() {
    let mut state = FleetState::default();
    state.apply(summary("A", "Volvo", "XC40", 3, 2));
    state.apply(summary("B", "Volvo", "XC60", 5, 4));
    state.apply(summary("C", "Ford", "Transit", 7, 6));
    state.apply(summary("A", "Volvo", "XC40", 4, 3));
    let f = state.figures(t("2026-11-21T10:00:13.500Z"));
    assert_eq!(f.events_stored, 4 + 5 + 7);
    assert_eq!(f.vehicles_total, 3);
    assert_eq!(f.vehicles_online, 2, "A is 10.5 s old, B 9.5 s, C 7.5 s");
    let makes: Vec<(&str, u64, i64)> = f
        .makes
        .iter()
        .map(|m| (m.make.as_str(), m.vehicles, m.events))
        .collect();
    assert_eq!(makes, vec![("Ford", 1, 7), ("Volvo", 2, 9)]);
    let models: Vec<(&str, u64, i64)> = f
        .models
        .iter()
        .map(|m| (m.model.as_str(), m.vehicles, m.events))
        .collect();
    assert_eq!(
        models,
        vec![("Transit", 1, 7), ("XC40", 1, 4), ("XC60", 1, 5)]
    );
    assert_eq!(f.messages_applied, 4);
}

#[test]
fn an_old_copy_of_a_summary_changes_nothing_and_trails_are_bounded() {
    let mut state = FleetState::default();
    for sec in 0..(TRAIL_LEN as u32 + 5) {
        state.apply(summary("A", "Volvo", "XC40", i64::from(sec) + 1, sec));
    }
    let last = TRAIL_LEN as i64 + 5;
    state.apply(summary("A", "Volvo", "XC40", last - 3, 1));
    assert_eq!(state.vehicles()[0].events, last);
    let trail = &state.trails()["A"];
    assert_eq!(trail.len(), TRAIL_LEN);
    assert_eq!(trail.last(), Some(&[34.0, -34.0]));
    // A redelivered copy of the latest summary moves nothing.
    state.apply(summary("A", "Volvo", "XC40", last, TRAIL_LEN as u32 + 4));
    assert_eq!(state.trails()["A"].len(), TRAIL_LEN);
    assert_eq!(state.trails()["A"].last(), Some(&[34.0, -34.0]));
}

#[test]
fn vehicles_older_than_the_cutoff_are_forgotten() {
    let mut state = FleetState::default();
    for n in 0..50u32 {
        state.apply(summary(&format!("OLD{n:02}"), "Volvo", "XC40", 1, n));
    }
    state.apply(summary("NEW", "Ford", "Transit", 4, 100));
    state.apply(summary("OLD49", "Volvo", "XC40", 2, 90));
    let cutoff = t("2026-11-21T10:00:00Z") + TimeDelta::seconds(60);
    assert_eq!(state.forget_older_than(cutoff), 49);
    let vins: Vec<String> = state.vehicles().into_iter().map(|r| r.vin).collect();
    assert_eq!(vins, ["NEW", "OLD49"]);
    let f = state.figures(cutoff);
    assert_eq!((f.vehicles_total, f.events_stored), (2, 6));
    assert!(
        state
            .trails()
            .keys()
            .all(|vin| vin == "NEW" || vin == "OLD49")
    );
    // A forgotten vehicle that reports again is back.
    state.apply(summary("OLD00", "Volvo", "XC40", 3, 120));
    assert_eq!(state.forget_older_than(cutoff), 0);
    assert_eq!(state.vehicles().len(), 3);
}

#[test]
fn only_the_largest_makes_and_models_are_listed() {
    let mut state = FleetState::default();
    for n in 0..(MAX_LISTED as u32 + 20) {
        state.apply(summary(&format!("V{n:03}"), &format!("M{n:03}"), "X", 1, 0));
    }
    // One make with 3 vehicles is among the listed ones whatever its name.
    state.apply(summary("W1", "ZZZ", "X", 1, 0));
    state.apply(summary("W2", "ZZZ", "X", 1, 0));
    state.apply(summary("W3", "ZZZ", "X", 1, 0));
    let f = state.figures(t("2026-11-21T10:00:00Z"));
    assert_eq!(f.makes.len(), MAX_LISTED);
    assert_eq!(f.models.len(), MAX_LISTED);
    assert_eq!(
        f.makes.last().map(|m| (m.make.as_str(), m.vehicles)),
        Some(("ZZZ", 3))
    );
    assert!(f.makes.windows(2).all(|w| w[0].make < w[1].make));
}

#[test]
fn windows_and_histograms_keep_the_newest() {
    let mut state = FleetState::default();
    let start = t("2026-11-21T10:00:00Z");
    for s in 0..(SECONDS_KEPT as i64 + 10) {
        state.apply(window(
            Granularity::Second,
            start + TimeDelta::seconds(s),
            s,
            1,
            Some(1.0),
        ));
    }
    // A later update of a window replaces it.
    state.apply(window(
        Granularity::Second,
        start + TimeDelta::seconds(SECONDS_KEPT as i64 + 9),
        1000,
        2,
        None,
    ));
    state.apply(window(Granularity::Minute, start, 5, 1, None));
    for m in 0..3 {
        state.apply(Incoming::Histogram(Histogram {
            sensor: Sensor::TemperatureC,
            window_start: start + TimeDelta::minutes(m),
            bins: vec![Bin {
                lower: Some(20.0),
                count: m + 1,
            }],
        }));
    }
    let f = state.figures(start);
    assert_eq!(f.per_second.len(), SECONDS_KEPT);
    assert_eq!(f.per_second[0].events, 10);
    assert_eq!(f.per_second.last().map(|w| w.events), Some(1000));
    assert_eq!(f.per_minute.len(), 1);
    assert_eq!(f.histograms.len(), 1);
    assert_eq!(f.histograms[0].window_start, start + TimeDelta::minutes(2));
    assert_eq!(f.histograms[0].bins[0].count, 3);
    assert!(state.vehicles().is_empty(), "only summaries add vehicles");
}

#[test]
fn recent_vehicles_are_newest_first_and_limited() {
    let mut state = FleetState::default();
    state.apply(summary("A", "Volvo", "XC40", 1, 5));
    state.apply(summary("B", "Volvo", "XC40", 1, 9));
    state.apply(summary("C", "Volvo", "XC40", 1, 7));
    let vins: Vec<String> = state
        .recent_vehicles(2)
        .into_iter()
        .map(|r| r.vin)
        .collect();
    assert_eq!(vins, ["B", "C"]);
}
