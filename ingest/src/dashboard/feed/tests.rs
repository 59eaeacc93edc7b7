//! Tests of the live feed: frames, per-stream messages, the message cap.

use super::*;
use fleet_common::wire::{Bin, Granularity, Histogram, LastPosition, Sensor, VehicleSummary};

use crate::dashboard::fixtures::{summary, window};
use crate::dashboard::table::{MAX_PAGE_SIZE, Order, SortKey};

/// The SSE cap the issue asks for, also the default.
const CAP: usize = 256 * 1024;

fn now() -> DateTime<Utc> {
    "2026-11-21T10:00:10Z".parse().unwrap()
}

fn json(sent: &Sent) -> serde_json::Value {
    serde_json::from_str(&sent.data).unwrap()
}

fn received(n: i64) -> TopicFigures {
    TopicFigures {
        events_received: n,
        ..TopicFigures::default()
    }
}

fn vins(message: &serde_json::Value) -> Vec<String> {
    message["table"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["vin"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn every_message_is_the_frame_and_the_page_asked_for() {
    let d = Dashboard::new(MapArea::default(), DashboardLimits::default(), 100);
    // Before the first tick a stream gets a frame made at once, with the current id.
    let (first, mut receiver) = d.subscribe(now());
    assert_eq!(first.id, 100);
    let v = json(&d.message(&first, &TableQuery::default()));
    assert_eq!(v["table"]["total"], 0);
    assert_eq!(v["vehicles_total"], 0);

    d.apply(
        [
            summary("A", "Volvo", "XC40", 1, 0),
            summary("B", "Ford", "Transit", 3, 2),
            summary("C", "Ford", "Transit", 2, 1),
        ],
        now(),
    );
    let frame = d.tick(received(6), now());
    assert_eq!(frame.id, 101);
    assert_eq!(receiver.try_recv().unwrap().id, 101);
    let query = TableQuery {
        page_size: 2,
        ..TableQuery::default()
    };
    let sent = d.message(&frame, &query);
    assert_eq!(sent.id, 101);
    let v = json(&sent);
    assert_eq!(v["id"], 101);
    assert_eq!(v["events_received"], 6);
    assert_eq!(v["events_stored"], 6);
    assert_eq!(v["map"]["radius_m"], 2000.0);
    assert_eq!(v["positions"][0]["make"], "Ford");
    assert_eq!(v["positions"][0]["xy"], serde_json::json!([2, -2, 1, -1]));
    assert_eq!(v["positions_omitted"], 0);
    assert_eq!(vins(&v), ["B", "C"], "most events first");
    assert_eq!(v["table"]["pages"], 2);
    assert_eq!(v["table"]["rows"][0]["trail"], serde_json::json!([[2, -2]]));
    let second = json(&d.message(&frame, &TableQuery { page: 1, ..query }));
    assert_eq!(vins(&second), ["A"]);
    assert_eq!(second["table"]["page"], 1);
    // Subscribing after a tick starts with that tick's frame.
    assert_eq!(d.subscribe(now()).0.id, 101);
    assert_eq!(d.tick(received(6), now()).id, 102);
}

#[test]
fn vehicles_past_the_time_to_live_leave_the_figures_the_map_and_the_table() {
    let limits = DashboardLimits {
        vehicle_ttl: Duration::from_secs(60),
        ..DashboardLimits::default()
    };
    let d = Dashboard::new(MapArea::default(), limits, 0);
    // 200 vehicles last seen at 10:00:00..10:03:19, one seen at 10:05.
    let old: Vec<Incoming> = (0..200u32)
        .map(|n| summary(&format!("OLD{n:03}"), "Volvo", "XC40", 1, n))
        .collect();
    d.apply(old, now());
    d.apply([summary("NEW", "Ford", "Transit", 1, 300)], now());
    assert_eq!(d.view(usize::MAX, now()).vehicles.len(), 201);
    // At 10:05:30 the ones last seen before 10:04:30 are forgotten: all the old.
    let later = now() + TimeDelta::seconds(320);
    let frame = d.tick(received(0), later);
    let v = json(&d.message(&frame, &TableQuery::default()));
    assert_eq!(v["vehicles_total"], 1);
    assert_eq!(v["table"]["total"], 1);
    assert_eq!(vins(&v), ["NEW"]);
    assert_eq!(v["positions"].as_array().unwrap().len(), 1);
    assert_eq!(d.view(usize::MAX, later).vehicles.len(), 1);
    // A summary already past the time-to-live is not taken in.
    d.apply([summary("LATE", "Ford", "Transit", 1, 10)], later);
    assert_eq!(d.view(usize::MAX, later).vehicles.len(), 1);
}

#[test]
fn vehicles_stay_online_while_events_arrive_and_the_summaries_lag() {
    let d = Dashboard::new(MapArea::default(), DashboardLimits::default(), 0);
    // Three vehicles last seen at 10:00:00, 10:00:05 and 10:00:09 by the consumer's summaries.
    d.apply(
        [
            summary("A", "Volvo", "XC40", 1, 0),
            summary("B", "Volvo", "XC40", 1, 5),
            summary("C", "Volvo", "XC40", 1, 9),
        ],
        now(),
    );
    let at = |s: i64| now() + TimeDelta::seconds(s);
    let online = |figures: TopicFigures, secs: i64| {
        let frame = d.tick(figures, at(secs));
        json(&d.message(&frame, &TableQuery::default()))["vehicles_online"].clone()
    };
    // 10:00:40 and :41, the input topic growing: the summaries are 31 s behind, but the
    // vehicles are not offline. Counted back from the newest event known (10:00:09): all three.
    assert_eq!(online(received(100), 30), 3);
    assert_eq!(online(received(200), 31), 3);
    // The topic stops growing: 10 s later the count is made from the clock.
    assert_eq!(online(received(200), 41), 3, "it grew 10 s ago");
    assert_eq!(online(received(200), 42), 0);
    // A reading that failed is no growth.
    let failed = TopicFigures {
        events_received: 300,
        error: Some("broker down".into()),
        ..TopicFigures::default()
    };
    assert_eq!(online(failed, 43), 0);
    // Caught up while sending: D's event is 1 s old, the three others long past.
    d.apply([summary("D", "Ford", "Transit", 1, 52)], at(43));
    assert_eq!(online(received(400), 43), 1);
    assert_eq!(d.view(10, at(43)).figures.vehicles_online, 1);
}

/// `n` vehicles of 150 makes and 300 models with 17-character VINs, spread over the area,
/// last seen over the 10 minutes before `now()`; VIN `n` has `n + 1` events.
fn fleet(n: u32) -> Vec<Incoming> {
    (0..n)
        .map(|i| {
            let angle = f64::from(i) * 0.618;
            let r = 1999.0 * f64::from(i % 1000) / 1000.0;
            Incoming::Summary(VehicleSummary {
                vin: format!("1FLT{i:013}"),
                make: format!("Make number {:03}", i % 150),
                model: format!("Model number {:03}", i % 300),
                first_seen: now() - TimeDelta::seconds(3_000),
                last_seen: now() - TimeDelta::milliseconds(i64::from(i % 600_000) * 17),
                last_seq: i64::from(i),
                events: i64::from(i) + 1,
                last_position: LastPosition {
                    x: r * angle.cos() + 0.123_456_789,
                    y: r * angle.sin() - 0.987_654_321,
                    lat: 59.3,
                    lon: 18.0,
                },
                last_speed: 13.888_888_888_9,
            })
        })
        .collect()
}

/// Full windows and histograms: the figures as large as they get.
fn windows_and_histograms() -> Vec<Incoming> {
    let mut out = Vec::new();
    for s in 0..200 {
        for granularity in [Granularity::Second, Granularity::Minute] {
            out.push(window(
                granularity,
                now() - TimeDelta::seconds(s),
                29_876,
                29_876,
                Some(13.888_888_888_9),
            ));
        }
    }
    for sensor in Sensor::ALL {
        out.push(Incoming::Histogram(Histogram {
            sensor,
            window_start: now(),
            bins: (0..100)
                .map(|b| Bin {
                    lower: Some(f64::from(b) * 0.5 + 0.25),
                    count: 1_234_567,
                })
                .collect(),
        }));
    }
    out
}

#[test]
fn thirty_thousand_vehicles_give_messages_under_256_kib_with_the_page_asked_for() {
    let d = Dashboard::new(MapArea::default(), DashboardLimits::default(), 0);
    d.apply(fleet(30_000), now());
    d.apply(windows_and_histograms(), now());
    let (first, _) = d.subscribe(now());
    let mut largest = 0;
    let queries = [
        TableQuery::default(),
        TableQuery {
            sort: SortKey::Vin,
            order: Order::Asc,
            page: 7,
            page_size: MAX_PAGE_SIZE,
        },
        TableQuery {
            sort: SortKey::LastSeen,
            order: Order::Desc,
            page: 1_000_000,
            page_size: MAX_PAGE_SIZE,
        },
    ];
    let opened = d.message(&first, &queries[0]);
    assert!(opened.data.len() <= CAP, "{} bytes", opened.data.len());
    // Ten ticks in which every vehicle moves (its trail grows to the full length).
    for tick in 1..=10u32 {
        let moved: Vec<Incoming> = fleet(30_000)
            .into_iter()
            .map(|m| match m {
                Incoming::Summary(mut s) => {
                    s.events += i64::from(tick);
                    s.last_seen += TimeDelta::seconds(tick.into());
                    s.last_position.x -= f64::from(tick) * 3.3;
                    Incoming::Summary(s)
                }
                other => other,
            })
            .collect();
        d.apply(moved, now());
        let frame = d.tick(received(0), now() + TimeDelta::seconds(tick.into()));
        for query in &queries {
            let sent = d.message(&frame, query);
            assert!(sent.data.len() <= CAP, "{} bytes", sent.data.len());
            largest = largest.max(sent.data.len());
        }
    }
    let frame = d.tick(received(0), now() + TimeDelta::seconds(10));
    let by_events = json(&d.message(&frame, &queries[0]));
    let by_vin = json(&d.message(&frame, &queries[1]));
    let oldest = json(&d.message(&frame, &queries[2]));
    eprintln!(
        "30,000 vehicles: first message {} bytes, largest update {largest} bytes",
        opened.data.len()
    );

    // Every figure is whole, the map draws its cap, the table is the page asked for.
    assert_eq!(by_events["vehicles_total"], 30_000);
    assert_eq!(by_events["makes"].as_array().unwrap().len(), 100);
    assert_eq!(by_events["per_second"].as_array().unwrap().len(), 120);
    assert_eq!(by_events["histograms"].as_array().unwrap().len(), 3);
    let drawn: usize = by_events["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["xy"].as_array().unwrap().len() / 2)
        .sum();
    assert_eq!(drawn, 5_000);
    assert_eq!(by_events["positions_omitted"], 25_000);
    let expected: Vec<String> = (0..25).map(|i| format!("1FLT{:013}", 29_999 - i)).collect();
    assert_eq!(vins(&by_events), expected, "most events first");
    let expected: Vec<String> = (700..800).map(|i| format!("1FLT{i:013}")).collect();
    assert_eq!(vins(&by_vin), expected, "page 7 of 100 by VIN");
    assert_eq!(by_vin["table"]["pages"], 300);
    assert_eq!(oldest["table"]["page"], 299, "past the end: the last page");
    for v in [&by_events, &by_vin, &oldest] {
        assert!(v.get("table").unwrap().get("rows_omitted").is_none());
        assert!(v["table"].get("trails_omitted").is_none());
        assert_eq!(v["table"]["rows"][0]["trail"].as_array().unwrap().len(), 11);
    }
}

#[test]
fn a_small_cap_draws_fewer_vehicles_and_keeps_the_page() {
    let cap = 65_536;
    let limits = DashboardLimits {
        map_vehicles: 100_000,
        max_message_bytes: cap,
        ..DashboardLimits::default()
    };
    let d = Dashboard::new(MapArea::default(), limits, 0);
    d.apply(fleet(30_000), now());
    let frame = d.tick(received(0), now());
    let sent = d.message(&frame, &TableQuery::default());
    assert!(sent.data.len() <= cap, "{} bytes", sent.data.len());
    let v = json(&sent);
    let omitted = v["positions_omitted"].as_u64().unwrap();
    assert!(omitted > 0 && omitted < 30_000, "{omitted}");
    assert_eq!(vins(&v).len(), 25, "the page whole");
    assert!(v["table"].get("trails_omitted").is_none());
    // A cap too small for the page: the trails go first, then rows, never the cap.
    let query = TableQuery {
        page_size: MAX_PAGE_SIZE,
        ..TableQuery::default()
    };
    let one_row = d.message(
        &frame,
        &TableQuery {
            page_size: 1,
            ..query
        },
    );
    let tiny = one_row.data.len() + 20_000;
    let fitted = fit_table(&frame, table_page(&d.lock().state, &query), tiny);
    assert!(fitted.len() <= tiny, "{} bytes", fitted.len());
    let v: serde_json::Value = serde_json::from_str(&fitted).unwrap();
    assert_eq!(v["table"]["trails_omitted"], MAX_PAGE_SIZE);
    let kept = vins(&v).len();
    assert!(kept > 0 && kept < MAX_PAGE_SIZE, "{kept}");
    assert_eq!(v["table"]["rows_omitted"], MAX_PAGE_SIZE - kept);
}

#[test]
fn the_view_has_the_figures_and_the_recent_vehicles() {
    let d = Dashboard::new(MapArea::default(), DashboardLimits::default(), 0);
    d.apply(
        [
            summary("A", "Volvo", "XC40", 4, 1),
            summary("B", "Volvo", "XC60", 6, 2),
        ],
        now(),
    );
    d.set_reader_error(Some("no metadata".into()));
    let view = d.view(1, now());
    assert_eq!(view.figures.events_stored, 10);
    assert_eq!(view.vehicles.len(), 1);
    assert_eq!(view.vehicles[0].vin, "B");
    assert_eq!(view.reader_error.as_deref(), Some("no metadata"));
    let frame = d.tick(received(0), now());
    let v = json(&d.message(&frame, &TableQuery::default()));
    assert_eq!(v["reader_error"], "no metadata");
}
