//! Tests of `fleet verify`'s pure parts: the vehicles' arrays, the stored check, percentiles, the report.

use super::*;

fn vehicle(vin: &str, acknowledged: u64, last: Option<u64>) -> VehicleReport {
    VehicleReport {
        vin: vin.into(),
        make: "Volvo".into(),
        model: "XC40".into(),
        books: fleet_common::Totals {
            generated: acknowledged,
            acknowledged,
            ..Default::default()
        },
        last_acked_seq: last,
    }
}

#[test]
fn the_arrays_hold_every_vehicle_with_an_acknowledged_event() {
    let start: DateTime<Utc> = "2026-11-21T18:00:00Z".parse().unwrap();
    let vehicles = [
        vehicle("YV1A", 60, Some(59)),
        vehicle("YV1B", 0, None),
        vehicle("LEG1", 7, None),
    ];
    let expected = Expected::of(vehicles.iter().map(|v| (v, Some(start))));
    assert_eq!(
        expected,
        Expected {
            vins: vec!["YV1A".into(), "LEG1".into()],
            last_seqs: vec![Some(59), None],
            acknowledged: vec![60, 7],
            since: vec![Some(start); 2],
        }
    );
    assert_eq!(expected.sequenced(), 1);
    assert_eq!(expected.total_acknowledged(), 67);
    // One statement with three array parameters, whatever the fleet's size.
    for p in [
        "$1::text[]",
        "$2::int8[]",
        "$3::int8[]",
        "$4::timestamptz[]",
    ] {
        assert_eq!(STORED_SQL.matches(p).count(), 1, "{p}");
    }
    assert!(!STORED_SQL.contains("$5"));
}

#[test]
fn the_stored_check_passes_only_without_failing_vehicles() {
    let vehicles = [vehicle("YV1A", 60, Some(59)), vehicle("LEG1", 7, None)];
    let expected = Expected::of(vehicles.iter().map(|v| (v, None)));
    let ok = stored_check(
        &expected,
        &Stored {
            failing: 0,
            rows: 67,
            first_failures: vec![],
        },
        Duration::from_millis(2_500),
    );
    assert!(ok.passed);
    assert!(
        ok.name.contains("(1 vehicles; 1 legacy-form"),
        "{}",
        ok.name
    );
    assert_eq!(
        ok.detail,
        "67 acknowledged, 67 rows of these vehicles' runs in diag, after 2.5 s"
    );
    let short = stored_check(
        &expected,
        &Stored {
            failing: 1,
            rows: 66,
            first_failures: vec!["YV1A: 59 rows for 60 acknowledged, 59 of seq 0..=59".into()],
        },
        Duration::from_secs(60),
    );
    assert!(!short.passed);
    assert!(
        short
            .detail
            .ends_with("1 vehicles short: YV1A: 59 rows for 60 acknowledged, 59 of seq 0..=59"),
        "{}",
        short.detail
    );
}

#[test]
fn percentiles_pick_ranks() {
    let v: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(percentile(&v, 0.5), 51.0);
    assert_eq!(percentile(&v, 0.99), 99.0);
    assert!(percentile(&[], 0.5).is_nan());
}

#[test]
fn report_fails_on_any_failed_check() {
    let ok = Check {
        name: "a".into(),
        passed: true,
        detail: String::new(),
    };
    let bad = Check {
        name: "b".into(),
        passed: false,
        detail: "x".into(),
    };
    assert!(report(&[ok]));
    let ok = Check {
        name: "a".into(),
        passed: true,
        detail: String::new(),
    };
    assert!(!report(&[ok, bad]));
}
