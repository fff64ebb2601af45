//! A fixed block of queue memory with loom bookkeeping: under `cfg(loom)`
//! every 8-byte granule has a shadow cell, so loom reports a write that races
//! a read of the same bytes (the same device the SPSC ring uses).

use crate::region::{HeapRegion, Region};

/// Zeroed, 128-byte-aligned memory that queue records are written into.
pub(crate) struct Arena {
    region: HeapRegion,
    #[cfg(loom)]
    shadow: Box<[crate::sync::UnsafeCell<()>]>,
}

// SAFETY: the shadow cells hold no data; loom's `UnsafeCell` is not `Sync`
// only because it tracks accesses, and sharing it across loom threads is
// exactly what lets it report races. Without loom, `Arena` is `Sync` anyway.
#[cfg(loom)]
unsafe impl Sync for Arena {}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("len", &self.region.len())
            .finish_non_exhaustive()
    }
}

impl Arena {
    /// `len` zeroed bytes, or `None` when they cannot be allocated.
    pub(crate) fn try_new(len: usize) -> Option<Self> {
        Some(Self {
            region: HeapRegion::try_new(len).ok()?,
            #[cfg(loom)]
            shadow: (0..len.div_ceil(8))
                .map(|_| crate::sync::UnsafeCell::new(()))
                .collect(),
        })
    }

    /// Pointer to byte `offset` (at most the length: one past the end is ok).
    #[inline]
    pub(crate) fn ptr(&self, offset: usize) -> *mut u8 {
        assert!(offset <= self.region.len());
        // SAFETY: offset <= len, so the result is in bounds or one past the end.
        unsafe { self.region.as_ptr().add(offset) }
    }

    /// Writes one 8-aligned header word at `offset`.
    ///
    /// # Safety
    ///
    /// `offset` is 8-aligned, `offset + 8 <= len`, and the caller owns those
    /// bytes (nobody else reads or writes them concurrently).
    #[inline]
    pub(crate) unsafe fn write_word(&self, offset: usize, word: u64) {
        debug_assert!(offset % 8 == 0 && offset + 8 <= self.region.len());
        self.track_write(offset, 8);
        // SAFETY: in bounds and aligned (region is 128-aligned, offset
        // 8-aligned); exclusive by the caller's promise.
        unsafe { self.ptr(offset).cast::<u64>().write(word) }
    }

    /// Tells loom that `len` bytes at `offset` are written (no-op otherwise).
    #[inline]
    pub(crate) fn track_write(&self, offset: usize, len: usize) {
        #[cfg(loom)]
        for g in (offset / 8)..(offset + len).div_ceil(8) {
            self.shadow[g].with_mut(|_| ());
        }
        #[cfg(not(loom))]
        let _ = (offset, len);
    }
}
