//! Images reach the nodes without a registry: fleet builds them on its own engine
//! (`[target.engine]`) as on a single engine, then streams `docker save` of each image from
//! there into `docker load` on every node that lacks that image id, through the API. A node
//! that already holds the id gets nothing, so a second launch copies nothing and a rebuilt
//! image is copied once. (A registry service on the swarm would need TLS or every engine's
//! `insecure-registries`, and a push and pull of the same bytes; save/load needs neither.)

use bollard::query_parameters::ImportImageOptionsBuilder;
use futures::{StreamExt, TryStreamExt};

use super::cluster::NodeHandle;
use super::error::{SwarmError, api, is_not_found};
use crate::images::Resolved;

/// What happened to one image on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// fleet's name of the node.
    pub node: String,
    /// The image reference.
    pub image: String,
    /// Whether it was loaded (false: the node had the id already).
    pub loaded: bool,
}

/// Whether `node` holds `image` with the same id.
pub async fn has_image(node: &NodeHandle, image: &Resolved) -> Result<bool, SwarmError> {
    match node.docker.inspect_image(&image.reference).await {
        Ok(found) => Ok(found.id.as_deref() == Some(image.id.as_str())),
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(api("inspect image on node", &node.config.name)(e)),
    }
}

/// Copies each of `images` from `source` to `node` unless the node holds its id.
pub async fn ensure_on_node(
    source: &bollard::Docker,
    node: &NodeHandle,
    images: &[&Resolved],
) -> Result<Vec<Copied>, SwarmError> {
    let mut copied = Vec::new();
    for image in images {
        let present = has_image(node, image).await?;
        if !present {
            load(source, node, image).await?;
            if !has_image(node, image).await? {
                return Err(SwarmError::Load {
                    image: image.reference.clone(),
                    node: node.config.name.clone(),
                    message: format!("after the load the node has no image {}", image.id),
                });
            }
        }
        copied.push(Copied {
            node: node.config.name.clone(),
            image: image.reference.clone(),
            loaded: !present,
        });
    }
    Ok(copied)
}

/// Streams `source`'s save of `image` into the node's load.
async fn load(
    source: &bollard::Docker,
    node: &NodeHandle,
    image: &Resolved,
) -> Result<(), SwarmError> {
    let tar = source.export_image(&image.reference);
    let mut answers = node.docker.import_image_stream(
        ImportImageOptionsBuilder::default().quiet(true).build(),
        tar,
        None,
    );
    while let Some(answer) = answers.next().await {
        let answer = answer.map_err(|e| SwarmError::Load {
            image: image.reference.clone(),
            node: node.config.name.clone(),
            message: e.to_string(),
        })?;
        if let Some(detail) = answer.error_detail {
            return Err(SwarmError::Load {
                image: image.reference.clone(),
                node: node.config.name.clone(),
                message: detail.message.unwrap_or_default(),
            });
        }
    }
    Ok(())
}

/// Copies `images` to every one of `nodes` that lacks them, the nodes in parallel.
pub async fn distribute(
    source: &bollard::Docker,
    nodes: &[(&NodeHandle, Vec<&Resolved>)],
) -> Result<Vec<Copied>, SwarmError> {
    let per_node = futures::stream::iter(
        nodes
            .iter()
            .map(|(node, images)| ensure_on_node(source, node, images)),
    )
    .buffer_unordered(4)
    .try_collect::<Vec<_>>()
    .await?;
    Ok(per_node.into_iter().flatten().collect())
}
