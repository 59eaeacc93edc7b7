//! Images: look up, pull, import a root file system, build from a tar context.

use std::collections::HashMap;

use bollard::query_parameters::{BuildImageOptionsBuilder, CreateImageOptionsBuilder};
use bollard::{body_full, body_try_stream};
use futures::{StreamExt, TryStreamExt};

use super::client::Docker;
use super::error::{DockerError, api, is_not_found};

impl Docker {
    /// The id of an image, or `None` if the engine does not have it.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, DockerError> {
        match self.inner.inspect_image(reference).await {
            Ok(image) => Ok(image.id),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(api("inspect image", reference)(e)),
        }
    }

    /// Pulls `reference` (`name:tag`).
    pub async fn pull(&self, reference: &str) -> Result<(), DockerError> {
        let options = CreateImageOptionsBuilder::default()
            .from_image(reference)
            .build();
        self.inner
            .create_image(Some(options), None, None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(api("pull image", reference))
    }

    /// Imports a root file system tarball as image `repo:tag`.
    pub async fn import_rootfs(
        &self,
        tarball: &std::path::Path,
        repo: &str,
        tag: &str,
    ) -> Result<(), DockerError> {
        let target = format!("{repo}:{tag}");
        let file = tokio::fs::File::open(tarball)
            .await
            .map_err(|e| DockerError::Build {
                image: target.clone(),
                message: format!("open {}: {e}", tarball.display()),
            })?;
        let stream = tokio_util::io::ReaderStream::new(file);
        let options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .build();
        self.inner
            .create_image(Some(options), Some(body_try_stream(stream)), None)
            .try_for_each(|_| async { Ok(()) })
            .await
            .map_err(api("import image", &target))
    }

    /// Builds `tag` from a tar build context; `on_line` receives each line of builder output.
    /// Returns the new image's id.
    pub async fn build(
        &self,
        tag: &str,
        context: Vec<u8>,
        build_args: &HashMap<String, String>,
        mut on_line: impl FnMut(&str),
    ) -> Result<String, DockerError> {
        let options = BuildImageOptionsBuilder::default()
            .t(tag)
            .dockerfile("Dockerfile")
            .rm(true)
            .forcerm(true)
            .buildargs(build_args)
            .build();
        let mut stream = self
            .inner
            .build_image(options, None, Some(body_full(context.into())));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| DockerError::Build {
                image: tag.to_owned(),
                message: e.to_string(),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(DockerError::Build {
                    image: tag.to_owned(),
                    message: detail.message.unwrap_or_default(),
                });
            }
            if let Some(line) = info.stream {
                for l in line.lines().filter(|l| !l.trim().is_empty()) {
                    on_line(l);
                }
            }
        }
        self.image_id(tag).await?.ok_or_else(|| DockerError::Build {
            image: tag.to_owned(),
            message: "the builder finished but the image is missing".into(),
        })
    }
}
