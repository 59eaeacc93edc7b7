//! `fleet`'s stdout closed by its reader (`fleet status --json | head -1`): fleet ends quietly,
//! as a Unix tool ended by SIGPIPE does (exit 141, nothing on stderr), never with a panic and a
//! backtrace. Runs against a stack that does not exist: nothing is created.

mod support;

use std::process::Stdio;

use support::TestStack;

/// Runs `fleet args...` with its stdout's reader gone before fleet writes: the read end of the
/// pipe is closed as soon as the process starts (fleet first loads its config and asks the
/// Docker engine, so its first write comes later). Returns the exit code and stderr.
async fn with_stdout_closed(stack: &TestStack, args: &[&str]) -> (Option<i32>, String) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleet"))
        .args(["--progress", "plain", "--config"])
        .arg(support::config_file())
        .args(args)
        .envs(&stack.env)
        .env("RUST_BACKTRACE", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("fleet starts");
    drop(child.stdout.take());
    let output = child.wait_with_output().await.expect("fleet ends");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_stdout_ends_fleet_quietly() {
    let stack = TestStack::new("pipe", &[]);
    for args in [&["status", "--json"][..], &["status"][..]] {
        let (code, stderr) = with_stdout_closed(&stack, args).await;
        assert!(!stderr.contains("panicked"), "fleet {args:?}: {stderr}");
        assert!(
            !stderr.contains("stack backtrace"),
            "fleet {args:?}: {stderr}"
        );
        assert_eq!(
            code,
            Some(141),
            "fleet {args:?} ends as a process ended by SIGPIPE: {stderr}"
        );
    }
}
