//! [`BatchMaxRecords`]: the one validated type of `consumer.batch_max_records`, shared by the
//! config file, the live configuration in the registry and the consumer's command line, so
//! that all three accept exactly the same values with the same message.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Most records the consumer writes in one PostgreSQL transaction: between
/// [`BatchMaxRecords::MIN`] and [`BatchMaxRecords::MAX`]. Deserialising and parsing check the
/// range, so a value of this type is always one the consumer runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u32")]
pub struct BatchMaxRecords(u32);

/// Why a value is not a [`BatchMaxRecords`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchMaxRecordsError {
    /// Not a whole number.
    #[error("{text:?} is not a whole number of records")]
    NotANumber {
        /// The text given.
        text: String,
    },
    /// Outside the allowed range.
    #[error(
        "{value} records is outside [{min}, {max}], the batch sizes the consumer accepts",
        min = BatchMaxRecords::MIN,
        max = BatchMaxRecords::MAX
    )]
    OutOfRange {
        /// The value given.
        value: u64,
    },
}

impl BatchMaxRecords {
    /// The smallest batch.
    pub const MIN: u32 = 1;
    /// The largest batch: a timed-out batch is split until it fits the per-statement timeout,
    /// and the consumer's database tests write a batch of this size.
    pub const MAX: u32 = 100_000;
    /// The shipped default.
    pub const DEFAULT: Self = Self(20_000);

    /// `value`, checked against the range.
    pub fn new(value: u64) -> Result<Self, BatchMaxRecordsError> {
        match u32::try_from(value) {
            Ok(v) if (Self::MIN..=Self::MAX).contains(&v) => Ok(Self(v)),
            _ => Err(BatchMaxRecordsError::OutOfRange { value }),
        }
    }

    /// The number of records.
    pub fn get(self) -> u32 {
        self.0
    }

    /// The number of records as a `usize`.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl Default for BatchMaxRecords {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl TryFrom<u64> for BatchMaxRecords {
    type Error = BatchMaxRecordsError;

    fn try_from(value: u64) -> Result<Self, Self::Error> {
        Self::new(value)
    }
}

impl From<BatchMaxRecords> for u32 {
    fn from(value: BatchMaxRecords) -> Self {
        value.0
    }
}

impl FromStr for BatchMaxRecords {
    type Err = BatchMaxRecordsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let value = text
            .trim()
            .parse::<u64>()
            .map_err(|_| BatchMaxRecordsError::NotANumber {
                text: text.to_owned(),
            })?;
        Self::new(value)
    }
}

impl fmt::Display for BatchMaxRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_inclusive_and_checked_everywhere() {
        assert_eq!(BatchMaxRecords::new(1).unwrap().get(), 1);
        assert_eq!("100000".parse::<BatchMaxRecords>().unwrap().get(), 100_000);
        for bad in [0, 100_001, 200_000, u64::from(u32::MAX) + 1] {
            let err = BatchMaxRecords::new(bad).unwrap_err().to_string();
            assert!(
                err.contains(&bad.to_string()) && err.contains("[1, 100000]"),
                "{err}"
            );
        }
        let err = "-3".parse::<BatchMaxRecords>().unwrap_err().to_string();
        assert!(err.contains("whole number"), "{err}");
    }

    #[test]
    fn serde_goes_through_the_check() {
        let ok: BatchMaxRecords = serde_json::from_str("250").unwrap();
        assert_eq!(serde_json::to_string(&ok).unwrap(), "250");
        let err = serde_json::from_str::<BatchMaxRecords>("200000")
            .unwrap_err()
            .to_string();
        assert!(err.contains("outside [1, 100000]"), "{err}");
    }
}
