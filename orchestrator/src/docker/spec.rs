//! What a container should look like, as plain data. The spec hashes to the
//! `io.fleet.config-hash` label, so that a re-run can tell a matching container from a changed one.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, PortBinding,
    RestartPolicy, RestartPolicyNameEnum,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::labels::{LABEL_CONFIG_HASH, LABEL_SERVICE, LABEL_STACK};

/// A published port: container port (TCP) to a host address and port (0 = any free port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMap {
    /// Port inside the container.
    pub container: u16,
    /// Host address the port binds to.
    pub host_ip: String,
    /// Host port; 0 lets Docker pick a free one.
    pub host: u16,
}

/// A file placed into the container before it starts (secrets are handed over as files).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretFile {
    /// Absolute path inside the container.
    pub path: String,
    /// Owner uid inside the container.
    pub uid: u64,
    /// File mode.
    pub mode: u32,
    /// Content; only its hash enters the config hash.
    #[serde(skip)]
    pub content: Vec<u8>,
}

/// How a container is locked down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hardening {
    /// Drop every Linux capability and forbid gaining privileges (for images that run as a
    /// non-root user; an upstream image may need its capabilities to drop root itself).
    pub drop_privileges: bool,
    /// Read-only root file system.
    pub read_only: bool,
    /// Writable tmpfs mounts for a read-only container: a path, or `path:options` to add mount
    /// options (e.g. `/run/postgresql:uid=999,gid=999` for a folder the image's user owns).
    pub tmpfs: Vec<String>,
    /// Memory limit in MiB.
    pub memory_mib: i64,
    /// Most processes/threads.
    pub pids: i64,
}

/// Everything `fleet` decides about one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerSpec {
    /// Container name, also its host name on the stack network.
    pub name: String,
    /// Stack label.
    pub stack: String,
    /// Service label.
    pub service: String,
    /// Image reference.
    pub image: String,
    /// Image id the reference resolved to (so a rebuilt image changes the hash).
    pub image_id: String,
    /// Command; empty keeps the image's.
    pub cmd: Vec<String>,
    /// Environment.
    pub env: BTreeMap<String, String>,
    /// Published ports.
    pub ports: Vec<PortMap>,
    /// Named volumes: volume name to mount point.
    pub volumes: BTreeMap<String, String>,
    /// The stack network.
    pub network: String,
    /// Further names of the container on the stack network (besides its own name), e.g. the
    /// service name that every replica answers to.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Files placed before start.
    pub files: Vec<SecretFile>,
    /// Lock-down and limits.
    pub hardening: Hardening,
}

