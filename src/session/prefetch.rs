//! Asks the CPU to bring memory into its cache ahead of use. The thread's listener sends a tick
//! to thousands of sessions in a row, each a system call apart; every session's state is cold
//! by its turn, and each step from one of its parts to the next (slot, outbox, socket) is a
//! cache miss the CPU waits out. Asking for the next sessions' parts before the current one's
//! system call overlaps those misses with it (`interest::Interest::dispatch`).
//!
//! By hand because the standard library's prefetch is not stable; the one `unsafe` in the crate
//! calls the x86-64 instruction, which is a hint: it reads nothing the program sees and never
//! faults, whatever the address. Elsewhere it does nothing.

/// Fetches the `bytes` bytes at `p` (every cache line they touch) into the cache.
#[inline(always)]
pub fn prefetch<T: ?Sized>(p: *const T, bytes: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        const LINE: usize = 64;
        // From the start of the line `p` is in to the last line of the `bytes`.
        let misalign = p.cast::<u8>().addr() % LINE;
        let first = p.cast::<u8>().wrapping_sub(misalign);
        let mut offset = 0;
        while offset < misalign + bytes {
            // SAFETY: a prefetch is a hint; it does not access memory as far as the program is
            // concerned and does not fault, so any address is sound (`wrapping_add` keeps the
            // pointer arithmetic defined too).
            unsafe { _mm_prefetch::<_MM_HINT_T0>(first.wrapping_add(offset).cast::<i8>()) };
            offset += LINE;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, bytes);
}
