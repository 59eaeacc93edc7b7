//! The PostgreSQL roles of a stack, least privilege first:
//!
//! - [`ADMIN_ROLE`] (`fleet_admin`) owns the database and the schema; only fleet's schema
//!   step (and the consumer's database tests, which create their own databases) logs in as
//!   it, with a password of its own (a 0600 state file). No superuser, no CREATEROLE.
//! - the application role (`postgres.user`, e.g. `fleet`): LOGIN and nothing else (no
//!   superuser, no CREATEDB, no CREATEROLE); it reads and writes rows (see
//!   [`crate::schema::grants_sql`]). The consumer and the user's `psql` URL use it.
//! - the superuser is `postgres` without a password: no network login reaches it.
//!
//! The server image creates its cluster with the application role as the bootstrap
//! superuser (`initdb -U`), as every stack before this split did and as upstream images do.
//! [`split_superuser`] turns such a cluster into the model above, once, in one transaction:
//! an existing stack's volume is migrated by its next `fleet launch-infra`.

use tokio_postgres::{Client, GenericClient};

/// The role that owns the database and its schema.
pub const ADMIN_ROLE: &str = "fleet_admin";
/// The name the bootstrap superuser takes when the application role is split from it.
pub const SUPERUSER_ROLE: &str = "postgres";

/// `name` as a quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// True when the session's role is a superuser (a cluster not yet split).
pub async fn is_superuser(client: &Client) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    row.try_get(0)
}

/// Sets the password of `role` from a bind parameter (so the server never sees it in a
/// statement's text, which it may log).
async fn set_password(
    client: &impl GenericClient,
    role: &str,
    password: &str,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT set_config('fleet.password', $1, true)",
            &[&password],
        )
        .await?;
    client
        .batch_execute(&format!(
            "DO $$ BEGIN EXECUTE format('ALTER ROLE %I PASSWORD %L', {}, \
             current_setting('fleet.password')); END $$",
            quote_literal(role)
        ))
        .await
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Step 1 of the split, as the bootstrap superuser: creates [`ADMIN_ROLE`] with
/// `admin_password`, superuser for the length of step 2 (renaming the bootstrap superuser
/// needs another superuser's session). Safe to repeat.
pub async fn create_admin(
    superuser: &mut Client,
    admin_password: &str,
) -> Result<(), tokio_postgres::Error> {
    let tx = superuser.transaction().await?;
    tx.batch_execute(&format!(
        "DO $$ BEGIN
             IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {admin_literal}) THEN
                 CREATE ROLE {admin};
             END IF;
         END $$;
         ALTER ROLE {admin} WITH LOGIN SUPERUSER;",
        admin = quote_ident(ADMIN_ROLE),
        admin_literal = quote_literal(ADMIN_ROLE),
    ))
    .await?;
    set_password(&tx, ADMIN_ROLE, admin_password).await?;
    tx.commit().await
}

/// Step 2 of the split, as [`ADMIN_ROLE`] (still superuser) on `database`, in one
/// transaction: the bootstrap superuser becomes [`SUPERUSER_ROLE`] without a password, a new
/// `app_role` with `app_password` gets LOGIN only, `database` and every table in it go to
/// [`ADMIN_ROLE`], which then drops its superuser attribute (keeping CREATEDB only).
pub async fn split_superuser(
    admin: &mut Client,
    app_role: &str,
    app_password: &str,
    database: &str,
) -> Result<(), tokio_postgres::Error> {
    let tx = admin.transaction().await?;
    let app = quote_ident(app_role);
    let superuser = quote_ident(SUPERUSER_ROLE);
    let owner = quote_ident(ADMIN_ROLE);
    tx.batch_execute(&format!(
        "ALTER ROLE {app} RENAME TO {superuser};
         ALTER ROLE {superuser} PASSWORD NULL;
         CREATE ROLE {app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
         ALTER DATABASE {db} OWNER TO {owner};
         DO $$
         DECLARE
             r record;
         BEGIN
             FOR r IN SELECT c.oid, c.relkind FROM pg_class c
                       WHERE c.relnamespace = 'public'::regnamespace
                         AND c.relowner = {superuser_literal}::regrole
                         AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
             LOOP
                 -- A sequence that belongs to a column follows its table.
                 CONTINUE WHEN r.relkind = 'S' AND EXISTS (
                     SELECT FROM pg_depend
                      WHERE classid = 'pg_class'::regclass AND objid = r.oid
                        AND deptype IN ('a', 'i'));
                 EXECUTE format('ALTER TABLE %s OWNER TO {owner}', r.oid::regclass);
             END LOOP;
         END
         $$;",
        db = quote_ident(database),
        superuser_literal = quote_literal(SUPERUSER_ROLE),
    ))
    .await?;
    set_password(&tx, app_role, app_password).await?;
    tx.batch_execute(&format!(
        "ALTER ROLE {owner} NOSUPERUSER CREATEDB NOCREATEROLE"
    ))
    .await?;
    tx.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("fleet"), "\"fleet\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
