//! The swarm backend's errors: each names the operation and its target (node, service,
//! secret, network, image).

use crate::docker::DockerError;

/// A failed swarm operation.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// A node's engine could not be reached.
    #[error("swarm node {node}: {source}")]
    Engine {
        /// fleet's name of the node.
        node: String,
        /// Why.
        #[source]
        source: DockerError,
    },
    /// An API call failed: the engine backend's error, naming the operation (e.g. "create
    /// service") and its node, service, secret, network or image.
    #[error(transparent)]
    Api(#[from] DockerError),
    /// A node's engine is in a swarm other than the one of the first node.
    #[error(
        "swarm node {node} is in another swarm ({cluster}); make it leave (`docker swarm leave` on it) or remove it from target.swarm.nodes"
    )]
    OtherSwarm {
        /// fleet's name of the node.
        node: String,
        /// The other swarm's id.
        cluster: String,
    },
    /// The swarm is not in the state a command needs.
    #[error("swarm node {node}: {message}")]
    State {
        /// fleet's name of the node.
        node: String,
        /// What is wrong.
        message: String,
    },
    /// An image could not be copied to a node.
    #[error("load image {image} into swarm node {node}: {message}")]
    Load {
        /// The image reference.
        image: String,
        /// fleet's name of the node.
        node: String,
        /// The engine's complaint.
        message: String,
    },
    /// A name is taken by something this stack does not own.
    #[error(
        "{kind} {name} exists on the swarm but does not carry the label {label}={stack}; fleet never touches what it does not own"
    )]
    NotOwned {
        /// service, network or secret.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The ownership label.
        label: &'static str,
        /// The stack that wanted the name.
        stack: String,
    },
}

/// Maps a bollard error of `op` on `target` (the engine backend's mapping).
pub(crate) fn api(
    op: &'static str,
    target: impl Into<String>,
) -> impl FnOnce(bollard::errors::Error) -> SwarmError {
    let target = target.into();
    move |source| crate::docker::api(op, &target)(source).into()
}

/// Whether bollard's error is the engine's 404: the same test as the engine backend's.
pub(crate) use crate::docker::is_not_found;
