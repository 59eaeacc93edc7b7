//! The consumer's database tests (`consumer/src/analytics/db_tests.rs`: replays change nothing,
//! aggregates match `diag`, new rows copied straight into `diag` and a repeated event sent
//! through staging, lateness, concurrent replicas, exhausted ids dead-letter nothing, the old
//! `serial` id migrated, the largest allowed batch split until it fits the statement
//! limit, the recent summaries a replica taking over produces again) need a real PostgreSQL. This test launches a stack with `fleet`, points them at its
//! PostgreSQL through `CONSUMER_TEST_PG` (`fleet_admin`, which owns their databases) and
//! `CONSUMER_TEST_PG_APP` (the application role the sink logs in as), runs them, and fails if
//! any fails or if fewer ran than there are.
//!
//! On the same stack it checks the roles: the application role that the consumer and the
//! user's `psql` URL use is no superuser, cannot run programs (`COPY ... TO PROGRAM`), create,
//! alter or drop anything, or create roles or databases; the superuser takes no password login;
//! `fleet_admin` owns the schema but is no superuser either. And a `postgres.server_settings`
//! override reaches both PostgreSQL servers of the stack.

mod support;

use support::TestStack;

/// A connection to the stack's `av_telemetry` from the host as `user` with the password in the
/// state file `password_file`.
async fn login(
    stack: &TestStack,
    user: &str,
    password_file: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let password = std::fs::read_to_string(stack.state_dir.join(password_file)).unwrap();
    let (client, connection) = tokio_postgres::Config::new()
        .host("127.0.0.1")
        .port(stack.pg_port)
        .user(user)
        .password(password.trim_end())
        .dbname("av_telemetry")
        .connect(tokio_postgres::NoTls)
        .await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The SQLSTATE of `sql` run by `client`, which must fail.
async fn refused(client: &tokio_postgres::Client, sql: &str) -> String {
    let err = client
        .batch_execute(sql)
        .await
        .expect_err(&format!("{sql} must be refused"));
    err.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| err.to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_application_role_has_least_privilege() {
    let stack = TestStack::new(
        "pg-roles",
        &[("FLEET_POSTGRES__SERVER_SETTINGS__WORK_MEM", "12MB")],
    );
    stack.fleet_ok(&["launch-infra"]).await;
    // launch-infra waited for the consumer's /readyz, which needs PostgreSQL as this role.
    let app = login(&stack, "fleet", "postgres-password").await.unwrap();
    // `postgres.server_settings` reaches both servers: this one and the broker's storage.
    let work_mem: String = app.query_one("SHOW work_mem", &[]).await.unwrap().get(0);
    assert_eq!(work_mem, "12MB", "work_mem of the stack's PostgreSQL");
    let storage = support::stream::docker(&[
        "exec",
        &format!("{}-broker-storage", stack.name),
        "sh",
        "-c",
        "PGPASSWORD=$(cat \"$POSTGRES_PASSWORD_FILE\") psql -h 127.0.0.1 -U \"$POSTGRES_USER\" -d \"$POSTGRES_DB\" -Atc 'SHOW work_mem'",
    ])
    .await;
    assert_eq!(storage.trim(), "12MB", "work_mem of the broker's storage");
    let attributes = app
        .query_one(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles
              WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    for i in 0..4 {
        assert!(!attributes.get::<_, bool>(i), "attribute {i} of fleet");
    }
    let insufficient = "42501";
    for sql in [
        "COPY (SELECT 1) TO PROGRAM 'id'",
        "CREATE TABLE intruder (i int)",
        "ALTER TABLE diag ADD COLUMN intruder int",
        "DROP TABLE consumer_offsets",
        "TRUNCATE diag",
        "CREATE ROLE intruder LOGIN SUPERUSER",
        "CREATE DATABASE intruder",
        "ALTER ROLE fleet SUPERUSER",
        "SELECT pg_read_file('/etc/passwd')",
    ] {
        assert_eq!(refused(&app, sql).await, insufficient, "{sql}");
    }
    // What the consumer does is allowed.
    app.batch_execute(
        "BEGIN; DELETE FROM consumer_offsets WHERE consumer_group = 'nobody';
         UPDATE window_watermark SET max_ts = max_ts WHERE false;
         SELECT count(*) FROM diag; ROLLBACK;",
    )
    .await
    .unwrap();
    // The superuser takes no password, so not the application role's either.
    for user in ["postgres", "fleet_admin"] {
        let is_super = match login(&stack, user, "postgres-password").await {
            Err(e) => {
                assert_eq!(e.code().map(|c| c.code()), Some("28P01"), "{user}: {e}");
                continue;
            }
            Ok(c) => c
                .query_one(
                    "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
                    &[],
                )
                .await
                .unwrap()
                .get::<_, bool>(0),
        };
        panic!("{user} logged in with the application role's password (superuser: {is_super})");
    }
    let admin = login(&stack, "fleet_admin", "postgres-admin-password")
        .await
        .unwrap();
    let row = admin
        .query_one(
            "SELECT r.rolsuper, (SELECT tableowner FROM pg_tables WHERE tablename = 'diag')
               FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0), "fleet_admin is no superuser");
    assert_eq!(row.get::<_, String>(1), "fleet_admin");
    assert_eq!(
        refused(&admin, "COPY (SELECT 1) TO PROGRAM 'id'").await,
        insufficient
    );
    // A second launch (the roles are split already) keeps all of it.
    stack.fleet_ok(&["launch-infra"]).await;
    let app = login(&stack, "fleet", "postgres-password").await.unwrap();
    assert_eq!(
        refused(&app, "COPY (SELECT 1) TO PROGRAM 'id'").await,
        insufficient
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_database_tests_pass_against_the_stacks_postgres() {
    let stack = TestStack::new("consumer-db", &[]);
    stack.fleet_ok(&["launch-infra"]).await;
    let password = |file: &str| {
        std::fs::read_to_string(stack.state_dir.join(file))
            .unwrap()
            .trim_end()
            .to_owned()
    };
    let owner = format!(
        "host=127.0.0.1 port={} user=fleet_admin password={}",
        stack.pg_port,
        password("postgres-admin-password")
    );
    let app = format!(
        "host=127.0.0.1 port={} user=fleet password={}",
        stack.pg_port,
        password("postgres-password")
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
        .env("CONSUMER_TEST_PG", owner)
        .env("CONSUMER_TEST_PG_APP", app)
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
    assert!(
        ran >= 11,
        "expected the 11 database tests to run, {ran} ran"
    );
}
