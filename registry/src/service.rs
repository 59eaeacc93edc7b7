//! Joining the registry as a service: read [`RegistryArgs`], register the member, follow the
//! live configuration, and apply the live log level.

use fleet_common::logging::LogLevel;

use crate::agent::{Registration, Registry};
use crate::args::RegistryArgs;
use crate::error::RegistryError;
use crate::live::LiveConfig;
use crate::member::MemberInfo;

/// What a service registers as.
#[derive(Debug, Clone)]
pub struct Membership<'a> {
    /// Its role (`ingest`, `consumer`, `vehicle`).
    pub role: &'a str,
    /// Its HTTP port, for the default address `http://<member id>:<port>`.
    pub port: u16,
    /// What it runs (VINs of a vehicle container, a topic).
    pub runs: Vec<String>,
    /// The live settings it starts with (its own command line's values).
    pub initial: LiveConfig,
    /// Roles whose member lists it follows (discovery).
    pub watch_roles: &'a [&'a str],
}

/// Joins the registry configured by `args`: `None` (and a log line) when no ZooKeeper is
/// configured. With `log_level`, later changes of the live `log.level` are applied.
pub fn join(
    args: &RegistryArgs,
    membership: Membership<'_>,
    log_level: Option<LogLevel>,
) -> Result<Option<Registry>, RegistryError> {
    let Some(options) = args.options() else {
        tracing::info!("no ZOOKEEPER_CONNECT: running without the registry");
        return Ok(None);
    };
    let id = args.member_id(membership.role);
    let address = args.address(|| format!("http://{id}:{}", membership.port));
    tracing::info!(zookeeper = %options.connect, stack = %options.stack, role = membership.role,
        member = %id, %address, "joining the registry");
    let registry = Registry::spawn(
        options,
        Some(Registration {
            role: membership.role.to_owned(),
            id,
            info: MemberInfo {
                address,
                runs: membership.runs,
            },
        }),
        membership.watch_roles,
        membership.initial,
    )?;
    if let Some(level) = log_level {
        follow_log_level(&registry, level);
    }
    Ok(Some(registry))
}

/// Applies each change of the live `log.level` (the starting value is left to the command
/// line and `RUST_LOG`).
fn follow_log_level(registry: &Registry, level: LogLevel) {
    let mut config = registry.config();
    tokio::spawn(async move {
        let mut current = config.borrow_and_update().log.level.clone();
        while config.changed().await.is_ok() {
            let next = config.borrow_and_update().log.level.clone();
            if next == current {
                continue;
            }
            match level.set(&next) {
                Ok(()) => tracing::info!(filter = %next, "live log level applied"),
                Err(e) => tracing::warn!(error = %e, "live log level refused"),
            }
            current = next;
        }
    });
}
