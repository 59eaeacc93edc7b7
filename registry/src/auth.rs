//! Who may write the registry: ZooKeeper digest authentication. Every stack has one digest
//! identity (user `fleet`, a password generated per stack and handed to each member as a file);
//! `fleet` and every member authenticate as it, and every node they create carries the ACL
//! "this identity: all; anyone: read". Everybody else (any process on the host that reaches the
//! published port) can read the registry, and do nothing else.

use std::path::Path;
use std::time::Duration;

use zookeeper_client::{Acl, Acls, Client, Connector, Permission};

use crate::error::RegistryError;

/// The user name of a stack's digest identity.
pub const DIGEST_USER: &str = "fleet";

/// The ACL of a protected node: the creator's authenticated identity may do everything, anyone
/// may read.
static PROTECTED: [Acl; 2] = [
    Acl::new_const(Permission::ALL, "auth", ""),
    Acl::new_const(Permission::READ, "world", "anyone"),
];

/// A digest identity (`user:password`). Its `Debug` never shows the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The stack's identity: [`DIGEST_USER`] with `password`.
    pub fn fleet(password: &str) -> Self {
        Self {
            user: DIGEST_USER.to_owned(),
            password: password.to_owned(),
        }
    }

    /// Parses `user:password` (surrounding white space ignored); `origin` names the source in
    /// errors.
    pub fn parse(origin: &str, text: &str) -> Result<Self, RegistryError> {
        let bad = |reason: &'static str| RegistryError::Credentials {
            origin: origin.to_owned(),
            reason,
        };
        let (user, password) = text
            .trim()
            .split_once(':')
            .ok_or(bad("is not user:password"))?;
        if user.is_empty() || password.is_empty() {
            return Err(bad("has an empty user or password"));
        }
        Ok(Self {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// Reads `user:password` from the file at `path`.
    pub fn from_file(path: &Path) -> Result<Self, RegistryError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| RegistryError::CredentialsFile {
            path: origin.clone(),
            source: e,
        })?;
        Self::parse(&origin, &text)
    }

    /// The `user:password` form: what ZooKeeper's digest scheme takes, and a credentials file
    /// holds.
    pub fn to_bytes(&self) -> Vec<u8> {
        format!("{}:{}", self.user, self.password).into_bytes()
    }
}

/// The ACL of the nodes a session creates: protected when it authenticates, open otherwise
/// (a registry without credentials, as in a service run by hand).
pub(crate) fn acls(credentials: Option<&Credentials>) -> Acls<'static> {
    match credentials {
        Some(_) => Acls::new(&PROTECTED),
        None => Acls::anyone_all(),
    }
}

/// A connector with `session_timeout` that authenticates with `credentials`, if any.
pub(crate) fn connector(session_timeout: Duration, credentials: Option<&Credentials>) -> Connector {
    let connector = Client::connector().with_session_timeout(session_timeout);
    match credentials {
        Some(c) => connector.with_auth("digest", &c.to_bytes()),
        None => connector,
    }
}

/// The protected ACL, for `setAcl`.
pub(crate) fn protected() -> &'static [Acl] {
    &PROTECTED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_parse_and_never_show_the_password() {
        let c = Credentials::parse("test", "fleet:s3cret\n").unwrap();
        assert_eq!(c, Credentials::fleet("s3cret"));
        assert_eq!(c.to_bytes(), b"fleet:s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
        for bad in ["", "nocolon", ":pw", "user:"] {
            let err = Credentials::parse("/run/secrets/zookeeper-auth", bad).unwrap_err();
            assert!(
                err.to_string().contains("/run/secrets/zookeeper-auth"),
                "{err}"
            );
        }
    }

    #[test]
    fn an_authenticated_session_protects_its_nodes() {
        let creds = Credentials::fleet("pw");
        let protected = acls(Some(&creds));
        assert_eq!(protected.len(), 2);
        let world = protected.iter().find(|a| a.scheme() == "world").unwrap();
        assert_eq!(world.permission(), Permission::READ);
        let creator = protected.iter().find(|a| a.scheme() == "auth").unwrap();
        assert_eq!(creator.permission(), Permission::ALL);
        assert_eq!(acls(None)[0].permission(), Permission::ALL);
    }
}
