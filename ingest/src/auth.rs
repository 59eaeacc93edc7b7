//! Optional per-vehicle bearer tokens (`INGEST_TOKENS_FILE`): a file of `VIN TOKEN` lines, one
//! vehicle's token per line, and `dashboard TOKEN` lines for the people watching. When it is
//! set, `POST /events` needs `Authorization: Bearer TOKEN` of a vehicle (else 401, 403 for a
//! dashboard token), and every record of the request must be of the vehicle the token belongs
//! to (else 403). The dashboard (`GET /events`, `GET /events/stream`) then needs a dashboard
//! token (else 401, 403 for a vehicle's token: a vehicle must not see the others), as
//! `Authorization: Bearer TOKEN` or, for a browser, the RFC 6750 query parameter
//! `access_token=TOKEN`, unless `INGEST_DASHBOARD_REQUIRES_TOKEN` is `false`.
//!
//! The file: blank lines and lines starting with `#` are skipped; other lines hold a VIN (17
//! upper-case letters or digits) or the word [`DASHBOARD`], and a token (at least
//! [`MIN_TOKEN_LEN`] characters of the RFC 6750 token alphabet: letters, digits and `-._~+/`,
//! then optional `=` padding), separated by white space. A vehicle may have several tokens (to
//! rotate them); a token belongs to one holder only. Tokens are kept as SHA-256 digests, so
//! looking one up does not reveal through its timing how much of a guess was right.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use fleet_common::Vin;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Shortest token accepted in the file.
pub const MIN_TOKEN_LEN: usize = 16;

/// The `WWW-Authenticate` challenge of a 401.
pub const CHALLENGE: &str = r#"Bearer realm="fleet-ingest""#;

/// The first field of a dashboard token's line.
pub const DASHBOARD: &str = "dashboard";

/// The query parameter that may carry a dashboard token (RFC 6750 section 2.3), for a browser's
/// page and its `EventSource`, which cannot send headers.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// Whom a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    /// A vehicle: it may send its own records.
    Vehicle(Vin),
    /// Someone watching the dashboard.
    Viewer,
}

/// Why the tokens file cannot be used; names the file and, for a bad line, the line.
#[derive(Debug, thiserror::Error)]
pub enum TokensFileError {
    /// The file could not be read.
    #[error("reading the tokens file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not a `VIN TOKEN` pair, or repeats a token.
    #[error("tokens file `{path}` line {line}: {reason}")]
    Line {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The file holds no tokens, so no vehicle could send anything.
    #[error("tokens file `{path}` holds no `VIN TOKEN` lines")]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The tokens of every vehicle and dashboard viewer, by digest.
#[derive(Debug, Clone)]
pub struct Tokens {
    by_digest: HashMap<[u8; 32], Holder>,
}

impl Tokens {
    /// Reads and checks the tokens file at `path`.
    pub fn load(path: &Path) -> Result<Self, TokensFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses the contents `text` of the file `path` (named in errors).
    pub fn parse(path: &Path, text: &str) -> Result<Self, TokensFileError> {
        let mut by_digest = HashMap::new();
        let mut first_line = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let number = index + 1;
            let bad = |reason: String| TokensFileError::Line {
                path: path.to_owned(),
                line: number,
                reason,
            };
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [holder, token] = fields[..] else {
                return Err(bad(format!(
                    "expected `VIN TOKEN` or `{DASHBOARD} TOKEN` (2 fields), found {} fields",
                    fields.len()
                )));
            };
            let holder = if holder == DASHBOARD {
                Holder::Viewer
            } else {
                Holder::Vehicle(
                    Vin::parse_legacy(holder).map_err(|e| bad(format!("VIN `{holder}`: {e}")))?,
                )
            };
            let whose = match &holder {
                Holder::Vehicle(vin) => vin.to_string(),
                Holder::Viewer => DASHBOARD.to_owned(),
            };
            check_token(token).map_err(|e| bad(format!("token of {whose}: {e}")))?;
            let digest = digest(token);
            if let Some(first) = first_line.insert(digest, number) {
                return Err(bad(format!(
                    "the token of {whose} is already given on line {first}"
                )));
            }
            by_digest.insert(digest, holder);
        }
        if !by_digest.values().any(|h| matches!(h, Holder::Vehicle(_))) {
            return Err(TokensFileError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Self { by_digest })
    }

    /// How many vehicles have at least one token.
    pub fn vehicles(&self) -> usize {
        let mut vins: Vec<&Vin> = self
            .by_digest
            .values()
            .filter_map(|h| match h {
                Holder::Vehicle(vin) => Some(vin),
                Holder::Viewer => None,
            })
            .collect();
        vins.sort();
        vins.dedup();
        vins.len()
    }

    /// How many dashboard tokens there are.
    pub fn viewers(&self) -> usize {
        self.by_digest
            .values()
            .filter(|h| **h == Holder::Viewer)
            .count()
    }

    /// The vehicle whose bearer token `headers` carry; 401 with the challenge without a valid
    /// token, 403 for a dashboard token.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<&Vin, ApiError> {
        match self.holder(bearer(headers)?)? {
            Holder::Vehicle(vin) => Ok(vin),
            Holder::Viewer => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a dashboard token cannot send events; use the vehicle's own token",
            )),
        }
    }

    /// Checks that `headers`, or else the `access_token` parameter of `query`, carry a
    /// dashboard token; 401 with the challenge without a valid token, 403 for a vehicle's.
    pub fn authenticate_viewer(
        &self,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(), ApiError> {
        let from_query = query.and_then(|q| {
            form_urlencoded::parse(q.as_bytes())
                .find(|(name, _)| name == ACCESS_TOKEN_PARAM)
                .map(|(_, token)| token.into_owned())
        });
        let token = match (&from_query, headers.contains_key(header::AUTHORIZATION)) {
            (Some(token), false) => token.as_str(),
            _ => bearer(headers)?,
        };
        match self.holder(token)? {
            Holder::Viewer => Ok(()),
            Holder::Vehicle(vin) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "the token is of vehicle {vin}; the dashboard shows every vehicle and needs a `{DASHBOARD}` token"
                ),
            )),
        }
    }

    fn holder(&self, token: &str) -> Result<&Holder, ApiError> {
        self.by_digest
            .get(&digest(token))
            .ok_or_else(|| unauthorized("the bearer token is not valid"))
    }
}

