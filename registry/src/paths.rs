//! Where a stack keeps its registry in ZooKeeper:
//!
//! ```text
//! /fleet/<stack>/config                   the live configuration (JSON, persistent)
//! /fleet/<stack>/members/<role>/<member>  one ephemeral node per live member (JSON)
//! ```

use crate::error::RegistryError;

/// The root of every stack's registry.
pub const ROOT: &str = "/fleet";

/// The role of ingest replicas.
pub const ROLE_INGEST: &str = "ingest";
/// The role of consumer replicas.
pub const ROLE_CONSUMER: &str = "consumer";
/// The role of vehicle containers.
pub const ROLE_VEHICLE: &str = "vehicle";
/// Every role, in display order.
pub const ROLES: [&str; 3] = [ROLE_INGEST, ROLE_CONSUMER, ROLE_VEHICLE];

/// Checks that `name` can be one segment of a node path: not empty, no `/`, not `.` or `..`,
/// printable ASCII only.
pub fn check_segment(what: &'static str, name: &str) -> Result<(), RegistryError> {
    let reason = if name.is_empty() {
        Some("is empty")
    } else if name == "." || name == ".." {
        Some("is `.` or `..`")
    } else if !name.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        Some("must be printable ASCII without `/`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RegistryError::BadName {
            what,
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// `/fleet/<stack>`.
pub fn stack_root(stack: &str) -> String {
    format!("{ROOT}/{stack}")
}

/// `/fleet/<stack>/config`: the live configuration.
pub fn config_path(stack: &str) -> String {
    format!("{}/config", stack_root(stack))
}

/// `/fleet/<stack>/members`.
pub fn members_root(stack: &str) -> String {
    format!("{}/members", stack_root(stack))
}

/// `/fleet/<stack>/members/<role>`: the parent of one role's member nodes.
pub fn role_path(stack: &str, role: &str) -> String {
    format!("{}/{role}", members_root(stack))
}

/// `/fleet/<stack>/members/<role>/<member>`: one member's ephemeral node.
pub fn member_path(stack: &str, role: &str, member: &str) -> String {
    format!("{}/{member}", role_path(stack, role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_per_stack_and_role() {
        assert_eq!(config_path("demo"), "/fleet/demo/config");
        assert_eq!(role_path("demo", ROLE_INGEST), "/fleet/demo/members/ingest");
        assert_eq!(
            member_path("demo", ROLE_VEHICLE, "demo-vehicle-0"),
            "/fleet/demo/members/vehicle/demo-vehicle-0"
        );
        assert!(member_path("a", "vehicle", "x").starts_with(&members_root("a")));
        assert_ne!(stack_root("a"), stack_root("b"));
    }

    #[test]
    fn segments_are_checked() {
        for good in ["fleet", "demo-vehicle-12", "e2e-1234", "a.b_c"] {
            check_segment("stack", good).unwrap();
        }
        for (bad, needle) in [
            ("", "empty"),
            ("..", "`.`"),
            ("a/b", "without `/`"),
            ("a b", "without `/`"),
        ] {
            let err = check_segment("member id", bad).unwrap_err().to_string();
            assert!(
                err.contains(needle) && err.contains("member id"),
                "{bad}: {err}"
            );
        }
    }
}
