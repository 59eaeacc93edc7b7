//! The swarm backend: the same plan applied to a Docker Swarm of several engines instead of one
//! engine. `cluster` forms or joins the swarm and reaches every node's engine, `images` copies
//! the images to nodes that lack them (no registry), `translate` turns the plan's containers
//! into Swarm services, `apply` creates and updates them and waits for readiness, `tasks`
//! reads where each task runs and what it publishes, `teardown` removes what the stack owns on
//! every node, `rollback` puts back what a failed launch changed.

pub mod apply;
pub mod cluster;
mod error;
pub mod images;
pub mod mounts;
pub mod rollback;
pub mod tasks;
pub mod teardown;
pub mod translate;

pub use cluster::{Cluster, NodeHandle};
pub use error::SwarmError;
pub use tasks::TaskView;
