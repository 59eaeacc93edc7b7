//! Errors of the registry and of the live configuration.

/// A live-configuration key, value or document that is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum LiveConfigError {
    /// A key that the live configuration does not have.
    #[error("unknown live-config key `{key}` (known: {})", crate::live::KEYS.join(", "))]
    UnknownKey {
        /// The key.
        key: String,
    },
    /// A value that does not parse or is out of range.
    #[error("live-config key `{key}`: value `{value}` {reason}")]
    BadValue {
        /// The key.
        key: String,
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `fleet config set` argument without `=`.
    #[error("`{text}` is not KEY=VALUE")]
    NotAnAssignment {
        /// The argument.
        text: String,
    },
    /// A stored document that does not deserialize.
    #[error("live-config document, at `{key}`: {reason}")]
    Document {
        /// Where in the document (`.` for the top).
        key: String,
        /// What serde said.
        reason: String,
    },
}

/// A registry operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// A stack, role or member name that cannot be a node name.
    #[error("{what} `{name}` {reason}")]
    BadName {
        /// Which name.
        what: &'static str,
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No session with ZooKeeper could be established in time.
    #[error("connecting to ZooKeeper at {connect}: {reason}")]
    Connect {
        /// The connect string.
        connect: String,
        /// What went wrong.
        reason: String,
    },
    /// A ZooKeeper operation failed.
    #[error("ZooKeeper {operation} {path}: {source}")]
    Zookeeper {
        /// What was done.
        operation: &'static str,
        /// On which node.
        path: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
    /// Registry credentials that do not parse.
    #[error("ZooKeeper credentials in {origin} {reason}")]
    Credentials {
        /// Where they came from (a file).
        origin: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A credentials file that cannot be read.
    #[error("read ZooKeeper credentials file {path}: {source}")]
    CredentialsFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A stored live configuration that is not accepted.
    #[error("the live configuration at {path}: {source}")]
    LiveConfig {
        /// Its node.
        path: String,
        /// Why.
        #[source]
        source: LiveConfigError,
    },
}

impl RegistryError {
    /// A closure that wraps a client error of `operation` on `path`.
    pub(crate) fn zk(
        operation: &'static str,
        path: &str,
    ) -> impl FnOnce(zookeeper_client::Error) -> Self + use<> {
        let path = path.to_owned();
        move |source| Self::Zookeeper {
            operation,
            path,
            source,
        }
    }
}
