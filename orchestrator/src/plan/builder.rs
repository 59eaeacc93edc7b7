//! [`Builder`]: what every service module of the plan builds its containers with: names of a
//! stack's resources, a hardened container spec, published ports, replicas, upstream images
//! and secret files.

use std::collections::BTreeMap;

use fleet_common::config::{Config, ImageOverride};

use super::model::Limits;
use super::secrets::SECRET_MODE;
use super::{Service, ServicePlan};
use crate::docker::{ContainerSpec, Hardening, PortMap, SecretFile};
use crate::images::Resolved;

/// Naming of a stack's resources.
pub fn container_name(stack: &str, service: &str) -> String {
    format!("{stack}-{service}")
}

/// The stack network's name.
pub fn network_name(stack: &str) -> String {
    format!("{stack}-net")
}

/// The data volume of `service`.
pub(super) fn volume_name(stack: &str, service: Service) -> String {
    format!("{stack}-{}-data", service.name())
}

/// The volume that holds `service`'s secret files.
pub(super) fn secrets_volume(stack: &str, service: Service) -> String {
    format!("{stack}-{}-secrets", service.name())
}

/// A secret file owned by `uid`, readable by it only.
pub(super) fn secret_file(path: &str, uid: u64, content: &[u8]) -> SecretFile {
    SecretFile {
        path: path.into(),
        uid,
        mode: SECRET_MODE,
        content: content.to_vec(),
    }
}

/// Adds a settings struct's `to_env()` to `spec`'s environment.
pub(super) fn set_env(spec: &mut ContainerSpec, env: Vec<(&'static str, String)>) {
    spec.env.extend(
        env.into_iter()
            .map(|(name, value)| (name.to_owned(), value)),
    );
}

/// Builds the containers of one stack.
pub(super) struct Builder<'a> {
    /// The stack's configuration.
    pub(super) config: &'a Config,
    /// The stack network.
    pub(super) network: String,
}

impl<'a> Builder<'a> {
    /// A builder for `config`'s stack.
    pub(super) fn new(config: &'a Config) -> Self {
        Self {
            config,
            network: network_name(&config.stack.name),
        }
    }

    /// The container of infrastructure `service` running `image`.
    pub(super) fn service_spec(&self, service: Service, image: &Resolved) -> ContainerSpec {
        self.spec(service.name(), service.limits(), image)
    }

    /// A container labelled `service` with `limits` running `image`, dropping privileges.
    pub(super) fn spec(&self, service: &str, limits: Limits, image: &Resolved) -> ContainerSpec {
        ContainerSpec {
            name: container_name(&self.config.stack.name, service),
            stack: self.config.stack.name.clone(),
            service: service.to_owned(),
            image: image.reference.clone(),
            image_id: image.id.clone(),
            cmd: Vec::new(),
            env: BTreeMap::new(),
            ports: Vec::new(),
            volumes: BTreeMap::new(),
            network: self.network.clone(),
            aliases: Vec::new(),
            files: Vec::new(),
            hardening: Hardening {
                drop_privileges: true,
                read_only: false,
                tmpfs: Vec::new(),
                memory_mib: limits.memory_mib,
                pids: limits.pids,
            },
        }
    }

    /// Our own services: read-only root, scratch space in tmpfs.
    pub(super) fn read_only(spec: &mut ContainerSpec) {
        spec.hardening.read_only = true;
        spec.hardening.tmpfs = vec!["/tmp".into()];
    }

    /// `plan` as `replicas` containers. One replica keeps the plain name; several are named
    /// `<service>-<i>`, answer on the network also to the plain name, publish their ports on
    /// free host ports, and each gets its own secrets volume. `per_replica` sets what differs.
    pub(super) fn replicate(
        &self,
        plan: ServicePlan,
        replicas: u32,
        per_replica: impl Fn(&mut ContainerSpec, u32),
    ) -> Vec<ServicePlan> {
        if replicas <= 1 {
            let mut single = plan;
            per_replica(&mut single.spec, 0);
            return vec![single];
        }
        let stack = &self.config.stack.name;
        let service = plan.service;
        (0..replicas)
            .map(|i| {
                let mut replica = plan.clone();
                let instance = format!("{}-{i}", service.name());
                replica.spec.name = container_name(stack, &instance);
                replica.spec.aliases.push(self.host(service));
                for port in &mut replica.spec.ports {
                    port.host = 0;
                }
                if let Some(target) = replica.spec.volumes.remove(&secrets_volume(stack, service)) {
                    replica
                        .spec
                        .volumes
                        .insert(format!("{stack}-{instance}-secrets"), target);
                }
                per_replica(&mut replica.spec, i);
                replica
            })
            .collect()
    }

    /// Publishes `container`'s port on `host` (0: a free one) of the stack's bind address.
    pub(super) fn publish(&self, spec: &mut ContainerSpec, container: u16, host: u16) {
        spec.ports.push(PortMap {
            container,
            host_ip: self.config.stack.bind_address.clone(),
            host,
        });
    }

    /// The in-network host name of `service` (its plain container name).
    pub(super) fn host(&self, service: Service) -> String {
        container_name(&self.config.stack.name, service.name())
    }
}

/// Runs `upstream`'s image settings on `spec`, when one is configured.
pub(super) fn apply_upstream(spec: &mut ContainerSpec, upstream: Option<&ImageOverride>) {
    if let Some(u) = upstream.filter(|u| !u.image.is_empty()) {
        // Upstream images often start as root and drop privileges themselves, and write where
        // their own recipe expects.
        spec.hardening.drop_privileges = false;
        spec.hardening.read_only = false;
        spec.hardening.tmpfs.clear();
        if !u.command.is_empty() {
            spec.cmd = u.command.clone();
        }
        spec.env.extend(u.env.clone());
    }
}
