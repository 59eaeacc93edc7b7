//! Sensor histograms per minute window: each sensor's fixed-width bins (configurable as
//! `sensor=lower:upper:width,...`), the binning rule, the SQL that applies it and the grouping
//! of its rows into the wire type [`Histogram`].

use std::str::FromStr;

use chrono::{DateTime, Utc};
use fleet_common::wire::{Bin, Histogram, Sensor};

/// Fixed-width bins over `[lower, upper)`, plus one bin below (`bin_lower = -inf`) and one at
/// or above (`bin_lower = upper`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bins {
    /// Lower bound of the first bin.
    pub lower: f64,
    /// Upper bound of the last bin.
    pub upper: f64,
    /// Width of a bin.
    pub width: f64,
}

/// Most bins one sensor may have.
pub const MAX_BINS: f64 = 10_000.0;

impl Bins {
    /// The lower bound of the bin holding `value`, computed exactly as the SQL computes it.
    pub fn bin_lower(&self, value: f64) -> f64 {
        if value < self.lower {
            f64::NEG_INFINITY
        } else if value >= self.upper {
            self.upper
        } else {
            self.lower + ((value - self.lower) / self.width).floor() * self.width
        }
    }
}

/// The bins of every sensor.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistogramBins {
    /// Per sensor, in [`Sensor::ALL`] order.
    bins: [Bins; 3],
}

/// The default of `CONSUMER_HISTOGRAM_BINS`: the accepted temperature range in 5 °C steps,
/// humidity in 10 % steps, pressure around sea level in 10 hPa steps.
pub const DEFAULT_HISTOGRAM_BINS: &str =
    "temperature_c=-60:70:5,humidity_pct=0:100:10,pressure_hpa=900:1100:10";

impl Default for HistogramBins {
    fn default() -> Self {
        let bins = |lower, upper, width| Bins {
            lower,
            upper,
            width,
        };
        Self {
            bins: [
                bins(-60.0, 70.0, 5.0),
                bins(0.0, 100.0, 10.0),
                bins(900.0, 1100.0, 10.0),
            ],
        }
    }
}

impl HistogramBins {
    /// The bins of `sensor`.
    pub fn of(&self, sensor: Sensor) -> Bins {
        self.bins[sensor as usize]
    }
}

/// Why a `CONSUMER_HISTOGRAM_BINS` entry was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("parsing histogram bins entry `{entry}` (form sensor=lower:upper:width): {problem}")]
pub struct BinsError {
    /// The entry as written.
    pub entry: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FromStr for HistogramBins {
    type Err = BinsError;

    /// Parses `sensor=lower:upper:width` entries separated by commas; sensors not named keep
    /// their default bins.
    fn from_str(text: &str) -> Result<Self, BinsError> {
        let mut out = Self::default();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let fail = |problem: String| BinsError {
                entry: entry.to_owned(),
                problem,
            };
            let (name, spec) = entry.split_once('=').ok_or_else(|| fail("no `=`".into()))?;
            let sensor = Sensor::from_name(name.trim()).ok_or_else(|| {
                let known: Vec<_> = Sensor::ALL.iter().map(|s| s.as_str()).collect();
                fail(format!("unknown sensor, known: {}", known.join(", ")))
            })?;
            let numbers = spec
                .split(':')
                .map(|n| n.trim().parse::<f64>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| fail(format!("not a number: {e}")))?;
            let [lower, upper, width] = numbers[..] else {
                return Err(fail(format!("{} numbers, 3 expected", numbers.len())));
            };
            if ![lower, upper, width].iter().all(|n| n.is_finite()) {
                return Err(fail("numbers must be finite".into()));
            }
            if lower >= upper || width <= 0.0 {
                return Err(fail("lower < upper and width > 0 required".into()));
            }
            if (upper - lower) / width > MAX_BINS {
                return Err(fail(format!("more than {MAX_BINS} bins")));
            }
            out.bins[sensor as usize] = Bins {
                lower,
                upper,
                width,
            };
        }
        Ok(out)
    }
}

/// Groups `(sensor, window_start, bin_lower, count)` rows, ordered by sensor, window and bin,
/// into histograms. Rows of unknown sensors are skipped.
pub fn group_bins(
    rows: impl IntoIterator<Item = (String, DateTime<Utc>, f64, i64)>,
) -> Vec<Histogram> {
    let mut out: Vec<Histogram> = Vec::new();
    for (name, window_start, lower, count) in rows {
        let Some(sensor) = Sensor::from_name(&name) else {
            continue;
        };
        let bin = Bin {
            lower: lower.is_finite().then_some(lower),
            count,
        };
        match out.last_mut() {
            Some(h) if h.sensor == sensor && h.window_start == window_start => h.bins.push(bin),
            _ => out.push(Histogram {
                sensor,
                window_start,
                bins: vec![bin],
            }),
        }
    }
    out
}

