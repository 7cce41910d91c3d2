#![no_main]
//! See `rlm::fuzzing::provider_response` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rlm::fuzzing::provider_response(data));
