//! Test helpers: sample events and a fake [`Broker`] whose behaviour each test chooses.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::app::{AppState, Settings};
use crate::broker::{Appended, Broker, BrokerError, PartitionWatermarks};

pub use ingest::samples::event_json;

/// How the fake answers `append`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Acknowledge every record.
    Ack,
    /// Fail every record.
    Fail,
    /// Never answer.
    Hang,
}

/// A broker in memory: records what was appended, answers as [`Mode`] says.
pub struct FakeBroker {
    /// The behaviour.
    pub mode: Mode,
    /// Whether `check_ready` succeeds.
    pub ready: bool,
    /// `(key, payload)` of every append, in call order.
    pub appended: Mutex<Vec<(String, Vec<u8>)>>,
}

impl FakeBroker {
    /// A fake in `mode`, ready.
    pub fn new(mode: Mode) -> Arc<Self> {
        Arc::new(Self {
            mode,
            ready: true,
            appended: Mutex::default(),
        })
    }
}

impl Broker for FakeBroker {
    fn append(
        &self,
        key: &str,
        payload: Vec<u8>,
    ) -> BoxFuture<'static, Result<Appended, BrokerError>> {
        let mut appended = self.appended.lock().unwrap();
        appended.push((key.to_owned(), payload));
        let offset = appended.len() as i64 - 1;
        match self.mode {
            Mode::Ack => futures::future::ready(Ok(Appended {
                partition: 1,
                offset,
            }))
            .boxed(),
            Mode::Fail => futures::future::ready(Err(BrokerError::new(
                "producing a record",
                "telemetry",
                "Local: Message timed out",
            )))
            .boxed(),
            Mode::Hang => futures::future::pending().boxed(),
        }
    }

    fn watermarks(&self) -> BoxFuture<'static, Result<Vec<PartitionWatermarks>, BrokerError>> {
        let result = if self.ready {
            Ok(vec![
                PartitionWatermarks {
                    partition: 1,
                    low: 0,
                    high: 30,
                },
                PartitionWatermarks {
                    partition: 0,
                    low: 0,
                    high: 12,
                },
            ])
        } else {
            Err(BrokerError::new(
                "reading metadata",
                "telemetry",
                "all brokers are down",
            ))
        };
        futures::future::ready(result).boxed()
    }

    fn queue_depth(&self) -> u64 {
        3
    }

    fn producer_replacements(&self) -> u64 {
        1
    }

    fn check_ready(&self) -> BoxFuture<'static, Result<(), BrokerError>> {
        let result = if self.ready {
            Ok(())
        } else {
            Err(BrokerError::new(
                "reading metadata",
                "telemetry",
                "all brokers are down",
            ))
        };
        futures::future::ready(result).boxed()
    }
}

/// The settings of [`state`]: a 4 KiB body limit, at most 10 records per request, a 200 ms
/// produce timeout, no rate limit.
pub fn settings() -> Settings {
    Settings {
        topic: "telemetry".into(),
        max_body_bytes: 1024 * 4,
        max_records_per_request: 10,
        produce_timeout: Duration::from_millis(200),
        rate_limit_per_vin: 0,
    }
}

/// App state around `broker` with [`settings`].
pub fn state(broker: Arc<FakeBroker>) -> AppState {
    AppState::new(broker, settings())
}
