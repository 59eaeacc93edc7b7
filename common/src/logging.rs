//! The one `tracing` setup shared by every binary: logs go to stderr, `-v` raises the level,
//! `RUST_LOG` overrides both.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `verbosity` counts `-v` flags: 0 = info, 1 = debug, 2+ = trace.
/// `RUST_LOG`, when set, wins over `verbosity`.
pub fn init(verbosity: u8) {
    let default = match verbosity {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A second call (tests) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal: container logs stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
