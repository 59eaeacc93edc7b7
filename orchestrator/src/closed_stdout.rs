//! A closed stdout ends `fleet` quietly, as it ends a Unix tool: `fleet status --json | head -1`
//! exits with 141 (128 + SIGPIPE) and prints nothing, instead of a panic and a backtrace from
//! the standard library's `println!` when the reader went away (Rust ignores SIGPIPE, so the
//! write fails with `EPIPE` and `println!` panics).

/// The exit code of a process ended by SIGPIPE.
pub const EXIT_CLOSED_STDOUT: i32 = 141;

/// Whether a panic message is `println!`'s on a stdout whose reader went away.
pub fn is_closed_stdout(message: &str) -> bool {
    message.starts_with("failed printing to stdout")
        && (message.contains("Broken pipe") || message.contains("os error 32"))
}

/// Installs a panic hook that ends the process quietly with [`EXIT_CLOSED_STDOUT`] when
/// stdout's reader went away, and leaves every other panic to the default hook.
pub fn exit_quietly_when_closed() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if is_closed_stdout(message) {
            std::process::exit(EXIT_CLOSED_STDOUT);
        }
        default(info);
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_closed_stdout_is_quiet() {
        assert!(is_closed_stdout(
            "failed printing to stdout: Broken pipe (os error 32)"
        ));
        assert!(!is_closed_stdout(
            "failed printing to stdout: No space left on device (os error 28)"
        ));
        assert!(!is_closed_stdout("index out of bounds"));
    }
}
