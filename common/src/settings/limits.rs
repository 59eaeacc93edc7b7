//! The accepted values of every bounded setting, one [`Limit`] each. The same limit is what the
//! service's command line parses with ([`Limit::parser`]), what the settings' `validate()`
//! checks ([`Limit::check`]), and therefore what the config check (`fleet_common::config`) and
//! the live configuration accept: a range is written once.

use std::time::Duration;

use super::SettingsError;

/// A type a [`Limit`] can bound: ordered, shown and parsed as a setting's text.
pub trait Bound: PartialOrd + Copy + Send + Sync + 'static {
    /// The largest value (a limit up to it has no upper bound).
    const MAX: Self;
    /// The value as a setting's text (durations as `1m 30s`).
    fn show(self) -> String;
    /// Parses a setting's text.
    fn parse_text(text: &str) -> Result<Self, String>;
    /// The value as a bound in messages (by default as [`Bound::show`]).
    fn show_bound(self) -> String {
        self.show()
    }
}

impl Bound for Duration {
    const MAX: Self = Duration::MAX;

    fn show(self) -> String {
        humantime::format_duration(self).to_string()
    }

    fn parse_text(text: &str) -> Result<Self, String> {
        humantime::parse_duration(text).map_err(|e| e.to_string())
    }

    /// Whole seconds below an hour as seconds (`60s`, not `1m`).
    fn show_bound(self) -> String {
        match self.as_secs() {
            1..3_600 if self.subsec_nanos() == 0 => format!("{}s", self.as_secs()),
            _ => self.show(),
        }
    }
}

macro_rules! numeric_bound {
    ($($ty:ty: $max:expr),*) => {$(
        impl Bound for $ty {
            const MAX: Self = $max;

            fn show(self) -> String {
                self.to_string()
            }

            fn parse_text(text: &str) -> Result<Self, String> {
                text.parse().map_err(|e| format!("{text:?} is not a number: {e}"))
            }
        }
    )*};
}

numeric_bound!(usize: usize::MAX, u32: u32::MAX, u64: u64::MAX, f64: f64::INFINITY);

/// The inclusive range of values a setting accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit<T> {
    min: T,
    max: T,
}

impl<T: Bound> Limit<T> {
    /// `min..=max`.
    pub const fn new(min: T, max: T) -> Self {
        Self { min, max }
    }

    /// `min` and above.
    pub const fn at_least(min: T) -> Self {
        Self { min, max: T::MAX }
    }

    /// The smallest accepted value.
    pub fn min(self) -> T {
        self.min
    }

    /// The largest accepted value.
    pub fn max(self) -> T {
        self.max
    }

    /// Whether `value` is accepted (never a NaN).
    pub fn contains(self, value: T) -> bool {
        self.min <= value && value <= self.max
    }

    /// The accepted values as text, e.g. `4s..40s` or `at least 1024`.
    pub fn describe(self) -> String {
        if self.max == T::MAX {
            format!("at least {}", self.min.show_bound())
        } else {
            format!("{}..{}", self.min.show_bound(), self.max.show_bound())
        }
    }

    /// `value` of the setting read from `var`, checked.
    pub fn check(self, var: &'static str, value: T) -> Result<(), SettingsError> {
        if self.contains(value) {
            Ok(())
        } else {
            Err(SettingsError::OutOfRange {
                var,
                value: value.show(),
                range: self.describe(),
            })
        }
    }

    /// Parses `text` and checks the value.
    pub fn parse(self, text: &str) -> Result<T, String> {
        let value = T::parse_text(text.trim())?;
        if self.contains(value) {
            Ok(value)
        } else {
            Err(format!("{} is outside {}", value.show(), self.describe()))
        }
    }

    /// [`Limit::parse`] as a clap value parser (`value_parser = LIMIT.parser()`).
    pub fn parser(self) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
        move |text: &str| self.parse(text)
    }
}

/// A duration as a setting's text (`1m 30s`), the form `humantime` parses back.
pub fn duration_text(duration: Duration) -> String {
    duration.show()
}

const fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

const fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

// ingest.

