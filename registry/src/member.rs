//! A member as read back from ZooKeeper; what it writes into its ephemeral node is
//! [`MemberInfo`], the wire format shared with every reader.

use serde::{Deserialize, Serialize};

pub use fleet_common::wire::MemberInfo;

/// A live member as read from ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The member id (the node's name; the container name in a stack).
    pub id: String,
    /// What the member registered.
    pub info: MemberInfo,
    /// The ZooKeeper session that owns the ephemeral node.
    pub session: i64,
}
