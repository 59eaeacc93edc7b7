//! `fleet teardown`: removes every container, network and volume carrying this stack's label,
//! and nothing else; of the stack's state directory only the files fleet created (and the
//! folder, when fleet created it and nothing else is in it). `--fleet-only` removes only the
//! vehicle containers.

use futures::stream::{self, StreamExt, TryStreamExt};

use super::Ctx;
use crate::plan::VEHICLE_SERVICE;

/// What was removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Removed {
    /// Containers.
    pub containers: usize,
    /// Networks.
    pub networks: usize,
    /// Volumes.
    pub volumes: usize,
}

/// Runs the command.
pub async fn run(ctx: &Ctx, fleet_only: bool) -> anyhow::Result<Removed> {
    if ctx.swarm().is_some() {
        let removed = super::swarm_view::teardown(ctx, fleet_only).await?;
        return Ok(Removed {
            containers: removed.services + removed.containers,
            networks: removed.networks,
            volumes: removed.volumes,
        });
    }
    let docker = ctx.docker().await?;
    let stack = ctx.stack();
    let service = fleet_only.then_some(VEHICLE_SERVICE);
    let step = ctx.progress.step(format!("teardown {stack}"));
    let containers = docker.list_stack_containers(stack, service).await?;
    stream::iter(containers.iter().map(|c| docker.remove_container(&c.name)))
        .buffer_unordered(8)
        .try_collect::<Vec<()>>()
        .await?;
    let mut removed = Removed {
        containers: containers.len(),
        ..Removed::default()
    };
    if !fleet_only {
        for network in docker.list_stack_networks(stack).await? {
            docker.remove_network(&network).await?;
            removed.networks += 1;
        }
        for volume in docker.list_stack_volumes(stack).await? {
            docker.remove_volume(&volume).await?;
            removed.volumes += 1;
        }
        let state = &ctx.paths.state;
        let cleared = crate::state::remove(state)?;
        if state.exists() && !cleared.dir_removed {
            ctx.progress.line(format!(
                "kept {}: fleet removed only the {} file(s) it created there",
                state.display(),
                cleared.files.len()
            ));
        }
    }
    step.finish("done");
    println!(
        "removed {} container(s), {} network(s), {} volume(s) of stack {stack}",
        removed.containers, removed.networks, removed.volumes
    );
    Ok(removed)
}