/// Adds the new readings per sensor, minute window and bin (`$1..$4`: sensor, window start,
/// bin lower bound as [`Bins::bin_lower`] computes it, readings; only events at or after the
/// cutoff, a missing reading in no bin) to `sensor_histograms`.
pub(crate) const UPSERT_HISTOGRAMS: &str = r#"
INSERT INTO sensor_histograms AS h (sensor, window_start, bin_lower, count)
SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::int8[])
 ORDER BY 1, 2, 3
ON CONFLICT (sensor, window_start, bin_lower) DO UPDATE SET count = h.count + EXCLUDED.count
"#;

/// The complete histograms of the `(sensor, window_start)` pairs `$1, $2`, after
/// [`UPSERT_HISTOGRAMS`] (looked up by primary key).
pub(crate) const SELECT_HISTOGRAMS: &str = r#"
SELECT h.sensor, h.window_start, h.bin_lower, h.count
  FROM unnest($1::text[], $2::timestamptz[]) AS w(sensor, window_start)
  JOIN sensor_histograms h ON h.sensor = w.sensor AND h.window_start = w.window_start
 ORDER BY 1, 2, 3
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_into_fixed_width_bins() {
        let b = HistogramBins::default().of(Sensor::TemperatureC);
        assert_eq!(b.bin_lower(21.0), 20.0);
        assert_eq!(b.bin_lower(20.0), 20.0);
        assert_eq!(b.bin_lower(-60.0), -60.0);
        assert_eq!(b.bin_lower(-57.5), -60.0);
        assert_eq!(b.bin_lower(-0.1), -5.0);
        assert_eq!(b.bin_lower(69.9), 65.0);
    }

    #[test]
    fn out_of_range_values_get_open_bins() {
        let b = HistogramBins::default().of(Sensor::PressureHpa);
        assert_eq!(b.bin_lower(899.9), f64::NEG_INFINITY);
        assert_eq!(b.bin_lower(300.0), f64::NEG_INFINITY);
        assert_eq!(b.bin_lower(1100.0), 1100.0);
        assert_eq!(b.bin_lower(1013.0), 1010.0);
    }

    #[test]
    fn defaults_match_the_documented_string() {
        assert_eq!(
            DEFAULT_HISTOGRAM_BINS.parse::<HistogramBins>().unwrap(),
            HistogramBins::default()
        );
    }

    #[test]
    fn entries_override_only_their_sensor() {
        let bins: HistogramBins = " humidity_pct = 0:100:2.5 ".parse().unwrap();
        assert_eq!(
            bins.of(Sensor::HumidityPct),
            Bins {
                lower: 0.0,
                upper: 100.0,
                width: 2.5
            }
        );
        assert_eq!(
            bins.of(Sensor::TemperatureC),
            HistogramBins::default().of(Sensor::TemperatureC)
        );
        assert_eq!(bins.of(Sensor::HumidityPct).bin_lower(41.0), 40.0);
        assert_eq!(
            "".parse::<HistogramBins>().unwrap(),
            HistogramBins::default()
        );
    }

    #[test]
    fn bad_entries_name_the_entry_and_the_problem() {
        for (text, problem) in [
            ("wind=0:1:1", "unknown sensor"),
            ("humidity_pct", "no `=`"),
            ("humidity_pct=0:100", "2 numbers"),
            ("humidity_pct=0:x:1", "not a number"),
            ("humidity_pct=100:0:10", "lower < upper"),
            ("humidity_pct=0:100:0", "width > 0"),
            ("humidity_pct=0:100:0.001", "more than"),
            ("humidity_pct=0:inf:1", "finite"),
        ] {
            let err = text.parse::<HistogramBins>().unwrap_err().to_string();
            assert!(err.contains(text.split(',').next().unwrap()), "{err}");
            assert!(err.contains(problem), "{text}: {err}");
        }
    }

    #[test]
    fn rows_group_into_histograms() {
        let w1: DateTime<Utc> = "2026-11-21T10:00:00Z".parse().unwrap();
        let w2: DateTime<Utc> = "2026-11-21T10:01:00Z".parse().unwrap();
        let rows = vec![
            ("humidity_pct".to_owned(), w1, 40.0, 2),
            ("temperature_c".to_owned(), w1, f64::NEG_INFINITY, 1),
            ("temperature_c".to_owned(), w1, 20.0, 3),
            ("temperature_c".to_owned(), w2, 20.0, 1),
            ("wind".to_owned(), w2, 1.0, 1),
        ];
        let h = group_bins(rows);
        assert_eq!(h.len(), 3);
        assert_eq!(h[1].sensor, Sensor::TemperatureC);
        assert_eq!(
            h[1].bins,
            vec![
                Bin {
                    lower: None,
                    count: 1
                },
                Bin {
                    lower: Some(20.0),
                    count: 3
                }
            ]
        );
        assert_eq!(h[2].window_start, w2);
    }
}
