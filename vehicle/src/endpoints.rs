//! Which ingest to send the next request to: the current list of ingest URLs (from a
//! [`tokio::sync::watch`] channel, e.g. fed by a registry), taken in turn, skipping entries that
//! failed recently. Each entry backs off on its own, so a request that failed on one entry is
//! retried on another while that one recovers.

use std::collections::HashMap;
use std::time::Duration;

use rand::rngs::StdRng;
use reqwest::Url;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::client::events_url;

/// The state of one ingest entry.
#[derive(Debug)]
struct Endpoint {
    url: Url,
    backoff: Backoff,
    /// Not used again before this instant.
    resume_at: Instant,
    failing: bool,
}

/// Where requests go.
#[derive(Debug)]
pub enum Pick {
    /// Send to this entry (its list text and its events URL).
    Use(String, Url),
    /// Every entry is backing off.
    Waiting,
    /// The list is empty (or holds no usable URL).
    Nothing,
}

/// The ingest entries and their health.
#[derive(Debug)]
pub struct Endpoints {
    list: watch::Receiver<Vec<String>>,
    known: HashMap<String, Endpoint>,
    cursor: usize,
}

impl Endpoints {
    /// Entries read from `list` at every pick.
    pub fn new(list: watch::Receiver<Vec<String>>) -> Self {
        Self {
            list,
            known: HashMap::new(),
            cursor: 0,
        }
    }

    /// The next entry in turn that is not backing off.
    pub fn pick(&mut self, now: Instant) -> Pick {
        let list = self.list.borrow().clone();
        self.known.retain(|k, _| list.contains(k));
        let mut waiting = false;
        for step in 0..list.len() {
            let entry = &list[(self.cursor + step) % list.len()];
            if !self.known.contains_key(entry) {
                match events_url(entry) {
                    Ok(url) => {
                        self.known.insert(
                            entry.clone(),
                            Endpoint {
                                url,
                                backoff: Backoff::default(),
                                resume_at: now,
                                failing: false,
                            },
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "ignoring an ingest entry");
                        continue;
                    }
                }
            }
            let endpoint = &self.known[entry];
            if endpoint.resume_at <= now {
                self.cursor = (self.cursor + step + 1) % list.len();
                return Pick::Use(entry.clone(), endpoint.url.clone());
            }
            waiting = true;
        }
        if waiting {
            Pick::Waiting
        } else {
            Pick::Nothing
        }
    }

    /// A request to `entry` failed: it backs off (at least `retry_after`).
    pub fn failed(
        &mut self,
        entry: &str,
        now: Instant,
        retry_after: Option<Duration>,
        reason: &str,
        rng: &mut StdRng,
    ) {
        if let Some(endpoint) = self.known.get_mut(entry) {
            let delay = endpoint.backoff.failure(rng, retry_after);
            endpoint.resume_at = endpoint.resume_at.max(now + delay);
            if !endpoint.failing {
                endpoint.failing = true;
                tracing::warn!(ingest = entry, %reason, "ingest does not acknowledge events; vehicles keep them and retry");
            }
        }
    }

    /// A request to `entry` was answered.
    pub fn succeeded(&mut self, entry: &str) {
        if let Some(endpoint) = self.known.get_mut(entry) {
            endpoint.backoff.reset();
            if endpoint.failing {
                endpoint.failing = false;
                tracing::info!(ingest = entry, "ingest acknowledges events again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seeding::{Stream, rng};

    fn used(pick: Pick) -> String {
        match pick {
            Pick::Use(entry, _) => entry,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn entries_take_turns_skip_failed_ones_and_follow_the_list() {
        let (tx, rx) = watch::channel(vec!["http://a:8080".to_owned(), "http://b:8080".to_owned()]);
        let mut endpoints = Endpoints::new(rx);
        let mut r = rng(1, 1, Stream::Timing);
        let now = Instant::now();
        assert_eq!(used(endpoints.pick(now)), "http://a:8080");
        assert_eq!(used(endpoints.pick(now)), "http://b:8080");
        endpoints.failed("http://a:8080", now, None, "down", &mut r);
        // The retry goes to the other entry while `a` backs off.
        assert_eq!(used(endpoints.pick(now)), "http://b:8080");
        assert_eq!(used(endpoints.pick(now)), "http://b:8080");
        endpoints.failed(
            "http://b:8080",
            now,
            Some(Duration::from_secs(2)),
            "down",
            &mut r,
        );
        assert!(
            matches!(endpoints.pick(now), Pick::Waiting),
            "both back off"
        );
        assert_eq!(used(endpoints.pick(now + BASE_MAX)), "http://a:8080");

        tx.send(vec![
            "http://c:8080/events".to_owned(),
            "not a url".to_owned(),
        ])
        .unwrap();
        assert_eq!(used(endpoints.pick(now)), "http://c:8080/events");
        assert_eq!(used(endpoints.pick(now)), "http://c:8080/events");
        tx.send(Vec::new()).unwrap();
        assert!(matches!(endpoints.pick(now), Pick::Nothing));
    }

    /// The longest first backoff step.
    const BASE_MAX: Duration = crate::backoff::BASE;
}
