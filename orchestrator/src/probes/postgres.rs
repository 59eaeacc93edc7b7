//! PostgreSQL readiness: a real query as the application role; then the roles are split once
//! (see `fleet_common::roles`) and the schema is applied as its owner, `fleet_admin`.

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

/// Who logs in where, for [`set_up`].
pub struct Logins<'a> {
    /// The server.
    pub addr: SocketAddr,
    /// The database.
    pub database: &'a str,
    /// The application role.
    pub app_user: &'a str,
    /// Its password.
    pub app_password: &'a str,
    /// The password of `fleet_admin`.
    pub admin_password: &'a str,
}

/// Sets the database up: when the application role (`app`, logged in) is still the cluster's
/// superuser (a cluster made by `initdb -U <app role>`: a stack from before the roles were
/// split, or a fresh one), splits it off once; then applies the idempotent schema and the
/// application role's grants as `fleet_admin`. Returns what it did.
pub async fn set_up(
    app: &tokio_postgres::Client,
    logins: &Logins<'_>,
) -> Result<String, ProbeError> {
    use fleet_common::roles;
    let admin_role = roles::ADMIN_ROLE;
    let is_superuser = roles::is_superuser(app).await.map_err(|e| {
        ProbeError::new(format!(
            "look up the attributes of {}: {e}",
            logins.app_user
        ))
    })?;
    let mut done = String::new();
    if is_superuser {
        let mut superuser = connect(
            logins.addr,
            logins.app_user,
            logins.app_password,
            logins.database,
        )
        .await?;
        roles::create_admin(&mut superuser, logins.admin_password)
            .await
            .map_err(|e| ProbeError::new(format!("create the role {admin_role}: {e}")))?;
        drop(superuser);
        let mut admin = connect(
            logins.addr,
            admin_role,
            logins.admin_password,
            logins.database,
        )
        .await?;
        roles::split_superuser(
            &mut admin,
            logins.app_user,
            logins.app_password,
            logins.database,
        )
        .await
        .map_err(|e| {
            ProbeError::new(format!(
                "split the application role {} from the superuser: {e}",
                logins.app_user
            ))
        })?;
        done.push_str("roles split, ");
    }
    let mut admin = connect(
        logins.addr,
        admin_role,
        logins.admin_password,
        logins.database,
    )
    .await
    .map_err(|e| {
        ProbeError::new(format!(
            "{} (the password of {admin_role} is in the state file `postgres-admin-password`)",
            e.0
        ))
    })?;
    fleet_common::schema::apply(&mut admin, logins.app_user)
        .await
        .map_err(|e| ProbeError::new(format!("apply schema as {admin_role}: {e}")))?;
    done.push_str("schema applied");
    Ok(done)
}
