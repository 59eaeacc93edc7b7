//! `application/x-ndjson` bodies: one event per line.
#![no_main]

use ingest::decode::BodyFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| fleet_fuzz::decode_and_check(BodyFormat::Ndjson, body));
