//! The registry's credentials in the plan: every container that joins the registry (it has
//! `ZOOKEEPER_CONNECT`) gets the stack's ZooKeeper digest identity as a secret file under
//! `/run/secrets` (on a volume of its own when it has none, as a read-only root needs) and
//! `ZOOKEEPER_AUTH_FILE` pointing at it; never the identity itself in its environment.

use fleet_common::settings::env::{ZOOKEEPER_AUTH_FILE, ZOOKEEPER_CONNECT};

use super::InfraPlan;
use super::builder::secret_file;
use super::secrets::{RUNTIME_UID, SECRETS_DIR};
use crate::docker::ContainerSpec;

/// Where a member finds the stack's ZooKeeper identity (`user:password`).
pub const ZOOKEEPER_AUTH_PATH: &str = "/run/secrets/zookeeper-auth";

/// Hands `credentials` (`user:password`) to `spec` if it joins the registry; the name of the
/// volume it added for them, if it had none.
pub fn protect_member(spec: &mut ContainerSpec, credentials: &[u8]) -> Option<String> {
    if !spec.env.contains_key(ZOOKEEPER_CONNECT) {
        return None;
    }
    spec.env
        .insert(ZOOKEEPER_AUTH_FILE.into(), ZOOKEEPER_AUTH_PATH.into());
    spec.files.retain(|f| f.path != ZOOKEEPER_AUTH_PATH);
    spec.files
        .push(secret_file(ZOOKEEPER_AUTH_PATH, RUNTIME_UID, credentials));
    if spec.volumes.values().any(|target| target == SECRETS_DIR) {
        return None;
    }
    let volume = format!("{}-secrets", spec.name);
    spec.volumes.insert(volume.clone(), SECRETS_DIR.into());
    Some(volume)
}

/// Hands `credentials` to every member of `plan`, declaring the volumes that adds.
pub fn protect_registry(plan: &mut InfraPlan, credentials: &[u8]) {
    for s in &mut plan.services {
        if let Some(volume) = protect_member(&mut s.spec, credentials) {
            plan.volumes.push((volume, s.spec.service.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::tests::{config, images, secrets};
    use crate::plan::{fleet_plan, infra_plan};

    #[test]
    fn every_member_gets_the_identity_as_a_file_never_in_env() {
        let mut plan = infra_plan(&config(), &images(), &secrets("pw"));
        protect_registry(&mut plan, b"fleet:zk-s3cret");
        let mut members = 0;
        for s in &plan.services {
            let spec = &s.spec;
            let joins = spec.env.contains_key("ZOOKEEPER_CONNECT");
            assert_eq!(
                spec.env.get("ZOOKEEPER_AUTH_FILE").map(String::as_str),
                joins.then_some(ZOOKEEPER_AUTH_PATH),
                "{}",
                spec.name
            );
            assert!(
                spec.env.values().all(|v| !v.contains("zk-s3cret")),
                "{}",
                spec.name
            );
            if !joins {
                continue;
            }
            members += 1;
            let file = spec
                .files
                .iter()
                .find(|f| f.path == ZOOKEEPER_AUTH_PATH)
                .expect("the identity file");
            assert_eq!(file.content, b"fleet:zk-s3cret");
            assert_eq!(file.mode, 0o400);
            // On a volume, declared in the plan, so that a read-only root can take it.
            let (volume, _) = spec
                .volumes
                .iter()
                .find(|(_, target)| *target == SECRETS_DIR)
                .expect("a secrets volume");
            assert!(plan.volumes.iter().any(|(v, _)| v == volume), "{volume}");
        }
        assert!(members >= 2, "ingest and consumer join the registry");
        let mut vehicles = fleet_plan(&config(), &images().runtime, 2, 1, false, None);
        for spec in &mut vehicles {
            let volume = protect_member(spec, b"fleet:zk-s3cret").expect("a volume of its own");
            assert_eq!(volume, format!("{}-secrets", spec.name));
            assert_eq!(spec.env["ZOOKEEPER_AUTH_FILE"], ZOOKEEPER_AUTH_PATH);
        }
    }
}
