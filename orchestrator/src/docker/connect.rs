//! Reaching a Docker engine as `[target.engine]` (or a swarm node's `engine`) describes it:
//! the local socket or `DOCKER_HOST`, a unix socket, TCP+TLS, plain TCP or SSH, through
//! bollard's connectors. The API version is negotiated with the engine, so an engine that
//! speaks an older API (Debian's docker.io: 1.41) is talked to in its own version.

use std::path::Path;

use bollard::API_DEFAULT_VERSION;
use fleet_common::config::EngineConfig;

use super::error::DockerError;

/// How a configured engine is named in messages: its URL, or the local default.
pub fn describe(engine: &EngineConfig) -> String {
    if engine.url.is_empty() {
        "the local engine (DOCKER_HOST or /var/run/docker.sock)".to_owned()
    } else {
        engine.url.clone()
    }
}

/// Connects to `engine` (relative TLS and key paths are taken from `base`, the config file's
/// folder), negotiates the API version and pings it.
pub async fn connect_engine(
    engine: &EngineConfig,
    base: &Path,
) -> Result<bollard::Docker, DockerError> {
    let unreachable = |source| DockerError::EngineUnreachable {
        engine: describe(engine),
        source,
    };
    let timeout = engine.timeout.as_secs().max(1);
    let path = |p: &str| base.join(p);
    let url = engine.url.as_str();
    let docker = if url.is_empty() {
        bollard::Docker::connect_with_defaults().map(|d| d.with_timeout(engine.timeout))
    } else if let Some(socket) = url.strip_prefix("unix://") {
        bollard::Docker::connect_with_unix(socket, timeout, API_DEFAULT_VERSION)
    } else if url.starts_with("tcp://") {
        bollard::Docker::connect_with_ssl(
            url,
            &path(&engine.tls_key),
            &path(&engine.tls_cert),
            &path(&engine.tls_ca),
            timeout,
            API_DEFAULT_VERSION,
        )
    } else if url.starts_with("http://") {
        bollard::Docker::connect_with_http(url, timeout, API_DEFAULT_VERSION)
    } else if url.starts_with("ssh://") {
        let key = (!engine.ssh_key.is_empty()).then(|| path(&engine.ssh_key).display().to_string());
        bollard::Docker::connect_with_ssh(url, timeout, API_DEFAULT_VERSION, key)
    } else {
        return Err(DockerError::BadEngineUrl(url.to_owned()));
    }
    .map_err(unreachable)?;
    let docker = docker.negotiate_version().await.map_err(unreachable)?;
    docker.ping().await.map_err(unreachable)?;
    Ok(docker)
}
