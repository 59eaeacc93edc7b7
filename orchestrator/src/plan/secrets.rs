//! What the plan hands to containers as files, never as environment: the stack's [`Secrets`],
//! where each lands in a container, and [`Redacted`] for a secret the plan itself carries.

/// Where the PostgreSQL password is handed to containers.
pub const PASSWORD_PATH: &str = "/run/secrets/postgres-password";
/// Where ingest finds its bearer tokens, when they are configured.
pub const TOKENS_PATH: &str = "/run/secrets/ingest-tokens";
/// The directory of secret files in a container (a volume of its own on a read-only root).
pub(super) const SECRETS_DIR: &str = "/run/secrets";
/// uid of the `fleet` user of the runtime image.
pub(super) const RUNTIME_UID: u64 = 10001;
/// uid of the `postgres` user of the postgres image.
pub(super) const POSTGRES_UID: u64 = 999;
/// Mode of every secret file: readable by its owner only.
pub(super) const SECRET_MODE: u32 = 0o400;

/// A secret inside the plan (e.g. a probe's password): `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// What is handed to containers as files, never as environment.
#[derive(Debug, Clone, Default)]
pub struct Secrets {
    /// The stack's PostgreSQL password (the application role's).
    pub postgres_password: String,
    /// The password of `fleet_admin`, the schema's owner: used by fleet's schema step only,
    /// never handed to a container.
    pub postgres_admin_password: String,
    /// The password of the broker's PostgreSQL storage.
    pub broker_storage_password: String,
    /// The content of `ingest.tokens_file`, when set.
    pub ingest_tokens: Option<Vec<u8>>,
}
