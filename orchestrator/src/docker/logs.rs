//! A container's output: its last lines, or followed as it comes.

use bollard::query_parameters::LogsOptionsBuilder;
use futures::{StreamExt, TryStreamExt};

use super::client::Docker;
use super::error::{DockerError, api};

impl Docker {
    /// The last `lines` lines of a container's output (stdout and stderr).
    pub async fn logs_tail(&self, name: &str, lines: usize) -> Result<String, DockerError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let chunks: Vec<_> = self
            .inner
            .logs(name, Some(options))
            .try_collect()
            .await
            .map_err(api("read logs of container", name))?;
        Ok(chunks.iter().map(|c| c.to_string()).collect())
    }

    /// Follows a container's output, calling `on_chunk` with each piece of text.
    pub async fn logs_follow(
        &self,
        name: &str,
        tail: usize,
        mut on_chunk: impl FnMut(&str),
    ) -> Result<(), DockerError> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .tail(&tail.to_string())
            .build();
        let mut stream = self.inner.logs(name, Some(options));
        while let Some(chunk) = stream.next().await {
            on_chunk(
                &chunk
                    .map_err(api("follow logs of container", name))?
                    .to_string(),
            );
        }
        Ok(())
    }
}
