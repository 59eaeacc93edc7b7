//! Command line and environment: every option is a flag with an environment variable, which is
//! how the orchestrator configures the container.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use fleet_common::Vin;
use fleet_common::config::CatalogueEntry;
use fleet_common::event::MAX_NAME_LEN;

/// The catalogue used when `VEHICLE_CATALOGUE` is not set (the one of `config.master.toml`).
pub const DEFAULT_CATALOGUE: &str = r#"[
  {"make": "Volvo", "wmi": "YV1", "models": ["XC40", "XC60", "V60"]},
  {"make": "Scania", "wmi": "YS2", "models": ["R450", "P280"]},
  {"make": "Ford", "wmi": "1FT", "models": ["Transit", "F-150"]}
]"#;

/// Simulates vehicles that report telemetry to ingest.
#[derive(Debug, Clone, Parser)]
#[command(name = "vehicle", version, about)]
pub struct Cli {
    /// Where events are POSTed, e.g. `http://mystack-ingest:8080/events`.
    #[arg(long, env = "VEHICLE_INGEST_URL")]
    pub ingest_url: String,

    /// Vehicles simulated by this process.
    #[arg(long, env = "VEHICLE_COUNT", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub count: u64,

    /// Global index of this process's first vehicle; vehicle `i` gets serial number `i`.
    #[arg(long, env = "VEHICLE_FIRST_INDEX", default_value_t = 0)]
    pub first_index: u64,

    /// Seed of the simulation: the same seed and index give the same vehicle and trip.
    #[arg(long, env = "VEHICLE_SEED", default_value_t = 42)]
    pub seed: u64,

    /// Time between two reports of one vehicle (e.g. `1s`, `250ms`).
    #[arg(long, env = "VEHICLE_REPORT_INTERVAL", default_value = "1s", value_parser = parse_interval)]
    pub report_interval: Duration,

    /// Each report is up to this share of the interval early or late, at random (0 to 0.5).
    #[arg(long, env = "VEHICLE_REPORT_JITTER", default_value_t = 0.05, value_parser = parse_jitter)]
    pub report_jitter: f64,

    /// Probability that one reading of one sensor is a spike (0 to 1).
    #[arg(long, env = "VEHICLE_FAULT_SPIKE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_spike_rate: f64,

    /// Probability per reading that a sensor gets stuck at its value (0 to 1).
    #[arg(long, env = "VEHICLE_FAULT_STUCK_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub fault_stuck_rate: f64,

    /// How long a stuck sensor repeats its value (e.g. `30s`).
    #[arg(long, env = "VEHICLE_FAULT_STUCK_DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub fault_stuck_duration: Duration,

    /// Post the old client's format: one form-encoded event per request, VINs without check
    /// digit (`seq` and `event_id` are then assigned by ingest).
    #[arg(long, env = "VEHICLE_LEGACY_FORM", default_value_t = false, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub legacy_form: bool,

    /// Most events in one request; the events of all vehicles of the process are coalesced.
    #[arg(long, env = "VEHICLE_BATCH_MAX", default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub batch_max: u64,

    /// Longest time an event waits for its batch to fill (e.g. `200ms`).
    #[arg(long, env = "VEHICLE_BATCH_WAIT", default_value = "200ms", value_parser = humantime::parse_duration)]
    pub batch_wait: Duration,

    /// Most requests in flight at once.
    #[arg(long, env = "VEHICLE_MAX_IN_FLIGHT", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub max_in_flight: u64,

    /// Most events kept per vehicle while ingest does not acknowledge (the oldest are dropped).
    #[arg(long, env = "VEHICLE_OUTBOX_CAPACITY", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub outbox_capacity: u64,

    /// Report only this long (e.g. `60s`), then deliver what is pending and keep serving
    /// `GET /stats` with final counters until stopped. Unset: report until stopped.
    #[arg(long, env = "VEHICLE_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,

