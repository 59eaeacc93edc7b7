//! The images a stack runs: the base, the recipes in the repo built on top of it, and the
//! host-built binaries they carry. An image whose recipe hash already has a tag is reused.

mod base;
mod cache_lock;
mod context;
mod freshness;
mod host_build;
pub mod prerequisites;
mod set;

pub use base::ensure_base;
pub use context::BuildContext;
pub use host_build::{
    BROKER_BUILD_ESTIMATE, BrokerBuild, HostBuildError, build_workspace_binaries, install_broker,
};
pub use set::{ImageError, ImageSet, Resolved, ensure_images, runtime_image};
