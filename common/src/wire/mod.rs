//! Every message format between two of fleet's programs, declared once here and used by the
//! writer and the reader alike, so that the two cannot drift apart. Each module's tests pin
//! the JSON field names with a literal example and read back what the writer's type wrote.
//!
//! - [`topics`]: the consumer's output topics (summaries, windows, histograms), read by
//!   ingest's dashboard.
//! - [`ingest_answer`]: ingest's answer to `POST /events`, read by the vehicles, `fleet verify`
//!   and the tests.
//! - [`stats`]: a vehicle container's `GET /stats`, read by `fleet`; its sums are [`totals`].
//! - [`registry`]: a member's node in the ZooKeeper registry, read by the other members and
//!   `fleet`.

pub mod ingest_answer;
pub mod registry;
pub mod stats;
pub mod topics;
pub mod totals;

pub use ingest_answer::{ErrorBody, EventsAnswer, IngestReport, RecordResult};
pub use registry::MemberInfo;
pub use stats::{Phase, StatsQuery, StatsReport, VehicleReport};
pub use topics::{
    Bin, Granularity, Histogram, LastPosition, Sensor, VehicleSummary, WindowMessage, WindowMetric,
};
pub use totals::Totals;
