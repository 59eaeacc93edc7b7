//! Networks: the stack's network, made when missing and refused when not the stack's own.

use std::collections::HashMap;

use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::ListNetworksOptionsBuilder;

use super::client::Docker;
use super::error::{DockerError, api, is_not_found};
use super::labels::{LABEL_STACK, stack_filter};

impl Docker {
    /// Creates the stack network unless it exists (true when created); refuses one that the
    /// stack does not own.
    pub async fn ensure_network(&self, name: &str, stack: &str) -> Result<bool, DockerError> {
        match self.inner.inspect_network(name, None).await {
            Ok(net) => {
                let owned = net
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_STACK))
                    .is_some_and(|s| s == stack);
                if owned {
                    Ok(false)
                } else {
                    Err(DockerError::NotOwned {
                        kind: "network",
                        name: name.to_owned(),
                        stack: stack.to_owned(),
                    })
                }
            }
            Err(e) if is_not_found(&e) => {
                let request = NetworkCreateRequest {
                    name: name.to_owned(),
                    driver: Some("bridge".into()),
                    labels: Some(HashMap::from([(LABEL_STACK.to_owned(), stack.to_owned())])),
                    ..Default::default()
                };
                self.inner
                    .create_network(request)
                    .await
                    .map_err(api("create network", name))?;
                Ok(true)
            }
            Err(e) => Err(api("inspect network", name)(e)),
        }
    }

    /// Names of the stack's networks.
    pub async fn list_stack_networks(&self, stack: &str) -> Result<Vec<String>, DockerError> {
        let options = ListNetworksOptionsBuilder::default()
            .filters(&stack_filter(stack, None))
            .build();
        Ok(self
            .inner
            .list_networks(Some(options))
            .await
            .map_err(api("list networks of stack", stack))?
            .into_iter()
            .filter_map(|n| n.name)
            .collect())
    }

    /// Removes a network; gone is fine.
    pub async fn remove_network(&self, name: &str) -> Result<(), DockerError> {
        match self.inner.remove_network(name).await {
            Err(e) if !is_not_found(&e) => Err(api("remove network", name)(e)),
            _ => Ok(()),
        }
    }
}
