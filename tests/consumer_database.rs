//! The consumer's database tests (`consumer/src/analytics/db_tests.rs`: replays change nothing,
//! aggregates match `diag`, lateness, concurrent replicas) need a real PostgreSQL. This test
//! launches a stack with `fleet`, points them at its PostgreSQL through `CONSUMER_TEST_PG`, runs
//! them, and fails if any fails or if none ran.

mod support;

use support::TestStack;

#[tokio::test(flavor = "multi_thread")]
async fn consumer_database_tests_pass_against_the_stacks_postgres() {
    let stack = TestStack::new("consumer-db", &[]);
    stack.fleet_ok(&["launch-infra"]).await;
    let password = std::fs::read_to_string(stack.state_dir.join("postgres-password")).unwrap();
    let connection = format!(
        "host=127.0.0.1 port={} user=fleet password={}",
        stack.pg_port,
        password.trim_end()
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = tokio::process::Command::new(cargo)
        .current_dir(&workspace)
        .args([
            "test",
            "--release",
            "-p",
            "consumer",
            "--bins",
            "--",
            "--ignored",
        ])
        .env("CONSUMER_TEST_PG", connection)
        .output()
        .await
        .expect("run cargo test");
    let stdout = String::from_utf8_lossy(&output.stdout);
    eprintln!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the consumer's database tests failed"
    );
    let ran: u32 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<u32>().ok())
        .sum();
    assert!(ran >= 4, "expected the 4 database tests to run, {ran} ran");
}
