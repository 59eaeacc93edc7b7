//! The labels that mark a resource as owned by a stack. Teardown and rollback select by these
//! labels only, never by name.

use std::collections::HashMap;

/// The stack a resource belongs to.
pub const LABEL_STACK: &str = "io.fleet.stack";
/// The service (zookeeper, broker, ..., vehicle) a container runs.
pub const LABEL_SERVICE: &str = "io.fleet.service";
/// Hash of the container's full specification; a change means the container is recreated.
pub const LABEL_CONFIG_HASH: &str = "io.fleet.config-hash";

/// Docker list filter selecting everything of `stack`, optionally only one service.
pub fn stack_filter(stack: &str, service: Option<&str>) -> HashMap<String, Vec<String>> {
    let mut labels = vec![format!("{LABEL_STACK}={stack}")];
    if let Some(service) = service {
        labels.push(format!("{LABEL_SERVICE}={service}"));
    }
    HashMap::from([("label".to_owned(), labels)])
}
