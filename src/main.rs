//! The `cport` command line: everything is in the library's `cli` module.
#![forbid(unsafe_code)]

/// mimalloc, tuned by `memory::tune`: on a scan of every client's items it is about a tenth
/// faster than glibc's allocator (`scripts/bench-items`; docs/src/figures.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cport::memory::tune();
    cport::cli::main()
}
