#![no_main]
//! See `rlm::fuzzing::text_ops` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rlm::fuzzing::text_ops(data));
