//! Applying a plan to the engine: converge each container to its spec, wait for readiness,
//! and roll back what this run created if it fails.

mod converge;
mod preflight;
mod readiness;

pub use converge::{Action, Applied, converge};
pub use preflight::{PreflightError, check_ports};
pub use readiness::{LOG_LINES_ON_FAILURE, ReadyError, connect_host, probe_once, wait_ready};
