//! Joining the registry as a service: read [`RegistryArgs`], register the member, follow the
//! live configuration, and apply the live log level; [`follow`] applies any other live setting.

use fleet_common::logging::LogLevel;
use tokio::sync::watch;

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
    let Some(options) = args.options()? else {
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
    let config = registry.config();
    let current = config.borrow().log.level.clone();
    follow(
        config,
        current,
        |live| live.log.level.clone(),
        move |next| match level.set(next) {
            Ok(()) => tracing::info!(filter = %next, "live log level applied"),
            Err(e) => tracing::warn!(error = %e, "live log level refused"),
        },
    );
}

/// Follows one setting of the live configuration: calls `apply` with `pick`'s value whenever it
/// differs from the last one applied, which starts as `current` (the value the member runs
/// with). A value published before this task first looks is applied too. Ends with `config`.
pub fn follow<T>(
    mut config: watch::Receiver<LiveConfig>,
    mut current: T,
    pick: impl Fn(&LiveConfig) -> T + Send + 'static,
    mut apply: impl FnMut(&T) + Send + 'static,
) where
    T: PartialEq + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let next = pick(&config.borrow_and_update());
            if next != current {
                apply(&next);
                current = next;
            }
            if config.changed().await.is_err() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn follow_applies_each_change_of_the_picked_value_once() {
        let mut live = LiveConfig::default();
        let (tx, rx) = watch::channel(live.clone());
        let applied = Arc::new(Mutex::new(Vec::new()));
        let seen = applied.clone();
        follow(
            rx,
            0,
            |live| live.ingest.rate_limit_per_vin,
            move |rate| seen.lock().unwrap().push(*rate),
        );
        // Published before the task looked: applied as well.
        live.ingest.rate_limit_per_vin = 5;
        tx.send(live.clone()).unwrap();
        let settled = || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            applied.lock().unwrap().clone()
        };
        assert_eq!(settled().await, [5]);
        // Another key changed: nothing to apply.
        live.log.level = "debug".into();
        tx.send(live.clone()).unwrap();
        assert_eq!(settled().await, [5]);
        live.ingest.rate_limit_per_vin = 0;
        tx.send(live.clone()).unwrap();
        assert_eq!(settled().await, [5, 0]);
    }
}
