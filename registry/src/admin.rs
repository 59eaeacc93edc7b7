//! `fleet`'s side of the registry: a short session from the host that reads the members and
//! reads or writes the live configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use zookeeper_client::{Client, CreateMode, Error as ZkError};

use crate::auth::{self, Credentials};
use crate::error::RegistryError;
use crate::live::LiveConfig;
use crate::member::Member;
use crate::{nodes, paths};

/// Session timeout of the orchestrator's short sessions.
const ADMIN_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A session for reading members and editing the live configuration of one stack.
#[derive(Debug)]
pub struct Admin {
    client: Client,
    stack: String,
    credentials: Option<Credentials>,
}

impl Admin {
    /// Connects to ZooKeeper at `connect` (e.g. `127.0.0.1:2181`), trying again until
    /// `timeout` passes (ZooKeeper may be starting). With `credentials` the session
    /// authenticates as the stack's digest identity, which every write needs.
    pub async fn connect(
        connect: &str,
        stack: &str,
        credentials: Option<Credentials>,
        timeout: Duration,
    ) -> Result<Self, RegistryError> {
        paths::check_segment("stack", stack)?;
        let failed = |reason: String| RegistryError::Connect {
            connect: connect.to_owned(),
            reason,
        };
        let attempts = async {
            loop {
                let attempt = auth::connector(ADMIN_SESSION_TIMEOUT, credentials.as_ref())
                    .with_fail_eagerly()
                    .connect(connect)
                    .await;
                match attempt {
                    Ok(client) => return client,
                    Err(e) => {
                        tracing::debug!(zookeeper = connect, error = %e, "not reachable yet");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                }
            }
        };
        let client = tokio::time::timeout(timeout, attempts)
            .await
            .map_err(|_| failed(format!("no session within {timeout:?}")))?;
        Ok(Self {
            client,
            stack: stack.to_owned(),
            credentials,
        })
    }

    /// Gives the registry's nodes the protected ACL (the stack's identity: all; anyone: read):
    /// `/fleet`, and every node under `/fleet/<stack>` that is not ephemeral, creating the
    /// stack's folders where missing. The root stays as ZooKeeper makes it (an upstream Kafka in
    /// ZooKeeper mode keeps its nodes there; nothing of fleet's is there). Done by every `launch-infra`, so that nodes
    /// created before the registry was protected (open to anyone) are protected too. Needs
    /// credentials; a node somebody else locked is an error naming it.
    pub async fn protect(&self) -> Result<(), RegistryError> {
        let Some(credentials) = &self.credentials else {
            return Err(RegistryError::Credentials {
                origin: "the admin session".to_owned(),
                reason: "are missing: protecting the registry needs them",
            });
        };
        let acls = auth::acls(Some(credentials));
        nodes::ensure_dir(&self.client, &paths::members_root(&self.stack), acls).await?;
        let root = paths::stack_root(&self.stack);
        let below = format!("{root}/");
        let mut pending = vec![paths::ROOT.to_owned(), root.clone()];
        while let Some(path) = pending.pop() {
            let stat = match self.client.check_stat(&path).await {
                Ok(Some(stat)) => stat,
                Ok(None) => continue,
                Err(e) => return Err(RegistryError::zk("stat node", &path)(e)),
            };
            if stat.ephemeral_owner != 0 {
                continue;
            }
            match self.client.set_acl(&path, auth::protected(), None).await {
                Ok(_) | Err(ZkError::NoNode) => {}
                Err(e) => return Err(RegistryError::zk("protect node", &path)(e)),
            }
            // `/fleet` only itself; the stack's folder with everything below.
            if path == root || path.starts_with(&below) {
                let children = match self.client.list_children(&path).await {
                    Ok(children) => children,
                    Err(ZkError::NoNode) => Vec::new(),
                    Err(e) => return Err(RegistryError::zk("list children", &path)(e)),
                };
                pending.extend(children.into_iter().map(|c| format!("{path}/{c}")));
            }
        }
        Ok(())
    }

    /// The stack this session works on.
    pub fn stack(&self) -> &str {
        &self.stack
    }

    /// The live members of `role`, sorted by id.
    pub async fn members(&self, role: &str) -> Result<Vec<Member>, RegistryError> {
        paths::check_segment("role", role)?;
        nodes::members(&self.client, &self.stack, role).await
    }

    /// The live members of every role that has a folder, by role.
    pub async fn all_members(&self) -> Result<BTreeMap<String, Vec<Member>>, RegistryError> {
        let root = paths::members_root(&self.stack);
        let roles = match self.client.list_children(&root).await {
            Ok(roles) => roles,
            Err(ZkError::NoNode) => Vec::new(),
            Err(e) => return Err(RegistryError::zk("list roles", &root)(e)),
        };
        let roles: BTreeSet<String> = paths::ROLES
            .iter()
            .map(|r| (*r).to_owned())
            .chain(roles)
            .collect();
        let mut all = BTreeMap::new();
        for role in roles {
            let members = nodes::members(&self.client, &self.stack, &role).await?;
            all.insert(role, members);
        }
        Ok(all)
    }

    /// The stored live configuration with its node version, `None` before the first write.
    pub async fn config(&self) -> Result<Option<(LiveConfig, i32)>, RegistryError> {
        let path = paths::config_path(&self.stack);
        match self.client.get_data(&path).await {
            Ok((data, stat)) => Ok(Some((nodes::parse_config(&path, &data)?, stat.version))),
            Err(ZkError::NoNode) => Ok(None),
            Err(e) => Err(RegistryError::zk("read config node", &path)(e)),
        }
    }

    /// Writes `live` as the stack's configuration, replacing whatever is there.
    pub async fn write_config(&self, live: &LiveConfig) -> Result<(), RegistryError> {
        self.store_config(live, None).await
    }

    /// Applies `edit` to the stored configuration (or to `fallback` before the first write)
    /// and stores the result, retrying when someone else wrote meanwhile. Returns the result.
    pub async fn update_config(
        &self,
        fallback: &LiveConfig,
        edit: impl Fn(&mut LiveConfig) -> Result<(), RegistryError>,
    ) -> Result<LiveConfig, RegistryError> {
        loop {
            let (mut live, version) = match self.config().await? {
                Some((live, version)) => (live, Some(version)),
                None => (fallback.clone(), None),
            };
            edit(&mut live)?;
            match self.store_config(&live, Some(version)).await {
                Ok(()) => return Ok(live),
                Err(RegistryError::Zookeeper {
                    source: ZkError::BadVersion | ZkError::NodeExists | ZkError::NoNode,
                    ..
                }) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Stores `live`; `expected`: `None` overwrites, `Some(None)` only creates, `Some(Some(v))`
    /// only replaces version `v`.
    async fn store_config(
        &self,
        live: &LiveConfig,
        expected: Option<Option<i32>>,
    ) -> Result<(), RegistryError> {
        live.check().map_err(|source| RegistryError::LiveConfig {
            path: paths::config_path(&self.stack),
            source,
        })?;
        let path = paths::config_path(&self.stack);
        let data = live.to_json();
        let acls = auth::acls(self.credentials.as_ref());
        let create = || async {
            nodes::ensure_dir(&self.client, &paths::stack_root(&self.stack), acls).await?;
            let options = CreateMode::Persistent.with_acls(acls);
            self.client
                .create(&path, &data, &options)
                .await
                .map(drop)
                .map_err(RegistryError::zk("create config node", &path))
        };
        match expected {
            Some(None) => create().await,
            Some(Some(version)) => self
                .client
                .set_data(&path, &data, Some(version))
                .await
                .map(drop)
                .map_err(RegistryError::zk("update config node", &path)),
            None => match self.client.set_data(&path, &data, None).await {
                Ok(_) => Ok(()),
                Err(ZkError::NoNode) => create().await,
                Err(e) => Err(RegistryError::zk("update config node", &path)(e)),
            },
        }
    }
}
