//! `fleet logs SERVICE [-f]`: a service's container output.

use anyhow::bail;

use super::Ctx;

/// Runs the command; `service` is a service name (`ingest`) or a container suffix (`vehicle-0`,
/// `ingest-1` for a replica).
pub async fn run(ctx: &Ctx, service: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
    if ctx.swarm().is_some() {
        return super::swarm_view::logs(ctx, service, follow, tail).await;
    }
    let docker = ctx.docker().await?;
    let name = crate::plan::container_name(ctx.stack(), service);
    if docker.find_container(&name, ctx.stack()).await?.is_none() {
        // A replicated service: name its containers.
        let replicas: Vec<String> = docker
            .list_stack_containers(ctx.stack(), Some(service))
            .await?
            .into_iter()
            .filter_map(|c| {
                c.name
                    .strip_prefix(&format!("{}-", ctx.stack()))
                    .map(str::to_owned)
            })
            .collect();
        if replicas.is_empty() {
            bail!(
                "no container {name} in stack {}; see `fleet status`",
                ctx.stack()
            );
        }
        bail!(
            "{service} runs as {} containers; pick one: {}",
            replicas.len(),
            replicas.join(", ")
        );
    }
    if follow {
        docker
            .logs_follow(&name, tail, |chunk| print!("{chunk}"))
            .await?;
    } else {
        print!("{}", docker.logs_tail(&name, tail).await?);
    }
    Ok(())
}
