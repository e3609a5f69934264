//! The exporter's one call outside safe Rust: glibc's allocator setting that keeps a
//! long-running exporter's memory at what it holds.
//!
//! glibc serves large blocks (128 KiB and up) with `mmap` and returns them to the system
//! when they are freed, but each time such a block is freed it raises that threshold to
//! the block's size (up to 32 MiB). After one collection of 100,000 listeners, the next
//! collection's tables of several MiB then come from the heap, and freed heap memory is
//! kept by the process: its RSS grew by half over a few scrapes. Setting the threshold
//! once turns that adjustment off.

/// Fixes glibc's mmap threshold at its default (128 KiB), so large blocks always go
/// back to the system when freed. Does nothing on other C libraries.
pub fn keep_large_blocks_returnable() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes an allocator parameter; it takes two integers and
        // may be called at any time, from any thread.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024) };
        let _ = ok; // 0 on failure, which leaves the allocator as it was
    }
}
