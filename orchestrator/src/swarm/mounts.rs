//! What a task mounts, from a container's spec: its named volumes (labelled with the stack, so
//! teardown finds them on every node), tmpfs scratch space, and its secret files as Swarm
//! secrets under `/run/secrets` (content-addressed, never environment variables).

use std::collections::HashMap;

use bollard::models::{
    Mount, MountTmpfsOptions, MountType, MountVolumeOptions, TaskSpecContainerSpecFile,
    TaskSpecContainerSpecSecrets,
};
use sha2::{Digest, Sha256};

use crate::docker::{ContainerSpec, LABEL_SERVICE, LABEL_STACK, hex_digest};

/// Where secret files go in a task (Swarm mounts each secret there).
pub const SECRETS_DIR: &str = "/run/secrets";
/// Size of each tmpfs scratch mount.
const TMPFS_BYTES: i64 = 64 * 1024 * 1024;

/// A Swarm secret: content-addressed name, so a changed content is a new secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretData {
    /// `<stack>-<file>-<hash>`.
    pub name: String,
    /// The content (never logged).
    pub content: Vec<u8>,
}

impl std::fmt::Debug for SecretData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretData({})", self.name)
    }
}

/// The content-addressed name of the secret holding `content` for the file at `path`.
pub fn secret_name(stack: &str, path: &str, content: &[u8]) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let hash = hex_digest(&Sha256::digest(content)[..6]);
    format!("{stack}-{file}-{hash}")
}

/// The container's data volumes (not the secrets folder: Swarm secrets replace it) and tmpfs.
pub fn mounts(c: &ContainerSpec) -> Vec<Mount> {
    let volume_labels = HashMap::from([
        (LABEL_STACK.to_owned(), c.stack.clone()),
        (LABEL_SERVICE.to_owned(), c.service.clone()),
    ]);
    let volumes = c
        .volumes
        .iter()
        .filter(|(_, target)| !target.starts_with(SECRETS_DIR))
        .map(|(volume, target)| Mount {
            target: Some(target.clone()),
            source: Some(volume.clone()),
            typ: Some(MountType::VOLUME),
            volume_options: Some(MountVolumeOptions {
                labels: Some(volume_labels.clone()),
                ..Default::default()
            }),
            ..Default::default()
        });
    let tmpfs = c.hardening.tmpfs.iter().map(|entry| {
        match entry.split_once(':') {
            // Swarm's tmpfs takes no owner (API 1.41) and Docker 20.10 drops its mode, so a
            // folder the image's user must own (PostgreSQL's socket folder) is a named volume
            // instead: a new volume takes the image folder's owner and mode.
            Some((path, _owner)) => Mount {
                target: Some(path.to_owned()),
                source: Some(format!("{}{}", c.name, path.replace('/', "-"))),
                typ: Some(MountType::VOLUME),
                volume_options: Some(MountVolumeOptions {
                    labels: Some(volume_labels.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
            None => Mount {
                target: Some(entry.clone()),
                typ: Some(MountType::TMPFS),
                tmpfs_options: Some(MountTmpfsOptions {
                    size_bytes: Some(TMPFS_BYTES),
                    mode: Some(0o1777),
                    ..Default::default()
                }),
                ..Default::default()
            },
        }
    });
    volumes.chain(tmpfs).collect()
}

/// The container's files as secrets, and the references that mount them with their owner and
/// mode (the secret id is filled in when the service is applied).
pub fn secrets(c: &ContainerSpec) -> (Vec<SecretData>, Vec<TaskSpecContainerSpecSecrets>) {
    let data: Vec<SecretData> = c
        .files
        .iter()
        .map(|f| SecretData {
            name: secret_name(&c.stack, &f.path, &f.content),
            content: f.content.clone(),
        })
        .collect();
    let refs = c
        .files
        .iter()
        .zip(&data)
        .map(|(f, s)| TaskSpecContainerSpecSecrets {
            file: Some(TaskSpecContainerSpecFile {
                name: Some(
                    f.path
                        .strip_prefix(&format!("{SECRETS_DIR}/"))
                        .unwrap_or(&f.path)
                        .to_owned(),
                ),
                uid: Some(f.uid.to_string()),
                gid: Some(f.uid.to_string()),
                mode: Some(f.mode),
            }),
            secret_name: Some(s.name.clone()),
            secret_id: None,
        })
        .collect();
    (data, refs)
}
