//! Applying a plan to the engine: converge each container to its spec, wait for readiness, and
//! record what this run changed in a [`Journal`], from which the command that applies the plan
//! (`launch-infra`) rolls back if it fails or is interrupted.

mod converge;
pub mod interrupt;
pub mod journal;
mod preflight;
mod readiness;

pub use converge::{Action, Applied, converge};
pub use interrupt::{Interrupted, Signal};
pub use journal::{Change, Journal, Undone};
pub use preflight::{PreflightError, check_ports};
pub use readiness::{LOG_LINES_ON_FAILURE, ReadyError, connect_host, probe_once, wait_ready};
