//! The HTTP handlers, one module per concern.

pub mod guard;
pub mod health;
pub mod ingest;
pub mod metrics;
pub mod openapi;
pub mod stream;
pub mod watch;
