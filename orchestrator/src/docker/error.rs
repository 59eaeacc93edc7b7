//! The error of every Docker call: which operation failed on what, or why fleet refused.

use super::labels::LABEL_STACK;

/// A failed Docker operation.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The engine does not answer: an environment fault, not something fleet can work around.
    #[error(
        "the Docker engine does not answer ({0}); start it, or check DOCKER_HOST and the socket permissions"
    )]
    Unreachable(#[source] bollard::errors::Error),
    /// A configured engine does not answer (or its TLS files or SSH login do not work).
    #[error("the Docker engine at {engine} does not answer: {source}")]
    EngineUnreachable {
        /// The engine's URL from the config.
        engine: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An engine URL with a scheme fleet does not know (the config check refuses these).
    #[error("engine url {0:?}: expected unix://, tcp://, http:// or ssh://")]
    BadEngineUrl(String),
    /// An API call failed.
    #[error("{op} {target}: {source}")]
    Api {
        /// The operation, e.g. "create container".
        op: &'static str,
        /// The container, image, network or volume.
        target: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An image build failed; the message is the builder's.
    #[error("build image {image}: {message}")]
    Build {
        /// The tag being built.
        image: String,
        /// What the builder said.
        message: String,
    },
    /// A name is taken by something this stack does not own.
    #[error(
        "{kind} {name} exists but does not carry the label {LABEL_STACK}={stack}; fleet never touches what it does not own: remove or rename it, or choose another stack.name"
    )]
    NotOwned {
        /// container, network or volume.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The stack that wanted the name.
        stack: String,
    },
}

/// Maps bollard's error of `op` on `target` to [`DockerError::Api`].
pub(crate) fn api(
    op: &'static str,
    target: &str,
) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let target = target.to_owned();
    move |source| DockerError::Api { op, target, source }
}

/// Whether the engine answered 404.
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
