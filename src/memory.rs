//! Memory: the allocator's tuning, and handing freed memory back to the system after a large
//! pass.
//!
//! The binary allocates with mimalloc (`src/main.rs`). Left as it comes, mimalloc returns
//! freed pages to the system only when the thread that freed them next allocates, and commits
//! its arenas eagerly, so a server that read the whole store at start (the alert scan's first
//! reading) and then sat idle kept 63 MB resident on a 2,000-client store; tuned, 33 – 36 MB
//! (`scripts/bench-portal`). SQLite, which is C, allocates with glibc's `malloc`; glibc keeps
//! what is freed in its arenas until `malloc_trim` asks for it. Neither has a safe binding, so
//! these are the crate's `unsafe` calls, with one more in `cli` (SIGPIPE's default restored).

use std::os::raw::c_int;

/// mimalloc's `mi_option_arena_eager_commit` and `mi_option_purge_delay`: their places in
/// `mi_option_e` in the C header of the pinned `libmimalloc-sys` (0.1.49, mimalloc v3,
/// `c_src/mimalloc/v3/include/mimalloc.h`), which names neither. Check them when the pin moves.
const ARENA_EAGER_COMMIT: c_int = 4;
const PURGE_DELAY: c_int = 15;

/// Sets mimalloc to give freed pages back as soon as they are empty (a purge delay of 0 instead
/// of 1 s that only passes while the thread allocates) and to commit arena memory as it is
/// used. Called first thing in `main`; harmless where mimalloc is not the allocator (tests).
pub fn tune() {
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` takes two integers and no pointers; mimalloc options may be set
    // at any time, and this runs before any other thread starts.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
    }
}

/// Asks glibc's allocator to return the memory it holds free (what SQLite freed) to the system.
/// Call it after a pass, not inside one: glibc locks each arena in turn while it trims (a few
/// milliseconds). Elsewhere than glibc on Linux it does nothing.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` takes no pointers and touches only glibc's own free lists, which it
    // locks while it works; it may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