    /// Makes and models to draw from, a JSON array of `{"make", "wmi", "models"}`.
    #[arg(long, env = "VEHICLE_CATALOGUE", default_value = DEFAULT_CATALOGUE, value_parser = parse_catalogue)]
    pub catalogue: Catalogue,

    /// Latitude of the local frame's origin, degrees.
    #[arg(long, env = "VEHICLE_ORIGIN_LAT", default_value_t = 59.3293, allow_negative_numbers = true, value_parser = parse_latitude)]
    pub origin_lat: f64,

    /// Longitude of the local frame's origin, degrees.
    #[arg(long, env = "VEHICLE_ORIGIN_LON", default_value_t = 18.0686, allow_negative_numbers = true, value_parser = parse_longitude)]
    pub origin_lon: f64,

    /// Vehicles stay within this distance of the origin, metres.
    #[arg(long, env = "VEHICLE_AREA_RADIUS_M", default_value_t = 2000.0, value_parser = parse_radius)]
    pub area_radius_m: f64,

    /// Address of the `/stats` and `/healthz` server.
    #[arg(long, env = "VEHICLE_LISTEN", default_value = "0.0.0.0:8090")]
    pub listen: SocketAddr,

    /// More log output (`-v` debug, `-vv` trace); `RUST_LOG` overrides it.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// A checked catalogue: at least one make, each with a usable WMI and at least one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalogue(pub Vec<CatalogueEntry>);

/// Parses and checks a catalogue given as JSON.
pub fn parse_catalogue(text: &str) -> Result<Catalogue, String> {
    let entries: Vec<CatalogueEntry> = serde_json::from_str(text)
        .map_err(|e| format!("not a JSON array of {{make, wmi, models}}: {e}"))?;
    if entries.is_empty() {
        return Err("the catalogue is empty".into());
    }
    for (i, entry) in entries.iter().enumerate() {
        let name_ok = |name: &str| !name.trim().is_empty() && name.chars().count() <= MAX_NAME_LEN;
        if !name_ok(&entry.make) {
            return Err(format!(
                "entry {i}: make {:?} must have 1 to {MAX_NAME_LEN} characters",
                entry.make
            ));
        }
        if entry.wmi.chars().count() != 3 {
            return Err(format!(
                "entry {i} ({}): wmi {:?} must have 3 characters",
                entry.make, entry.wmi
            ));
        }
        // Checked before `Vin::from_serial`, which expects the VIN alphabet.
        let vin_char =
            |c: char| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"IOQ".contains(c));
        if !entry.wmi.chars().all(vin_char) {
            return Err(format!(
                "entry {i} ({}): wmi {:?} cannot start a VIN (digits and A-Z except I, O, Q)",
                entry.make, entry.wmi
            ));
        }
        if let Err(e) = Vin::parse(Vin::from_serial(&entry.wmi, 0).as_str()) {
            return Err(format!(
                "entry {i} ({}): wmi {:?} cannot start a VIN: {e}",
                entry.make, entry.wmi
            ));
        }
        if entry.models.is_empty() {
            return Err(format!("entry {i} ({}): no models", entry.make));
        }
        if let Some(model) = entry.models.iter().find(|m| !name_ok(m)) {
            return Err(format!(
                "entry {i} ({}): model {model:?} must have 1 to {MAX_NAME_LEN} characters",
                entry.make
            ));
        }
    }
    Ok(Catalogue(entries))
}

fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if interval < Duration::from_millis(10) || interval > Duration::from_secs(3_600) {
        return Err("must lie between 10ms and 1h".into());
    }
    Ok(interval)
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(duration)
}

fn parse_jitter(text: &str) -> Result<f64, String> {
    parse_in_range(text, 0.0, 0.5)
}

fn parse_rate(text: &str) -> Result<f64, String> {
    parse_in_range(text, 0.0, 1.0)
}

fn parse_in_range(text: &str, lo: f64, hi: f64) -> Result<f64, String> {
    let value: f64 = text.parse().map_err(|e| format!("not a number: {e}"))?;
    if !(lo..=hi).contains(&value) {
        return Err(format!("must lie in [{lo}, {hi}]"));
    }
    Ok(value)
}

