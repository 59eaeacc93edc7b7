//! PostgreSQL readiness: a real query as the application role; then the schema is applied.

use std::net::SocketAddr;
use std::time::Duration;

use super::ProbeError;

/// Connects to `database` at `addr` as `user`.
pub async fn connect(
    addr: SocketAddr,
    user: &str,
    password: &str,
    database: &str,
) -> Result<tokio_postgres::Client, ProbeError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user(user)
        .password(password)
        .dbname(database)
        .connect_timeout(Duration::from_secs(3));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| ProbeError::new(format!("connect to {database} at {addr} as {user}: {e}")))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("postgres connection closed: {e}");
        }
    });
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| ProbeError::new(format!("SELECT 1 on {database}: {e}")))?;
    Ok(client)
}

/// Applies the idempotent schema of `av_telemetry`.
pub async fn apply_schema(client: &mut tokio_postgres::Client) -> Result<(), ProbeError> {
    fleet_common::schema::apply(client)
        .await
        .map_err(|e| ProbeError::new(format!("apply schema: {e}")))
}
