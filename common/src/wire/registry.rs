//! A member's node in the ZooKeeper registry, as every ingest, consumer and vehicle container
//! writes it when it registers and as the other members and `fleet` read it back: where the
//! member is reached and what it runs, one JSON object.

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
    use serde_json::json;

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

    #[test]
    fn member_info_keeps_its_field_names() {
        let info = MemberInfo {
            address: "http://fleet-ingest-1:8080".into(),
            runs: vec!["telemetry".into()],
        };
        let expected = json!({"address": "http://fleet-ingest-1:8080", "runs": ["telemetry"]});
        assert_eq!(serde_json::to_value(&info).unwrap(), expected);
        assert_eq!(
            MemberInfo::from_json(expected.to_string().as_bytes()).unwrap(),
            info
        );
    }
}
