//! `application/json` bodies as sent: one event object (or anything else).
#![no_main]

use ingest::decode::BodyFormat;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| fleet_fuzz::decode_and_check(BodyFormat::Json, body));
