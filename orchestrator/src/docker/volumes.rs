//! Named volumes: made when missing and refused when not the stack's own.

use std::collections::HashMap;

use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::ListVolumesOptionsBuilder;

use super::client::Docker;
use super::error::{DockerError, api, is_not_found};
use super::labels::{LABEL_SERVICE, LABEL_STACK, stack_filter};

impl Docker {
    /// Creates a named volume unless it exists (true when created); refuses one that the
    /// stack does not own.
    pub async fn ensure_volume(
        &self,
        name: &str,
        stack: &str,
        service: &str,
    ) -> Result<bool, DockerError> {
        match self.inner.inspect_volume(name).await {
            Ok(volume) => {
                if volume.labels.get(LABEL_STACK).is_some_and(|s| s == stack) {
                    Ok(false)
                } else {
                    Err(DockerError::NotOwned {
                        kind: "volume",
                        name: name.to_owned(),
                        stack: stack.to_owned(),
                    })
                }
            }
            Err(e) if is_not_found(&e) => {
                let request = VolumeCreateRequest {
                    name: Some(name.to_owned()),
                    labels: Some(HashMap::from([
                        (LABEL_STACK.to_owned(), stack.to_owned()),
                        (LABEL_SERVICE.to_owned(), service.to_owned()),
                    ])),
                    ..Default::default()
                };
                self.inner
                    .create_volume(request)
                    .await
                    .map_err(api("create volume", name))?;
                Ok(true)
            }
            Err(e) => Err(api("inspect volume", name)(e)),
        }
    }

    /// Names of the stack's volumes.
    pub async fn list_stack_volumes(&self, stack: &str) -> Result<Vec<String>, DockerError> {
        let options = ListVolumesOptionsBuilder::default()
            .filters(&stack_filter(stack, None))
            .build();
        Ok(self
            .inner
            .list_volumes(Some(options))
            .await
            .map_err(api("list volumes of stack", stack))?
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect())
    }

    /// Removes a volume; gone is fine.
    pub async fn remove_volume(&self, name: &str) -> Result<(), DockerError> {
        match self
            .inner
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Err(e) if !is_not_found(&e) => Err(api("remove volume", name)(e)),
            _ => Ok(()),
        }
    }
}
