//! Handing freed memory back to the system after a large pass.
//!
//! glibc's allocator keeps what the program frees in its arenas for reuse, and gives pages back
//! only from the top of each heap. After a pass that reads the whole store (the alert scan's
//! first reading, a digest pass over every contact) has freed its rows, a server that then sits
//! idle would keep that peak resident: 48 MB instead of 35 MB on a 2,000-client store
//! (`scripts/bench-portal`). `malloc_trim` returns the free pages of every arena. There is no
//! safe binding of it, so this is the crate's one `unsafe` call.

/// Asks the allocator to return the memory it holds free to the system. Call it after a pass,
/// not inside one: glibc locks each arena in turn while it trims (a few milliseconds).
/// Elsewhere than glibc on Linux it does nothing: those allocators have no such call.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` takes no pointers and touches only glibc's own free lists, which it
    // locks while it works; it may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
