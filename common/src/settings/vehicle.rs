//! [`VehicleSettings`]: what the orchestrator starts a vehicle container with, a process that
//! simulates a block of vehicles reporting to ingest.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;

use super::SettingsError;
use super::catalogue::{Catalogue, DEFAULT_CATALOGUE, parse_catalogue};
use super::env::*;
use super::limits;
use super::limits::duration_text;
use super::ports::{VEHICLE_PORT, listen_on};
use crate::config::Config;

/// A vehicle container's settings: every field is a flag and an environment variable.
#[derive(Debug, Clone, PartialEq, Args)]
pub struct VehicleSettings {
    /// Where events are POSTed, e.g. `http://mystack-ingest:8080/events`.
    #[arg(long, env = VEHICLE_INGEST_URL)]
    pub ingest_url: String,

    /// Vehicles simulated by this process.
    #[arg(long, env = VEHICLE_COUNT, default_value_t = 1,
          value_parser = limits::VEHICLE_COUNT.parser())]
    pub count: u64,

    /// Global index of this process's first vehicle; vehicle `i` gets serial number `i`.
    #[arg(long, env = VEHICLE_FIRST_INDEX, default_value_t = 0)]
    pub first_index: u64,

    /// Seed of the simulation: the same seed and index give the same vehicle and trip.
    #[arg(long, env = VEHICLE_SEED, default_value_t = 42)]
    pub seed: u64,

    /// Time between two reports of one vehicle (e.g. `1s`, `250ms`), 10ms to 1h.
    #[arg(long, env = VEHICLE_REPORT_INTERVAL, default_value = "1s",
          value_parser = limits::REPORT_INTERVAL.parser())]
    pub report_interval: Duration,

    /// Each report is up to this share of the interval early or late, at random (0 to 0.5).
    #[arg(long, env = VEHICLE_REPORT_JITTER, default_value_t = 0.05,
          value_parser = limits::REPORT_JITTER.parser())]
    pub report_jitter: f64,

    /// Probability that one reading of one sensor is a spike (0 to 1).
    #[arg(long, env = VEHICLE_FAULT_SPIKE_RATE, default_value_t = 0.0,
          value_parser = limits::FAULT_RATE.parser())]
    pub fault_spike_rate: f64,

    /// Probability per reading that a sensor gets stuck at its value (0 to 1).
    #[arg(long, env = VEHICLE_FAULT_STUCK_RATE, default_value_t = 0.0,
          value_parser = limits::FAULT_RATE.parser())]
    pub fault_stuck_rate: f64,

    /// How long a stuck sensor repeats its value (e.g. `30s`).
    #[arg(long, env = VEHICLE_FAULT_STUCK_DURATION, default_value = "30s",
          value_parser = humantime::parse_duration)]
    pub fault_stuck_duration: Duration,

    /// Post the old client's format: one form-encoded event per request, VINs without check
    /// digit (`seq` and `event_id` are then assigned by ingest).
    #[arg(long, env = VEHICLE_LEGACY_FORM, default_value_t = false,
          action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub legacy_form: bool,

    /// Report only this long (e.g. `60s`), then deliver what is pending and keep serving
    /// `GET /stats` with final counters until stopped. Unset: report until stopped.
    #[arg(long, env = VEHICLE_DURATION, value_parser = limits::VEHICLE_DURATION.parser())]
    pub duration: Option<Duration>,

    /// Makes and models to draw from, a JSON array of `{"make", "wmi", "models"}`.
    #[arg(long, env = VEHICLE_CATALOGUE, default_value = DEFAULT_CATALOGUE,
          value_parser = parse_catalogue)]
    pub catalogue: Catalogue,

    /// Latitude of the local frame's origin, degrees.
    #[arg(long, env = VEHICLE_ORIGIN_LAT, default_value_t = 59.3293,
          allow_negative_numbers = true, value_parser = limits::LATITUDE.parser())]
    pub origin_lat: f64,

    /// Longitude of the local frame's origin, degrees.
    #[arg(long, env = VEHICLE_ORIGIN_LON, default_value_t = 18.0686,
          allow_negative_numbers = true, value_parser = limits::LONGITUDE.parser())]
    pub origin_lon: f64,

    /// Vehicles stay within this distance of the origin, metres.
    #[arg(long, env = VEHICLE_AREA_RADIUS_M, default_value_t = 2000.0,
          value_parser = limits::AREA_RADIUS_M.parser())]
    pub area_radius_m: f64,

    /// Address of the `/stats` and `/healthz` server.
    #[arg(long, env = VEHICLE_LISTEN, default_value_t = listen_on(VEHICLE_PORT))]
    pub listen: SocketAddr,
}

