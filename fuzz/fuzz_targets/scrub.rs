#![no_main]
//! See `rlm::fuzzing::scrub` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rlm::fuzzing::scrub(data));
