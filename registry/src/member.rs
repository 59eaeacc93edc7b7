//! What a member writes into its ephemeral node, and a member as read back.

use serde::{Deserialize, Serialize};

/// The content of a member's node: where it is reached and what it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Where the member is reached inside the stack network, e.g. `http://fleet-ingest:8080`.
    pub address: String,
    /// What it runs: the VINs of a vehicle container, the topic of ingest or consumer.
    #[serde(default)]
    pub runs: Vec<String>,
}

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

impl MemberInfo {
    /// The node's content.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("member info serializes")
    }

    /// Parses a node's content.
    pub fn from_json(data: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_info_round_trips_and_tolerates_missing_runs() {
        let info = MemberInfo {
            address: "http://s-vehicle-0:8090".into(),
            runs: vec!["YV1AAAAAAAA000001".into()],
        };
        assert_eq!(MemberInfo::from_json(&info.to_json()).unwrap(), info);
        let bare = MemberInfo::from_json(br#"{"address":"http://x:1"}"#).unwrap();
        assert!(bare.runs.is_empty());
        assert!(MemberInfo::from_json(b"not json").is_err());
    }
}
