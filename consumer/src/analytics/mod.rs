//! Stream analytics kept in PostgreSQL in each batch's transaction, from the rows really
//! inserted, and published to Kafka after the commit.

mod check;
#[cfg(test)]
mod db_tests;
mod delta;
mod gathered;
mod histograms;
mod publish;
mod store;
mod summary;
mod windows;

pub use check::check;
pub use delta::{Known, as_stored};
pub use histograms::{DEFAULT_HISTOGRAM_BINS, HistogramBins};
pub use publish::{PublishSettings, Publisher};
pub use store::{Aggregates, AnalyticsSettings, Pruned, Statements};
pub use summary::{SELECT_RECENT_SUMMARIES, from_row as summary_from_row};
