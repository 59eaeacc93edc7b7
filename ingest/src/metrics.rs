//! The service's metrics and their Prometheus text exposition (format 0.0.4), kept by hand:
//! a few counters, one histogram and one gauge do not need a metrics library.
//!
//! - `ingest_http_requests_total{method,path,code}`: responses by route and status code.
//! - `ingest_records_total{outcome}`: records of `POST /events` by fate.
//! - `ingest_produce_latency_seconds`: time from queueing a record to the broker's
//!   acknowledgement, acknowledged records only.
//! - `ingest_producer_queue_depth`: records the producer holds that the broker has not yet
//!   acknowledged, read when scraped.
//! - `ingest_producer_replacements_total`: producers replaced after a fatal error (a broker
//!   restart can cause one), read when scraped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fleet_common::latency_histogram::LatencyHistogram;

/// What the producer reports when scraped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProducerReadings {
    /// Records queued or in flight, not yet acknowledged.
    pub queue_depth: u64,
    /// Producers replaced after a fatal error so far.
    pub replacements: u64,
}

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What became of one record of `POST /events`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Acknowledged by the broker.
    Accepted,
    /// Invalid, never produced.
    Rejected,
    /// Its vehicle was over its rate, never produced.
    RateLimited,
    /// Valid, but not acknowledged in time.
    Failed,
}

impl RecordOutcome {
    const ALL: [Self; 4] = [
        Self::Accepted,
        Self::Rejected,
        Self::RateLimited,
        Self::Failed,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
            Self::RateLimited => "rate_limited",
            Self::Failed => "failed",
        }
    }
}

/// A request as counted: method, route and status code.
type RequestKey = (&'static str, String, u16);

/// Every metric of one process; shared by all requests.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    records: [AtomicU64; RecordOutcome::ALL.len()],
    latency: LatencyHistogram,
}

impl Metrics {
    /// Counts one answered request. `method` outside the standard ones is counted as `OTHER`
    /// and an unrouted path as `unmatched`, so clients cannot grow the label sets.
    pub fn count_request(&self, method: &str, route: Option<&str>, code: u16) {
        const METHODS: [&str; 9] = [
            "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
        ];
        let method = METHODS
            .into_iter()
            .find(|m| *m == method)
            .unwrap_or("OTHER");
        let route = route.unwrap_or("unmatched").to_owned();
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *requests.entry((method, route, code)).or_default() += 1;
    }

    /// Adds `n` records with `outcome`.
    pub fn count_records(&self, outcome: RecordOutcome, n: usize) {
        self.records[outcome as usize].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Records how long the broker took to acknowledge one record.
    pub fn observe_produce_latency(&self, latency: Duration) {
        self.latency.observe(latency);
    }

    /// The exposition, with the producer's readings taken at scrape time.
    pub fn render(&self, producer: ProducerReadings) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP ingest_http_requests_total HTTP responses by method, route and status code.\n\
             # TYPE ingest_http_requests_total counter\n",
        );
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((method, path, code), n) in &requests {
            let _ = writeln!(
                out,
                "ingest_http_requests_total{{method=\"{method}\",path=\"{}\",code=\"{code}\"}} {n}",
                escape(path)
            );
        }

        out.push_str(
            "# HELP ingest_records_total Records of POST /events by outcome.\n\
             # TYPE ingest_records_total counter\n",
        );
        for outcome in RecordOutcome::ALL {
            let n = self.records[outcome as usize].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "ingest_records_total{{outcome=\"{}\"}} {n}",
                outcome.label()
            );
        }

        self.latency.render(
            "ingest_produce_latency_seconds",
            "Time from queueing a record to the broker's acknowledgement.",
            &mut out,
        );

        out.push_str(
            "# HELP ingest_producer_queue_depth Records queued in the producer and not yet acknowledged.\n\
             # TYPE ingest_producer_queue_depth gauge\n",
        );
        let _ = writeln!(out, "ingest_producer_queue_depth {}", producer.queue_depth);
        out.push_str(
            "# HELP ingest_producer_replacements_total Producers replaced after a fatal error.\n\
             # TYPE ingest_producer_replacements_total counter\n",
        );
        let _ = writeln!(
            out,
            "ingest_producer_replacements_total {}",
            producer.replacements
        );
        out
    }
}

/// A label value with `\`, `"` and newlines escaped as the format requires.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        for ms in [1, 3, 3, 40, 60_000] {
            metrics.observe_produce_latency(Duration::from_millis(ms));
        }
        let text = metrics.render(ProducerReadings {
            queue_depth: 7,
            replacements: 2,
        });
        for line in [
            "ingest_produce_latency_seconds_bucket{le=\"0.001\"} 1",
            "ingest_produce_latency_seconds_bucket{le=\"0.0025\"} 1",
            "ingest_produce_latency_seconds_bucket{le=\"0.005\"} 3",
            "ingest_produce_latency_seconds_bucket{le=\"0.05\"} 4",
            "ingest_produce_latency_seconds_bucket{le=\"30\"} 4",
            "ingest_produce_latency_seconds_bucket{le=\"+Inf\"} 5",
            "ingest_produce_latency_seconds_sum 60.047",
            "ingest_produce_latency_seconds_count 5",
            "ingest_producer_queue_depth 7",
            "ingest_producer_replacements_total 2",
            "ingest_records_total{outcome=\"accepted\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn request_labels_are_bounded_and_escaped() {
        let metrics = Metrics::default();
        metrics.count_request("POST", Some("/events"), 200);
        metrics.count_request("POST", Some("/events"), 200);
        metrics.count_request("BREW", None, 404);
        metrics.count_request("GET", Some("/a\"b"), 200);
        let text = metrics.render(ProducerReadings::default());
        for line in [
            "ingest_http_requests_total{method=\"POST\",path=\"/events\",code=\"200\"} 2",
            "ingest_http_requests_total{method=\"OTHER\",path=\"unmatched\",code=\"404\"} 1",
            "ingest_http_requests_total{method=\"GET\",path=\"/a\\\"b\",code=\"200\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
