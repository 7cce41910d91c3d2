//! The `rlm` binary: the allocator and the entry point. The command line
//! itself lives in `cli/`.

use std::process::ExitCode;

mod cli;

/// Every block is charged to the script session that allocated it, so a
/// session's memory limit covers all it holds (`rlm::alloc`).
///
/// musl's own allocator takes a global lock and falls far behind under
/// rayon's parallel scans; the static (musl) build counts over mimalloc.
#[cfg(all(target_env = "musl", not(feature = "system-allocator")))]
#[global_allocator]
static ALLOCATOR: rlm::alloc::Counting<mimalloc::MiMalloc> =
    rlm::alloc::Counting::new(mimalloc::MiMalloc);

#[cfg(not(all(target_env = "musl", not(feature = "system-allocator"))))]
#[global_allocator]
static ALLOCATOR: rlm::alloc::Counting = rlm::alloc::Counting::system();

/// mimalloc asks for transparent huge pages, and on a host whose THP defrag
/// is `madvise` the kernel then compacts memory in the allocating thread:
/// measured (benches/allocators.sh), a first run after idle took up to 2x
/// as long, in system time. Plain pages cost ~15% on allocation-heavy
/// scripts instead, every time; a predictable command is worth more.
#[cfg(all(target_env = "musl", not(feature = "system-allocator")))]
fn avoid_huge_page_stalls() {
    // SAFETY: PR_SET_THP_DISABLE only sets a flag on this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    #[cfg(all(target_env = "musl", not(feature = "system-allocator")))]
    avoid_huge_page_stalls();
    cli::main()
}