/// `INGEST_MAX_BODY_BYTES` (`ingest.max_body_bytes`): at least 1 KiB.
pub const MAX_BODY_BYTES: Limit<usize> = Limit::at_least(1024);
/// `INGEST_MAX_RECORDS_PER_REQUEST` (`ingest.max_records_per_request`).
pub const MAX_RECORDS_PER_REQUEST: Limit<usize> = Limit::new(1, 100_000);
/// `INGEST_PRODUCE_TIMEOUT` (`ingest.produce_timeout`).
pub const PRODUCE_TIMEOUT: Limit<Duration> = Limit::new(ms(100), secs(3_600));
/// `INGEST_REQUEST_TIMEOUT` (`ingest.request_timeout`); it must also exceed the produce timeout.
pub const REQUEST_TIMEOUT: Limit<Duration> = Limit::new(ms(100), secs(3_600));
/// `INGEST_PRODUCER_LINGER` (`ingest.producer_linger`).
pub const PRODUCER_LINGER: Limit<Duration> = Limit::new(Duration::ZERO, secs(1));
/// The default of `ingest.producer_linger`: since records reach the producer in rounds (the
/// next produce request leaves when the last one is acknowledged, carrying everything that
/// arrived meanwhile), 64 connections of single-event POSTs were served fastest without it
/// (4,649–4,674/s, against 4,337/s with 5 ms and 4,264/s with 2 ms; results/end_to_end.md).
pub const DEFAULT_PRODUCER_LINGER: Duration = Duration::ZERO;
/// `INGEST_PRODUCER_MAX_IN_FLIGHT` (`ingest.producer_max_in_flight`): librdkafka allows at most
/// 5 with idempotence.
pub const PRODUCER_MAX_IN_FLIGHT: Limit<u32> = Limit::new(1, 5);
/// The default of `ingest.producer_max_in_flight`: the most librdkafka allows with idempotence,
/// so a request is not queued behind another one's round trip.
pub const DEFAULT_PRODUCER_MAX_IN_FLIGHT: u32 = 5;
/// `INGEST_MAX_CONCURRENT_REQUESTS` (`ingest.max_concurrent_requests`).
pub const MAX_CONCURRENT_REQUESTS: Limit<usize> = Limit::new(1, 100_000);
/// `INGEST_MAX_CONNECTIONS` (`ingest.max_connections`).
pub const MAX_CONNECTIONS: Limit<usize> = Limit::new(1, 100_000);
/// `INGEST_DASHBOARD_VEHICLE_TTL` (`ingest.dashboard_vehicle_ttl`): 1 minute to 30 days.
pub const DASHBOARD_VEHICLE_TTL: Limit<Duration> = Limit::new(secs(60), secs(30 * 86_400));
/// `INGEST_DASHBOARD_MAP_VEHICLES` (`ingest.dashboard_map_vehicles`).
pub const DASHBOARD_MAP_VEHICLES: Limit<usize> = Limit::new(1, 100_000);
/// `INGEST_DASHBOARD_MAX_MESSAGE_BYTES` (`ingest.dashboard_max_message_bytes`): 64 KiB (the
/// fleet figures alone need some room) to 64 MiB.
pub const DASHBOARD_MAX_MESSAGE_BYTES: Limit<usize> = Limit::new(65_536, 67_108_864);

// The simulated area (vehicles and ingest's map).

/// `VEHICLE_ORIGIN_LAT`, `INGEST_MAP_ORIGIN_LAT` (`vehicles.origin_lat`): latitudes near the
/// poles break the equirectangular approximation.
pub const LATITUDE: Limit<f64> = Limit::new(-85.0, 85.0);
/// `VEHICLE_ORIGIN_LON`, `INGEST_MAP_ORIGIN_LON` (`vehicles.origin_lon`).
pub const LONGITUDE: Limit<f64> = Limit::new(-180.0, 180.0);
/// `VEHICLE_AREA_RADIUS_M`, `INGEST_MAP_RADIUS_M` (`vehicles.area_radius_m`), metres.
pub const AREA_RADIUS_M: Limit<f64> = Limit::new(10.0, 100_000.0);

// The consumer.

/// `CONSUMER_REPLICAS` (`consumer.replicas`).
pub const CONSUMER_REPLICAS: Limit<u32> = Limit::new(1, 16);
/// `CONSUMER_FETCH_WAIT` (`consumer.fetch_wait`).
pub const FETCH_WAIT: Limit<Duration> = Limit::new(ms(10), secs(10));
/// `CONSUMER_PUBLISH_INTERVAL` (`consumer.publish_interval`): 0 publishes every batch.
pub const PUBLISH_INTERVAL: Limit<Duration> = Limit::new(ms(0), secs(60));
/// `CONSUMER_BATCH_MAX_WAIT` (`consumer.batch_max_wait`, live too).
pub const BATCH_MAX_WAIT: Limit<Duration> = Limit::new(ms(1), secs(60));

// Vehicles.

/// `VEHICLE_COUNT`: vehicles of one container.
pub const VEHICLE_COUNT: Limit<u64> = Limit::new(1, 100_000);
/// `VEHICLE_REPORT_INTERVAL` (`vehicles.report_interval`, live too).
pub const REPORT_INTERVAL: Limit<Duration> = Limit::new(ms(10), secs(3_600));
/// `VEHICLE_REPORT_JITTER` (`vehicles.report_jitter`, live `vehicles.jitter` too): a share of
/// the interval.
pub const REPORT_JITTER: Limit<f64> = Limit::new(0.0, 0.5);
/// `VEHICLE_FAULT_SPIKE_RATE`, `VEHICLE_FAULT_STUCK_RATE`: probabilities.
pub const FAULT_RATE: Limit<f64> = Limit::new(0.0, 1.0);
/// `VEHICLE_DURATION` (`launch-fleet --duration`): longer than 0.
pub const VEHICLE_DURATION: Limit<Duration> = Limit::at_least(Duration::from_nanos(1));

// The registry.

/// `ZOOKEEPER_SESSION_TIMEOUT` (`zookeeper.session_timeout`): what ZooKeeper grants with its
/// tick of 2 s.
pub const SESSION_TIMEOUT: Limit<Duration> = Limit::new(secs(4), secs(40));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_parses_checks_and_describes_itself() {
        assert_eq!(SESSION_TIMEOUT.describe(), "4s..40s");
        assert_eq!(MAX_BODY_BYTES.describe(), "at least 1024");
        assert_eq!(FETCH_WAIT.parse("100ms"), Ok(ms(100)));
        assert_eq!(
            FETCH_WAIT.parse("5ms").unwrap_err(),
            "5ms is outside 10ms..10s"
        );
        assert!(LATITUDE.parse("north").is_err());
        assert!(!LATITUDE.contains(f64::NAN));
        let err = SESSION_TIMEOUT
            .check("ZOOKEEPER_SESSION_TIMEOUT", secs(41))
            .unwrap_err();
        assert_eq!(err.var(), "ZOOKEEPER_SESSION_TIMEOUT");
        assert_eq!(
            err.to_string(),
            "checking setting ZOOKEEPER_SESSION_TIMEOUT: 41s is outside 4s..40s"
        );
    }
}
