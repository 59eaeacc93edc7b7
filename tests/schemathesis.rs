//! Schemathesis (property-based testing from the OpenAPI document) against ingest's
//! `/openapi.json` on a real stack of its own: every operation, every default check, a bounded
//! number of examples per operation; the run must find no failure.
//!
//! Schemathesis is found as `$FLEET_SCHEMATHESIS` or `~/.cache/fleet/pyenv/bin/schemathesis`
//! (`python3 -m venv ~/.cache/fleet/pyenv && ~/.cache/fleet/pyenv/bin/pip install
//! schemathesis==4.32.5`); without it the test fails saying so. `FLEET_SCHEMATHESIS_EXAMPLES`
//! sets the examples per operation (default 10; the README's long run uses more). The hooks in
//! `tests/schemathesis/hooks.py` give the strategies of the rules JSON Schema cannot state (the
//! VIN check digit, event times up to now); `tests/schemathesis/schemathesis.toml` counts 413
//! (ingest's refusal of a body over its record cap or byte limit) as rejecting negative data.

mod support;

use std::path::PathBuf;

use support::TestStack;

/// The pinned version, also in `.ci/run`.
const VERSION: &str = "4.32.5";

/// The schemathesis executable, or a panic that says how to install it.
fn schemathesis() -> PathBuf {
    let path = match std::env::var_os("FLEET_SCHEMATHESIS") {
        Some(path) => PathBuf::from(path),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache/fleet/pyenv/bin/schemathesis")
        }
    };
    assert!(
        path.is_file(),
        "schemathesis is not installed at {} (set FLEET_SCHEMATHESIS to use another): \
         python3 -m venv ~/.cache/fleet/pyenv && \
         ~/.cache/fleet/pyenv/bin/pip install schemathesis=={VERSION}",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn schemathesis_finds_no_failure_in_the_api() {
    let schemathesis = schemathesis();
    let examples = std::env::var("FLEET_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".into());
    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/schemathesis");
    let stack = TestStack::new("schemathesis", &[]);
    stack.fleet_ok(&["launch-infra"]).await;
    let openapi = format!("http://127.0.0.1:{}/openapi.json", stack.ingest_port);
    let output = tokio::process::Command::new(&schemathesis)
        .arg("--config-file")
        .arg(hooks.join("schemathesis.toml"))
        .args(["run", &openapi, "--max-examples", &examples])
        .args(["--no-color", "--wait-for-schema", "30"])
        // Its caches (.schemathesis, .hypothesis) go to the temporary folder, not the tree.
        .current_dir(std::env::temp_dir())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &hooks)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {}: {e}", schemathesis.display()));
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("$ schemathesis run {openapi} --max-examples {examples}\n{report}");
    assert!(
        output.status.success(),
        "schemathesis found failures (exit {}); the report is above",
        output.status
    );
    assert!(report.contains("No issues found"), "{report}");
}
