//! The first run's host check, through the real `fleet` binary: when the base image must be
//! bootstrapped and `debootstrap` is not on PATH, `fleet build` knows it before any long step.
//! With `images.host_packages = "never"` (as for a user who is not root and has no
//! password-less sudo) it fails within seconds, exit code 2, with the exact command to run;
//! nothing is built. (On a Debian host as root with `host_packages = "auto"`, the default, the
//! same check installs the package with apt instead: `results/first_run.md`.)
//!
//! The base image is asked for under a tag prefix of this test's own, so no existing base can
//! satisfy it; nothing is created in the engine.

mod support;

use std::time::{Duration, Instant};

#[tokio::test]
async fn a_missing_debootstrap_is_named_with_its_install_command_in_seconds() {
    // A PATH on which no program exists.
    let empty = std::env::temp_dir().join(format!("fleet-empty-path-{}", std::process::id()));
    std::fs::create_dir_all(&empty).expect("an empty folder");
    let prefix = format!("fleet-first-run-{}", std::process::id());
    let env = std::collections::BTreeMap::from([
        ("PATH".to_owned(), empty.display().to_string()),
        (
            "FLEET_IMAGES__BASE_SOURCE".to_owned(),
            "debootstrap".to_owned(),
        ),
        ("FLEET_IMAGES__TAG_PREFIX".to_owned(), prefix.clone()),
        ("FLEET_IMAGES__HOST_PACKAGES".to_owned(), "never".to_owned()),
        ("FLEET_STACK__NAME".to_owned(), prefix.clone()),
    ]);
    let started = Instant::now();
    let output = support::fleet(&env, &["build"]).await;
    let took = started.elapsed();
    let _ = std::fs::remove_dir_all(&empty);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(2),
        "an infrastructure error: {stderr}"
    );
    assert!(
        took < Duration::from_secs(20),
        "known at the start, not after minutes of building: {took:?}"
    );
    assert!(
        stderr.contains("`debootstrap` (for the base image"),
        "names the missing program and what needs it: {stderr}"
    );
    assert!(
        stderr.contains("Run: sudo apt-get install -y") && stderr.contains("debootstrap"),
        "gives the command to run: {stderr}"
    );
    assert!(
        !stderr.contains("bootstrap base image"),
        "no build step started: {stderr}"
    );
    // Nothing was built under the test's tag prefix.
    let images = tokio::process::Command::new("docker")
        .args(["images", "-q", &format!("{prefix}/*")])
        .output()
        .await
        .expect("docker images");
    assert!(
        String::from_utf8_lossy(&images.stdout).trim().is_empty(),
        "no image was built"
    );
}
