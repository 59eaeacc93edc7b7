//! `application/json` arrays: the input is the inside of `[...]`, so the fuzzer works on the
//! elements and the cap on records.
#![no_main]

use ingest::decode::BodyFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|elements: &[u8]| {
    let mut body = Vec::with_capacity(elements.len() + 2);
    body.push(b'[');
    body.extend_from_slice(elements);
    body.push(b']');
    fleet_fuzz::decode_and_check(BodyFormat::Json, &body);
});
