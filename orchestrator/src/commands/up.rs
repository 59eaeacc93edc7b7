//! `fleet up`: `launch-infra` then `launch-fleet`, the one-command start.

use super::{Ctx, launch_fleet, launch_infra};

/// Runs the command.
pub async fn run(
    ctx: &Ctx,
    num_vehicles: u32,
    per_container: Option<u32>,
    keep_on_failure: bool,
) -> anyhow::Result<()> {
    launch_infra::run(ctx, keep_on_failure).await?;
    if num_vehicles > 0 {
        launch_fleet::run(ctx, num_vehicles, per_container).await?;
    }
    Ok(())
}
