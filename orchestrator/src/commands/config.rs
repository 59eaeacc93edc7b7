//! `fleet config get [--json]` and `fleet config set KEY=VALUE...`: the stack's live
//! configuration in ZooKeeper (`/fleet/<stack>/config`), which every member follows without a
//! restart. `launch-infra` writes it from `config.master.toml`.

use std::time::Duration;

use anyhow::Context as _;
use fleet_registry::{Admin, Credentials, LiveConfig};

use super::Ctx;

/// How long reaching ZooKeeper from the host may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The stack's ZooKeeper identity, `None` before its first launch (reading needs none).
pub fn credentials(ctx: &Ctx) -> anyhow::Result<Option<Credentials>> {
    let password =
        crate::state::existing_secret(&ctx.paths.state, crate::state::ZOOKEEPER_PASSWORD_FILE)?;
    Ok(password.as_deref().map(Credentials::fleet))
}

/// A registry session on the stack's ZooKeeper through its published port, authenticated as
/// the stack's identity (which every write needs) once it has one.
pub async fn admin(ctx: &Ctx) -> anyhow::Result<Admin> {
    let host = ctx.host();
    let address = std::net::SocketAddr::new(host, ctx.config.zookeeper.host_port).to_string();
    Admin::connect(&address, ctx.stack(), credentials(ctx)?, CONNECT_TIMEOUT)
        .await
        .with_context(|| format!("reach the registry of stack {}", ctx.stack()))
}

/// The live settings as `config.master.toml` starts them.
pub fn initial(ctx: &Ctx) -> LiveConfig {
    LiveConfig::from_master(&ctx.config)
}

/// Writes the live configuration from `config.master.toml` (done by `launch-infra`; a launch
/// resets what `fleet config set` changed), and protects the registry: only the stack's
/// identity may change it, anyone may read it.
pub async fn write_initial(ctx: &Ctx) -> anyhow::Result<LiveConfig> {
    let live = initial(ctx);
    let admin = admin(ctx).await?;
    admin
        .write_config(&live)
        .await
        .context("write the live configuration")?;
    admin
        .protect()
        .await
        .context("protect the registry (ZooKeeper ACLs)")?;
    Ok(live)
}

/// `fleet config get`: every key with its live value.
pub async fn get(ctx: &Ctx, json: bool) -> anyhow::Result<()> {
    let stored = admin(ctx)
        .await?
        .config()
        .await
        .context("read the live configuration")?;
    let (live, source) = match stored {
        Some((live, version)) => (live, format!("live, version {version}")),
        None => (
            initial(ctx),
            "not written yet: the values of the config file".to_owned(),
        ),
    };
    if json {
        println!("{}", String::from_utf8_lossy(&live.to_json()));
        return Ok(());
    }
    println!(
        "# {} ({source})",
        fleet_registry::paths::config_path(ctx.stack())
    );
    for (key, value) in live.entries() {
        println!("{key} = {value}");
    }
    Ok(())
}

/// `fleet config set KEY=VALUE...`: checks every assignment first (errors name the key), then
/// applies them together.
pub async fn set(ctx: &Ctx, assignments: &[String]) -> anyhow::Result<()> {
    initial(ctx).apply(assignments)?;
    let live = admin(ctx)
        .await?
        .update_config(&initial(ctx), |live| {
            live.apply(assignments)
                .map_err(|source| fleet_registry::RegistryError::LiveConfig {
                    path: fleet_registry::paths::config_path(ctx.stack()),
                    source,
                })
        })
        .await
        .context("update the live configuration")?;
    for assignment in assignments {
        let key = assignment.split_once('=').map_or("", |(k, _)| k.trim());
        println!("{key} = {}", live.get(key).unwrap_or_default());
    }
    Ok(())
}
