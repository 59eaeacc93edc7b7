//! The part of `ingest` that turns request bytes into checked events, as a library so that the
//! fuzz targets (`fuzz/`) can drive it without the HTTP server: [`encoding`] (gzip with a cap on
//! the inflated size) and [`decode`] (the body formats, the cap on records per request and the
//! shared event validation). The `ingest` binary uses these modules as its own.
//! [`samples`] holds the sample events of the tests and the fuzz seeds.

pub mod decode;
pub mod encoding;
pub mod samples;
