//! The live fleet dashboard of `GET /events`: the consumer's output topics read into an
//! in-memory fleet state, sent once per second over Server-Sent Events as what the page shows.
//!
//! - [`messages`]: the output topics' JSON, decoded into the shared wire types.
//! - [`row`]: a vehicle as the page shows it.
//! - [`state`]: the fleet state and its figures.
//! - [`table`]: the page of the vehicle table a stream asks for.
//! - [`positions`]: the vehicles the map draws.
//! - [`feed`]: the shared dashboard, its per-tick frames and each stream's messages.
//! - [`reader`]: the background Kafka reader.
//! - [`ticker`]: the once-per-second update.

pub mod feed;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod messages;
pub mod positions;
pub mod reader;
pub mod row;
pub mod state;
pub mod table;
pub mod ticker;

pub use feed::{Dashboard, DashboardLimits, EVENT_NAME, FleetView, Frame, MapArea, Sent};
pub use reader::OutputTopics;
pub use table::TableQuery;
