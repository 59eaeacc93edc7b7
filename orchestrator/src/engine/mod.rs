//! Applying a plan to the engine: converge each container to its spec, wait for readiness,
//! and roll back what this run created if it fails.

mod converge;
mod readiness;

pub use converge::{Action, Applied, converge};
pub use readiness::{LOG_LINES_ON_FAILURE, ReadyError, connect_host, probe_once, wait_ready};
