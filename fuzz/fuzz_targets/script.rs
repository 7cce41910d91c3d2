#![no_main]
//! See `rlm::fuzzing::script` for what this target checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| rlm::fuzzing::script(data));
