//! How a service is pointed at the registry: [`RegistrySettings`] (`fleet_common::settings`),
//! the environment variables set by `fleet`'s plan, read here on their own (or as flags).

use std::ops::Deref;

use clap::Parser;
use fleet_common::settings::RegistrySettings;

use crate::agent::RegistryOptions;
use crate::auth::Credentials;
use crate::error::RegistryError;

/// The registry settings of a service, read on their own. Without `ZOOKEEPER_CONNECT` the
/// service runs without a registry, on its own settings.
#[derive(Debug, Clone, Parser)]
#[command(name = "registry")]
pub struct RegistryArgs {
    /// The settings the orchestrator gives every member.
    #[command(flatten)]
    pub settings: RegistrySettings,
}

impl Deref for RegistryArgs {
    type Target = RegistrySettings;

    fn deref(&self) -> &RegistrySettings {
        &self.settings
    }
}

impl RegistryArgs {
    /// Reads the settings from the environment only.
    pub fn from_env() -> Result<Self, clap::Error> {
        Self::try_parse_from(["registry"])
    }

    /// The options to start a registry with, `None` when no ZooKeeper is configured; an
    /// error when the credentials file cannot be read or parsed.
    pub fn options(&self) -> Result<Option<RegistryOptions>, RegistryError> {
        let Some(connect) = self.zookeeper_connect.as_deref().map(str::trim) else {
            return Ok(None);
        };
        if connect.is_empty() {
            return Ok(None);
        }
        let credentials = self
            .zookeeper_auth_file
            .as_deref()
            .map(Credentials::from_file)
            .transpose()?;
        Ok(Some(RegistryOptions {
            connect: connect.to_owned(),
            stack: self.registry_stack.clone(),
            session_timeout: self.zookeeper_session_timeout,
            credentials,
        }))
    }

    /// The member id: the configured one, else `HOSTNAME`, else `default`.
    pub fn member_id(&self, default: &str) -> String {
        self.registry_member_id
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| default.to_owned())
    }

    /// The advertised address, or `fallback`.
    pub fn address(&self, fallback: impl FnOnce() -> String) -> String {
        self.registry_address.clone().unwrap_or_else(fallback)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn without_a_connect_string_there_is_no_registry() {
        let args = RegistryArgs::try_parse_from(["registry"]).unwrap();
        assert!(args.options().unwrap().is_none());
        assert_eq!(args.zookeeper_session_timeout, Duration::from_secs(6));
        let args = RegistryArgs::try_parse_from([
            "registry",
            "--zookeeper-connect",
            "s-zookeeper:2181",
            "--registry-stack",
            "s",
            "--zookeeper-session-timeout",
            "4s",
            "--registry-member-id",
            "s-vehicle-1",
        ])
        .unwrap();
        let options = args.options().unwrap().unwrap();
        assert!(options.credentials.is_none());
        assert_eq!(options.connect, "s-zookeeper:2181");
        assert_eq!(options.stack, "s");
        assert_eq!(options.session_timeout, Duration::from_secs(4));
        assert_eq!(args.member_id("x"), "s-vehicle-1");
    }

    #[test]
    fn credentials_come_from_the_auth_file() {
        let path = std::env::temp_dir().join(format!("registry-auth-{}", std::process::id()));
        std::fs::write(&path, "fleet:pw\n").unwrap();
        let file = path.display().to_string();
        let args = RegistryArgs::try_parse_from([
            "registry",
            "--zookeeper-connect",
            "s-zookeeper:2181",
            "--zookeeper-auth-file",
            &file,
        ])
        .unwrap();
        let options = args.options().unwrap().unwrap();
        assert_eq!(options.credentials, Some(Credentials::fleet("pw")));
        std::fs::write(&path, "no colon").unwrap();
        let err = args.options().unwrap_err().to_string();
        assert!(err.contains(&file), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = args.options().unwrap_err().to_string();
        assert!(err.contains("read ZooKeeper credentials file"), "{err}");
    }
}
