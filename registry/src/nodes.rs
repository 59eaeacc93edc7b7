//! The node operations that members and `fleet` share: folders, member nodes, the config node.

use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

use crate::auth::{self, Credentials};

use crate::error::RegistryError;
use crate::live::LiveConfig;
use crate::member::{Member, MemberInfo};
use crate::paths;

/// Creates `path` and its parents as persistent nodes where missing, with `acls`.
pub(crate) async fn ensure_dir(
    client: &Client,
    path: &str,
    acls: Acls<'_>,
) -> Result<(), RegistryError> {
    let options = CreateMode::Persistent.with_acls(acls);
    client
        .mkdir(path, &options)
        .await
        .map_err(RegistryError::zk("create folder", path))
}

/// Creates the ephemeral node `path` holding `info`, owned by this session. A node left by
/// another session (a previous run of the same member whose session has not expired yet) is
/// replaced. With `credentials` (the session authenticated as them) the nodes are protected.
pub(crate) async fn register(
    client: &Client,
    path: &str,
    info: &MemberInfo,
    credentials: Option<&Credentials>,
) -> Result<(), RegistryError> {
    let acls = auth::acls(credentials);
    if let Some((parent, _)) = path.rsplit_once('/') {
        ensure_dir(client, parent, acls).await?;
    }
    let options = CreateMode::Ephemeral.with_acls(acls);
    let data = info.to_json();
    loop {
        match client.create(path, &data, &options).await {
            Ok(_) => return Ok(()),
            Err(ZkError::NodeExists) => {}
            Err(e) => return Err(RegistryError::zk("create member node", path)(e)),
        }
        let Some(stat) = client
            .check_stat(path)
            .await
            .map_err(RegistryError::zk("stat member node", path))?
        else {
            continue;
        };
        if stat.ephemeral_owner == client.session_id().0 {
            return client
                .set_data(path, &data, None)
                .await
                .map(drop)
                .map_err(RegistryError::zk("update member node", path));
        }
        match client.delete(path, Some(stat.version)).await {
            Ok(()) | Err(ZkError::NoNode) | Err(ZkError::BadVersion) => {}
            Err(e) => return Err(RegistryError::zk("replace stale member node", path)(e)),
        }
    }
}

/// Reads the members under `role_path` whose names are `children` (nodes gone meanwhile are
/// skipped; unreadable content is reported with an empty address).
pub(crate) async fn read_members(
    client: &Client,
    role_path: &str,
    mut children: Vec<String>,
) -> Result<Vec<Member>, RegistryError> {
    children.sort();
    let mut members = Vec::with_capacity(children.len());
    for id in children {
        let path = format!("{role_path}/{id}");
        let (data, stat) = match client.get_data(&path).await {
            Ok(found) => found,
            Err(ZkError::NoNode) => continue,
            Err(e) => return Err(RegistryError::zk("read member node", &path)(e)),
        };
        let info = MemberInfo::from_json(&data).unwrap_or_else(|e| MemberInfo {
            address: String::new(),
            runs: vec![format!("unreadable member node: {e}")],
        });
        members.push(Member {
            id,
            info,
            session: stat.ephemeral_owner,
        });
    }
    Ok(members)
}

/// The live members of `role` in `stack`.
pub(crate) async fn members(
    client: &Client,
    stack: &str,
    role: &str,
) -> Result<Vec<Member>, RegistryError> {
    let role_path = paths::role_path(stack, role);
    let children = match client.list_children(&role_path).await {
        Ok(children) => children,
        Err(ZkError::NoNode) => return Ok(Vec::new()),
        Err(e) => return Err(RegistryError::zk("list members", &role_path)(e)),
    };
    read_members(client, &role_path, children).await
}

/// Parses the config node's content.
pub(crate) fn parse_config(path: &str, data: &[u8]) -> Result<LiveConfig, RegistryError> {
    LiveConfig::from_json(data).map_err(|source| RegistryError::LiveConfig {
        path: path.to_owned(),
        source,
    })
}
