//! `fleet build`: builds (or reuses) every image of the stack without starting anything.

use anyhow::Context as _;

use super::Ctx;

/// Runs the command and prints each image with its id.
pub async fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let docker = ctx.docker().await?;
    let images = crate::images::ensure_images(&docker, &ctx.config, &ctx.paths, &ctx.progress)
        .await
        .context("prepare images")?;
    for (name, image) in [
        ("zookeeper", &images.zookeeper),
        ("broker", &images.broker),
        ("postgres", &images.postgres),
        ("runtime", &images.runtime),
    ] {
        println!("{name:<10} {} {}", image.reference, image.id);
    }
    Ok(())
}
