//! The one `tracing` setup shared by every binary: logs go to stderr, `-v` raises the level,
//! `RUST_LOG` overrides both, and [`LogLevel`] changes the filter while the process runs.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Registry, fmt, reload};

/// Changes the log filter of the running process (e.g. from the live configuration).
#[derive(Debug, Clone)]
pub struct LogLevel {
    handle: reload::Handle<EnvFilter, Registry>,
}

impl LogLevel {
    /// Replaces the filter with `directives` (`info`, `debug`, `info,ingest=debug`, ...).
    pub fn set(&self, directives: &str) -> Result<(), String> {
        let filter = EnvFilter::builder()
            .parse(directives)
            .map_err(|e| format!("log filter `{directives}`: {e}"))?;
        self.handle
            .reload(filter)
            .map_err(|e| format!("log filter `{directives}`: {e}"))
    }
}

/// Installs the global subscriber. `verbosity` counts `-v` flags: 0 = info, 1 = debug, 2+ = trace.
/// `RUST_LOG`, when set, wins over `verbosity`.
pub fn init(verbosity: u8) {
    init_reloadable(verbosity);
}

/// Like [`init`], and returns the handle that changes the filter later.
pub fn init_reloadable(verbosity: u8) -> LogLevel {
    let default = match verbosity {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    // The ZooKeeper client reports every connection at info; the registry logs what matters.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{default},zookeeper_client=warn")));
    let (filter, handle) = reload::Layer::new(filter);
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                // Colour only on a terminal: container logs stay plain text.
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .try_init();
    LogLevel { handle }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_can_be_changed_and_bad_filters_are_refused() {
        let level = init_reloadable(0);
        level.set("debug").unwrap();
        level.set("info,fleet_common=trace").unwrap();
        let err = level.set("info,=[").unwrap_err();
        assert!(err.contains("info,=["), "{err}");
    }
}