/// What a vehicle container's settings take from the stack's layout and from `launch-fleet`
/// rather than from the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VehicleWiring {
    /// ingest's in-network events URL.
    pub ingest_url: String,
    /// Vehicles of this container.
    pub count: u64,
    /// Global index of its first vehicle.
    pub first_index: u64,
    /// Whether the vehicles post the old client's form.
    pub legacy_form: bool,
    /// How long the vehicles report; `None`: until stopped.
    pub duration: Option<Duration>,
}

impl VehicleSettings {
    /// The settings `config` gives a vehicle container, wired by `wiring`.
    pub fn from_config(config: &Config, wiring: VehicleWiring) -> Self {
        let v = &config.vehicles;
        Self {
            ingest_url: wiring.ingest_url,
            count: wiring.count,
            first_index: wiring.first_index,
            seed: v.seed,
            report_interval: v.report_interval,
            report_jitter: v.report_jitter,
            fault_spike_rate: v.fault_spike_rate,
            fault_stuck_rate: v.fault_stuck_rate,
            fault_stuck_duration: v.fault_stuck_duration,
            legacy_form: wiring.legacy_form,
            duration: wiring.duration,
            catalogue: Catalogue(v.catalogue.clone()),
            origin_lat: v.origin_lat,
            origin_lon: v.origin_lon,
            area_radius_m: v.area_radius_m,
            listen: listen_on(VEHICLE_PORT),
        }
    }

    /// Checks every bounded setting and the catalogue.
    pub fn validate(&self) -> Result<(), SettingsError> {
        limits::VEHICLE_COUNT.check(VEHICLE_COUNT, self.count)?;
        limits::REPORT_INTERVAL.check(VEHICLE_REPORT_INTERVAL, self.report_interval)?;
        limits::REPORT_JITTER.check(VEHICLE_REPORT_JITTER, self.report_jitter)?;
        limits::FAULT_RATE.check(VEHICLE_FAULT_SPIKE_RATE, self.fault_spike_rate)?;
        limits::FAULT_RATE.check(VEHICLE_FAULT_STUCK_RATE, self.fault_stuck_rate)?;
        if let Some(duration) = self.duration {
            limits::VEHICLE_DURATION.check(VEHICLE_DURATION, duration)?;
        }
        Catalogue::new(self.catalogue.0.clone()).map_err(|reason| SettingsError::Invalid {
            var: VEHICLE_CATALOGUE,
            reason,
        })?;
        limits::LATITUDE.check(VEHICLE_ORIGIN_LAT, self.origin_lat)?;
        limits::LONGITUDE.check(VEHICLE_ORIGIN_LON, self.origin_lon)?;
        limits::AREA_RADIUS_M.check(VEHICLE_AREA_RADIUS_M, self.area_radius_m)
    }

    /// The environment that gives a container these settings.
    pub fn to_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (VEHICLE_INGEST_URL, self.ingest_url.clone()),
            (VEHICLE_COUNT, self.count.to_string()),
            (VEHICLE_FIRST_INDEX, self.first_index.to_string()),
            (VEHICLE_SEED, self.seed.to_string()),
            (VEHICLE_REPORT_INTERVAL, duration_text(self.report_interval)),
            (VEHICLE_REPORT_JITTER, self.report_jitter.to_string()),
            (VEHICLE_FAULT_SPIKE_RATE, self.fault_spike_rate.to_string()),
            (VEHICLE_FAULT_STUCK_RATE, self.fault_stuck_rate.to_string()),
            (
                VEHICLE_FAULT_STUCK_DURATION,
                duration_text(self.fault_stuck_duration),
            ),
            (VEHICLE_LEGACY_FORM, self.legacy_form.to_string()),
            (VEHICLE_CATALOGUE, self.catalogue.to_json()),
            (VEHICLE_ORIGIN_LAT, self.origin_lat.to_string()),
            (VEHICLE_ORIGIN_LON, self.origin_lon.to_string()),
            (VEHICLE_AREA_RADIUS_M, self.area_radius_m.to_string()),
            (VEHICLE_LISTEN, self.listen.to_string()),
        ];
        if let Some(duration) = self.duration {
            env.push((VEHICLE_DURATION, duration_text(duration)));
        }
        env
    }
}
