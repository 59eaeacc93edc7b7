//! `fleet logs SERVICE [-f]`: a service's container output.

use anyhow::Context as _;

use super::Ctx;

/// Runs the command; `service` is a service name (`ingest`) or a container suffix (`vehicle-0`).
pub async fn run(ctx: &Ctx, service: &str, follow: bool, tail: usize) -> anyhow::Result<()> {
    let docker = ctx.docker().await?;
    let name = crate::plan::container_name(ctx.stack(), service);
    docker
        .find_container(&name, ctx.stack())
        .await?
        .with_context(|| {
            format!(
                "no container {name} in stack {}; see `fleet status`",
                ctx.stack()
            )
        })?;
    if follow {
        docker
            .logs_follow(&name, tail, |chunk| print!("{chunk}"))
            .await?;
    } else {
        print!("{}", docker.logs_tail(&name, tail).await?);
    }
    Ok(())
}
