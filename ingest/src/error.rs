//! Request-level errors and how they look on the wire: a status and `{"error": "..."}` (the
//! shared [`ErrorBody`]), the message clipped to [`MAX_MESSAGE_CHARS`] (it may quote the
//! request, e.g. a header).

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fleet_common::wire::ErrorBody;

use crate::decode::DecodeError;
use crate::encoding::EncodingError;

/// Longest error message an answer carries, characters; longer ones are clipped ([`clip`]).
pub const MAX_MESSAGE_CHARS: usize = 1_000;

/// `text`, or its first `max_chars` characters followed by how much was left out.
pub fn clip(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}... ({} more bytes)", &text[..end], text.len() - end),
    }
}

/// A request that cannot be served, with the status it maps to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable reason, returned as `{"error": ...}`.
    pub message: String,
    /// Headers the response carries besides the JSON content type (e.g. `WWW-Authenticate`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    /// The same error with one more response header.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }
}

impl From<DecodeError> for ApiError {
    fn from(e: DecodeError) -> Self {
        let status = match e {
            DecodeError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            DecodeError::Malformed { .. }
            | DecodeError::Shape(_)
            | DecodeError::MalformedForm { .. } => StatusCode::BAD_REQUEST,
            DecodeError::TooManyRecords { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        };
        Self::new(status, e.to_string())
    }
}

impl From<EncodingError> for ApiError {
    fn from(e: EncodingError) -> Self {
        let status = match e {
            EncodingError::Unsupported { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            EncodingError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            EncodingError::Corrupt { .. } => StatusCode::BAD_REQUEST,
        };
        Self::new(status, e.to_string())
    }
}

impl ApiError {
    /// A body that could not be read: 413 when it is over `limit` bytes, else the rejection's own
    /// status (400 for a broken upload).
    pub fn body_rejection(e: BytesRejection, limit: usize) -> Self {
        let status = e.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("request body is larger than {limit} bytes (INGEST_MAX_BODY_BYTES)")
        } else {
            e.body_text()
        };
        Self::new(status, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: clip(&self.message, MAX_MESSAGE_CHARS),
        };
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().extend(self.headers);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_at_a_character() {
        assert_eq!(clip("short", 5), "short");
        assert_eq!(clip("ääää", 2), "ää... (4 more bytes)");
    }

    #[tokio::test]
    async fn long_messages_are_clipped_on_the_wire() {
        let response = ApiError::new(StatusCode::BAD_REQUEST, "x".repeat(100_000)).into_response();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let message = json["error"].as_str().unwrap();
        assert!(
            message.starts_with(&"x".repeat(MAX_MESSAGE_CHARS)),
            "{message}"
        );
        assert!(message.ends_with("... (99000 more bytes)"), "{message}");
    }
}