/// The token of `headers`' `Authorization: Bearer TOKEN`, or 401 with the challenge.
fn bearer(headers: &HeaderMap) -> Result<&str, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized("missing Authorization: Bearer token"));
    };
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or_else(|| unauthorized("the Authorization header is not `Bearer TOKEN`"))
}

/// Checks that every valid record belongs to `vin`; 403 naming the first that does not.
pub fn authorize<'a>(
    vin: &Vin,
    record_vins: impl IntoIterator<Item = (usize, &'a Vin)>,
) -> Result<(), ApiError> {
    match record_vins.into_iter().find(|(_, other)| *other != vin) {
        None => Ok(()),
        Some((index, other)) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "record {index} is of vehicle {other}, but the bearer token is of vehicle {vin}"
            ),
        )),
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, message).with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(CHALLENGE),
    )
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A token of the RFC 6750 `b64token` alphabet, at least [`MIN_TOKEN_LEN`] long.
fn check_token(token: &str) -> Result<(), String> {
    let body = token.trim_end_matches('=');
    if let Some(ch) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "-._~+/".contains(*c)))
    {
        return Err(format!(
            "character {ch:?} is not allowed (letters, digits, `-._~+/`, trailing `=`)"
        ));
    }
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "{} characters, at least {MIN_TOKEN_LEN} are needed",
            token.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Tokens, TokensFileError> {
        Tokens::parse(Path::new("/etc/fleet/tokens"), text)
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    #[test]
    fn a_good_file_maps_tokens_to_vehicles() {
        let a = Vin::from_serial("YV1", 1);
        let b = Vin::from_serial("YV1", 2);
        let text = format!(
            "# vehicles\n\n{a} token-of-a-0123456789\n{a}   rotated.token_of+a/==\n  {b}\ttoken-of-b-0123456789  \n"
        );
        let tokens = parse(&text).unwrap();
        assert_eq!(tokens.vehicles(), 2);
        assert_eq!(
            tokens
                .authenticate(&bearer("token-of-a-0123456789"))
                .unwrap(),
            &a
        );
        assert_eq!(
            tokens
                .authenticate(&bearer("rotated.token_of+a/=="))
                .unwrap(),
            &a
        );
        assert_eq!(
            tokens
                .authenticate(&bearer("token-of-b-0123456789"))
                .unwrap(),
            &b
        );
        let mut lower = HeaderMap::new();
        lower.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer token-of-b-0123456789"),
        );
        assert_eq!(tokens.authenticate(&lower).unwrap(), &b);
    }

    #[test]
    fn bad_tokens_are_401_with_the_challenge() {
        let vin = Vin::from_serial("YV1", 1);
        let tokens = parse(&format!("{vin} token-of-a-0123456789\n")).unwrap();
        let mut basic = HeaderMap::new();
        basic.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        for headers in [HeaderMap::new(), bearer("token-of-a-012345678"), basic] {
            let err = tokens.authenticate(&headers).unwrap_err();
            assert_eq!(err.status, StatusCode::UNAUTHORIZED, "{headers:?}");
            let response = axum::response::IntoResponse::into_response(err);
            assert_eq!(response.headers()[header::WWW_AUTHENTICATE], CHALLENGE);
        }
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let vin = Vin::from_serial("YV1", 1);
        for (text, line, part) in [
            (format!("# c\n{vin}\n"), 2, "found 1 fields"),
            (format!("{vin} a b\n"), 1, "found 3 fields"),
            (
                "SHORTVIN token-0123456789abcdef\n".to_owned(),
                1,
                "VIN `SHORTVIN`: must be 17",
            ),
            (format!("\n\n{vin} short\n"), 3, "at least 16"),
            (format!("{vin} bad\"token0123456789\n"), 1, "character '\"'"),
            (
                format!(
                    "{vin} token-0123456789abcdef\n{} token-0123456789abcdef\n",
                    Vin::from_serial("YV1", 2)
                ),
                2,
                "already given on line 1",
            ),
        ] {
            let err = parse(&text).unwrap_err().to_string();
            let prefix = format!("tokens file `/etc/fleet/tokens` line {line}: ");
            assert!(err.starts_with(&prefix), "{err}");
            assert!(err.contains(part), "{err}");
        }
        let err = parse("# nothing\n").unwrap_err().to_string();
        assert_eq!(
            err,
            "tokens file `/etc/fleet/tokens` holds no `VIN TOKEN` lines"
        );
        let err = Tokens::load(Path::new("/nonexistent/tokens"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("reading the tokens file `/nonexistent/tokens`: "),
            "{err}"
        );
    }
}
