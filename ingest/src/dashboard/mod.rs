//! The live fleet dashboard of `GET /events`: the consumer's output topics read into an
//! in-memory fleet state, broadcast once per second over Server-Sent Events.
//!
//! - [`messages`]: the output topics' JSON.
//! - [`state`]: the fleet state and its figures.
//! - [`feed`]: the shared dashboard, its deltas, snapshots and resumable stream.
//! - [`reader`]: the background Kafka reader.
//! - [`ticker`]: the once-per-second update.

pub mod feed;
pub mod messages;
pub mod reader;
pub mod state;
pub mod ticker;

pub use feed::{Dashboard, DashboardLimits, FleetView, MapArea, Sent};
pub use reader::OutputTopics;
