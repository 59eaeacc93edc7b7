//! `Content-Encoding: gzip` bodies: the first byte picks the format (JSON, NDJSON, form), the
//! rest is the gzip stream, inflated under a 64 KiB cap and then decoded.
#![no_main]

use ingest::decode::BodyFormat;
use ingest::encoding::{ContentEncoding, EncodingError};
use libfuzzer_sys::fuzz_target;

/// The inflated-size cap of this target.
const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, compressed)) = data.split_first() else {
        return;
    };
    let format = match selector % 3 {
        0 => BodyFormat::Json,
        1 => BodyFormat::Ndjson,
        _ => BodyFormat::LegacyForm,
    };
    match ContentEncoding::Gzip.decode(bytes::Bytes::copy_from_slice(compressed), LIMIT) {
        Ok(body) => {
            assert!(body.len() <= LIMIT, "inflated to {} bytes", body.len());
            fleet_fuzz::decode_and_check(format, &body);
        }
        Err(EncodingError::TooLarge { limit }) => assert_eq!(limit, LIMIT),
        Err(_) => {}
    }
});