impl ContainerSpec {
    /// A stable hash of everything in the spec (file contents included).
    pub fn config_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(self).expect("a spec serializes"));
        for file in &self.files {
            hasher.update(&file.content);
        }
        hex(&hasher.finalize()[..8])
    }

    /// The Docker create body, with the ownership labels and the config hash.
    pub fn to_create_body(&self) -> ContainerCreateBody {
        let labels = HashMap::from([
            (LABEL_STACK.to_owned(), self.stack.clone()),
            (LABEL_SERVICE.to_owned(), self.service.clone()),
            (LABEL_CONFIG_HASH.to_owned(), self.config_hash()),
        ]);
        let port_key = |p: &PortMap| format!("{}/tcp", p.container);
        let bindings: HashMap<String, Option<Vec<PortBinding>>> = self
            .ports
            .iter()
            .map(|p| {
                let binding = PortBinding {
                    host_ip: Some(p.host_ip.clone()),
                    host_port: Some(if p.host == 0 {
                        String::new()
                    } else {
                        p.host.to_string()
                    }),
                };
                (port_key(p), Some(vec![binding]))
            })
            .collect();
        let binds = self
            .volumes
            .iter()
            .map(|(volume, target)| format!("{volume}:{target}"))
            .collect();
        ContainerCreateBody {
            image: Some(self.image.clone()),
            hostname: Some(self.name.clone()),
            cmd: (!self.cmd.is_empty()).then(|| self.cmd.clone()),
            env: Some(self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(labels),
            exposed_ports: Some(self.ports.iter().map(port_key).collect()),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                binds: Some(binds),
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                    maximum_retry_count: None,
                }),
                init: Some(true),
                cap_drop: self
                    .hardening
                    .drop_privileges
                    .then(|| vec!["ALL".to_owned()]),
                security_opt: self
                    .hardening
                    .drop_privileges
                    .then(|| vec!["no-new-privileges:true".to_owned()]),
                readonly_rootfs: Some(self.hardening.read_only),
                // Writable by the image's non-root user, sticky like /tmp.
                tmpfs: (!self.hardening.tmpfs.is_empty()).then(|| {
                    self.hardening
                        .tmpfs
                        .iter()
                        .map(|entry| {
                            let (path, extra) = entry.split_once(':').unwrap_or((entry, ""));
                            let mut options = "rw,noexec,nosuid,size=64m,mode=1777".to_owned();
                            if !extra.is_empty() {
                                options = format!("{options},{extra}");
                            }
                            (path.to_owned(), options)
                        })
                        .collect()
                }),
                memory: Some(self.hardening.memory_mib * 1024 * 1024),
                pids_limit: Some(self.hardening.pids),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    self.network.clone(),
                    EndpointSettings {
                        aliases: Some(
                            std::iter::once(&self.name)
                                .chain(&self.aliases)
                                .cloned()
                                .collect(),
                        ),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        }
    }
}

/// Lower-case hex of bytes (for short content hashes).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "s-ingest".into(),
            stack: "s".into(),
            service: "ingest".into(),
            image: "fleet/runtime:abc".into(),
            image_id: "sha256:1".into(),
            cmd: vec!["ingest".into()],
            env: BTreeMap::from([("A".into(), "1".into())]),
            ports: vec![PortMap {
                container: 8080,
                host_ip: "127.0.0.1".into(),
                host: 18080,
            }],
            volumes: BTreeMap::new(),
            network: "s-net".into(),
            aliases: vec![],
            files: vec![],
            hardening: Hardening {
                drop_privileges: true,
                read_only: true,
                tmpfs: vec!["/tmp".into()],
                memory_mib: 256,
                pids: 128,
            },
        }
    }

    #[test]
    fn hash_is_stable_and_tracks_every_field() {
        let a = spec();
        assert_eq!(a.config_hash(), spec().config_hash());
        let mut b = spec();
        b.env.insert("B".into(), "2".into());
        assert_ne!(a.config_hash(), b.config_hash());
        let mut c = spec();
        c.image_id = "sha256:2".into();
        assert_ne!(a.config_hash(), c.config_hash());
        let mut d = spec();
        d.files.push(SecretFile {
            path: "/run/x".into(),
            uid: 1,
            mode: 0o400,
            content: b"secret".to_vec(),
        });
        let mut e = d.clone();
        e.files[0].content = b"other".to_vec();
        assert_ne!(d.config_hash(), e.config_hash());
    }

    #[test]
    fn create_body_carries_labels_ports_and_no_secret() {
        let mut s = spec();
        s.files.push(SecretFile {
            path: "/run/secrets/pw".into(),
            uid: 1,
            mode: 0o400,
            content: b"hunter2".to_vec(),
        });
        let body = s.to_create_body();
        let labels = body.labels.clone().unwrap();
        assert_eq!(labels[LABEL_STACK], "s");
        assert_eq!(labels[LABEL_SERVICE], "ingest");
        assert_eq!(labels[LABEL_CONFIG_HASH], s.config_hash());
        let json = serde_json::to_string(&body).unwrap();
        assert!(!json.contains("hunter2"));
        let host = body.host_config.unwrap();
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.memory, Some(256 * 1024 * 1024));
        let binding = &host.port_bindings.unwrap()["8080/tcp"];
        assert_eq!(
            binding.as_ref().unwrap()[0].host_ip.as_deref(),
            Some("127.0.0.1")
        );
    }
}
