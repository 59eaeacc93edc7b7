//! One module per subcommand, plus the context they share.

pub mod build;
pub mod config;
mod context;
pub mod launch_fleet;
pub mod launch_infra;
pub mod logs;
pub mod members;
pub mod on_swarm;
pub mod status;
pub mod swarm_view;
pub mod teardown;
pub mod up;
pub mod verify;

pub use context::Ctx;
