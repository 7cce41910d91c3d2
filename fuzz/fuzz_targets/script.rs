#![no_main]
//! See `rlm::fuzzing::script` for what this target checks.

// As in the `rlm` binary: sessions count what they hold.
#[global_allocator]
static ALLOCATOR: rlm::alloc::Counting = rlm::alloc::Counting::system();

libfuzzer_sys::fuzz_target!(|data: &[u8]| rlm::fuzzing::script(data));