/// Latitudes near the poles break the equirectangular approximation, so they are refused.
fn parse_latitude(text: &str) -> Result<f64, String> {
    parse_in_range(text, -85.0, 85.0)
}

fn parse_longitude(text: &str) -> Result<f64, String> {
    parse_in_range(text, -180.0, 180.0)
}

fn parse_radius(text: &str) -> Result<f64, String> {
    parse_in_range(text, 10.0, 500_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let cli = Cli::try_parse_from(["vehicle", "--ingest-url", "http://i:8080/events"]).unwrap();
        assert_eq!(cli.count, 1);
        assert_eq!(cli.first_index, 0);
        assert_eq!(cli.report_interval, Duration::from_secs(1));
        assert_eq!(cli.listen, "0.0.0.0:8090".parse().unwrap());
        assert_eq!(cli.catalogue.0.len(), 3);
        assert_eq!(cli.report_jitter, 0.05);
        assert_eq!((cli.fault_spike_rate, cli.fault_stuck_rate), (0.0, 0.0));
        assert!(!cli.legacy_form);
        assert_eq!(cli.batch_max, 500);
        assert_eq!(cli.duration, None, "report until stopped");
    }

    #[test]
    fn a_duration_parses_and_zero_is_refused() {
        let cli = Cli::try_parse_from([
            "vehicle",
            "--ingest-url",
            "http://i:8080/events",
            "--duration",
            "1m 30s",
        ])
        .unwrap();
        assert_eq!(cli.duration, Some(Duration::from_secs(90)));
        for bad in ["0s", "soon"] {
            assert!(
                Cli::try_parse_from(["vehicle", "--ingest-url", "http://i", "--duration", bad])
                    .is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn faults_jitter_and_legacy_mode_parse_and_are_checked() {
        let cli = Cli::try_parse_from([
            "vehicle",
            "--ingest-url",
            "http://i:8080/events",
            "--report-jitter",
            "0.2",
            "--fault-spike-rate",
            "0.01",
            "--fault-stuck-rate",
            "0.001",
            "--fault-stuck-duration",
            "45s",
            "--legacy-form",
        ])
        .unwrap();
        assert_eq!(cli.report_jitter, 0.2);
        assert_eq!(cli.fault_spike_rate, 0.01);
        assert_eq!(cli.fault_stuck_rate, 0.001);
        assert_eq!(cli.fault_stuck_duration, Duration::from_secs(45));
        assert!(cli.legacy_form);
        for (flag, value) in [
            ("--report-jitter", "0.9"),
            ("--fault-spike-rate", "1.5"),
            ("--fault-stuck-rate", "-0.1"),
        ] {
            assert!(
                Cli::try_parse_from(["vehicle", "--ingest-url", "http://i", flag, value]).is_err(),
                "{flag} {value}"
            );
        }
    }

    #[test]
    fn negative_coordinates_parse() {
        let cli = Cli::try_parse_from([
            "vehicle",
            "--ingest-url",
            "http://i:8080/events",
            "--origin-lat",
            "-33.9",
            "--origin-lon",
            "-70.6",
        ])
        .unwrap();
        assert_eq!((cli.origin_lat, cli.origin_lon), (-33.9, -70.6));
    }

    #[test]
    fn bad_catalogues_are_refused_with_a_reason() {
        for (text, needle) in [
            ("[]", "empty"),
            ("{}", "JSON array"),
            (
                r#"[{"make":"A","wmi":"YV","models":["m"]}]"#,
                "3 characters",
            ),
            (
                r#"[{"make":"A","wmi":"Y-1","models":["m"]}]"#,
                "cannot start a VIN",
            ),
            (
                r#"[{"make":"A","wmi":"yv1","models":["m"]}]"#,
                "cannot start a VIN",
            ),
            (r#"[{"make":"A","wmi":"YV1","models":[]}]"#, "no models"),
            (r#"[{"make":"","wmi":"YV1","models":["m"]}]"#, "make"),
        ] {
            let err = parse_catalogue(text).unwrap_err();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
