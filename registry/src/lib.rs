//! `fleet-registry`: the fleet's registry in ZooKeeper (see [`paths`] for the layout).
//!
//! - Members ([`Registry`]): every ingest, consumer and vehicle container registers an
//!   ephemeral node with its address and what it runs; it vanishes when the session expires.
//! - Discovery: [`Registry::members`] follows a role's member list.
//! - Live configuration ([`LiveConfig`]): one typed JSON document that members follow through
//!   [`Registry::config`] and `fleet config set` edits through [`Admin`].
//!
//! - Access ([`Credentials`]): `fleet` and the members authenticate with the stack's digest
//!   identity; the nodes they create can be read by anyone and changed only by it.
//!
//! Built on the `zookeeper-client` crate; ZooKeeper being away never blocks a member: it keeps
//! its last known state and registers again when a session is back.

mod admin;
mod agent;
mod args;
mod auth;
mod error;
mod live;
mod member;
mod nodes;
pub mod paths;
mod service;

pub use admin::Admin;
pub use agent::{Registration, Registry, RegistryOptions, SessionStatus, forward};
pub use args::RegistryArgs;
pub use auth::{Credentials, DIGEST_USER};
pub use error::{LiveConfigError, RegistryError};
pub use live::{KEYS, LiveConfig, LiveConsumer, LiveIngest, LiveLog, LiveVehicles};
pub use member::{Member, MemberInfo};
pub use paths::{ROLE_CONSUMER, ROLE_INGEST, ROLE_VEHICLE};
pub use service::{Membership, follow, join};
