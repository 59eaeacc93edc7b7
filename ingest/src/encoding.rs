//! `Content-Encoding` of request bodies: identity or gzip. A gzip body is inflated with a cap on
//! the inflated size, so a small compressed body cannot expand past the body limit.

use std::io::Read;

use axum::body::Bytes;
use flate2::read::MultiGzDecoder;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodingError {
    /// A content coding other than gzip or identity (HTTP 415).
    #[error("unsupported Content-Encoding `{found}`: send gzip or identity")]
    Unsupported {
        /// The header as received.
        found: String,
    },
    /// The inflated body is larger than the body limit (HTTP 413).
    #[error(
        "request body inflates to more than {limit} bytes (INGEST_MAX_BODY_BYTES) after gzip decoding"
    )]
    TooLarge {
        /// The limit, bytes.
        limit: usize,
    },
    /// The body is not valid gzip (HTTP 400).
    #[error("inflating the gzip request body failed: {reason}")]
    Corrupt {
        /// What the decoder reported.
        reason: String,
    },
}

/// The content codings ingest reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentEncoding {
    /// No coding (no header, or `identity`).
    Identity,
    /// `gzip` (or its old alias `x-gzip`).
    Gzip,
}

impl ContentEncoding {
    /// The coding named by a `Content-Encoding` header value (case-insensitive).
    pub fn from_header(header: Option<&str>) -> Result<Self, EncodingError> {
        let Some(value) = header else {
            return Ok(Self::Identity);
        };
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "identity" => Ok(Self::Identity),
            "gzip" | "x-gzip" => Ok(Self::Gzip),
            _ => Err(EncodingError::Unsupported {
                found: value.to_owned(),
            }),
        }
    }

    /// `body` decoded; refused once the decoded size passes `limit` bytes.
    pub fn decode(self, body: Bytes, limit: usize) -> Result<Bytes, EncodingError> {
        match self {
            Self::Identity => Ok(body),
            Self::Gzip => gunzip(&body, limit).map(Bytes::from),
        }
    }
}

/// Inflates every gzip member of `body`, reading at most `limit + 1` bytes to tell "exactly at
/// the limit" from "over it" without inflating the rest.
fn gunzip(body: &[u8], limit: usize) -> Result<Vec<u8>, EncodingError> {
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let mut inflated = Vec::new();
    MultiGzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut inflated)
        .map_err(|e| EncodingError::Corrupt {
            reason: e.to_string(),
        })?;
    if inflated.len() > limit {
        return Err(EncodingError::TooLarge { limit });
    }
    Ok(inflated)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::GzEncoder;

    use super::*;

    fn gzip(data: &[u8]) -> Bytes {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap().into()
    }

    #[test]
    fn headers() {
        for (header, coding) in [
            (None, ContentEncoding::Identity),
            (Some("identity"), ContentEncoding::Identity),
            (Some("gzip"), ContentEncoding::Gzip),
            (Some(" GZip "), ContentEncoding::Gzip),
            (Some("x-gzip"), ContentEncoding::Gzip),
        ] {
            assert_eq!(
                ContentEncoding::from_header(header),
                Ok(coding),
                "{header:?}"
            );
        }
        for header in ["br", "deflate", "gzip, gzip"] {
            assert!(
                matches!(
                    ContentEncoding::from_header(Some(header)),
                    Err(EncodingError::Unsupported { .. })
                ),
                "{header}"
            );
        }
    }

    #[test]
    fn the_cap_is_inclusive() {
        let data = vec![b'a'; 1000];
        let coding = ContentEncoding::Gzip;
        assert_eq!(coding.decode(gzip(&data), 1000).unwrap(), data);
        assert_eq!(
            coding.decode(gzip(&data), 999),
            Err(EncodingError::TooLarge { limit: 999 })
        );
    }

    #[test]
    fn concatenated_members_are_read() {
        let mut body = gzip(b"[1,").to_vec();
        body.extend_from_slice(&gzip(b"2]"));
        let decoded = ContentEncoding::Gzip.decode(body.into(), 100).unwrap();
        assert_eq!(&decoded[..], b"[1,2]");
    }

    #[test]
    fn corrupt_gzip_is_named() {
        let err = ContentEncoding::Gzip
            .decode(Bytes::from_static(b"not gzip at all"), 100)
            .unwrap_err();
        assert!(matches!(err, EncodingError::Corrupt { .. }), "{err:?}");
        let mut truncated = gzip(b"some text that is long enough").to_vec();
        truncated.truncate(truncated.len() - 6);
        let err = ContentEncoding::Gzip
            .decode(truncated.into(), 100)
            .unwrap_err();
        assert!(matches!(err, EncodingError::Corrupt { .. }), "{err:?}");
    }
}
