//! The old client's `application/x-www-form-urlencoded` bodies.
#![no_main]

use ingest::decode::BodyFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| fleet_fuzz::decode_and_check(BodyFormat::LegacyForm, body));
