//! How the plan makes one of our containers a member of the stack's registry: the
//! [`RegistrySettings`] of its name and in-network address (the identity file is added by
//! [`super::protect_member`]).

use fleet_common::settings::{RegistrySettings, RegistryWiring};

use super::builder::{Builder, set_env};
use super::zookeeper;
use crate::docker::ContainerSpec;

/// The registry settings of `spec`, a member reached on `port` of its container.
pub(super) fn settings(b: &Builder<'_>, spec: &ContainerSpec, port: u16) -> RegistrySettings {
    RegistrySettings::from_config(
        b.config,
        RegistryWiring {
            zookeeper_connect: zookeeper::connect(b),
            member_id: spec.name.clone(),
            address: format!("http://{}:{port}", spec.name),
        },
    )
}

/// Makes `spec` a member of the registry, reached on `port` of its container.
pub(super) fn join(b: &Builder<'_>, spec: &mut ContainerSpec, port: u16) {
    let env = settings(b, spec, port).to_env();
    set_env(spec, env);
}
