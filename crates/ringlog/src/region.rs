//! Layer 2: the memory a ring lives in.
//!
//! A ring is written once over the [`Region`] trait, so the in-process rings
//! (a [`HeapRegion`]) and the cross-process rings (a shared mapping) are the
//! same code.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Alignment every region guarantees: two cache lines on x86_64, so that the
/// control block's hot indices never share a line (adjacent-line prefetch).
pub const REGION_ALIGN: usize = 128;

/// A fixed block of memory that stays at one address for its whole life.
///
/// # Safety
///
/// Implementors promise that `as_ptr()` is non-null, aligned to
/// [`REGION_ALIGN`], valid for reads and writes of `len()` bytes for as long as
/// the region lives, that every byte of it is initialised (zeroed when new),
/// and that both values never change.
pub unsafe trait Region: Send + Sync {
    /// The first byte.
    fn as_ptr(&self) -> *mut u8;
    /// The size in bytes.
    fn len(&self) -> usize;
    /// Whether the region has no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A zeroed, [`REGION_ALIGN`]-aligned heap allocation.
#[derive(Debug)]
pub struct HeapRegion {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the region is plain bytes; all concurrent access is coordinated by
// the rings built on it, which is the contract of `Region`.
unsafe impl Send for HeapRegion {}
// SAFETY: as above.
unsafe impl Sync for HeapRegion {}

impl HeapRegion {
    /// Allocates `len` zeroed bytes (at least one).
    ///
    /// # Panics
    ///
    /// On allocation failure (like `Vec`), or if `len` overflows `isize`.
    pub fn new(len: usize) -> Self {
        let layout = Self::layout(len);
        // SAFETY: the layout has a non-zero size (`max(1)`).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        Self { ptr, len }
    }

    /// Allocates `len` zeroed bytes (at least one), or `None` when the
    /// allocator refuses or `len` overflows `isize`: for sizes that come
    /// from a user, where aborting the process is not an answer.
    pub fn try_new(len: usize) -> Option<Self> {
        let layout = Layout::from_size_align(len.max(1), REGION_ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size (`max(1)`).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        NonNull::new(raw).map(|ptr| Self { ptr, len })
    }

    fn layout(len: usize) -> Layout {
        Layout::from_size_align(len.max(1), REGION_ALIGN).expect("region size overflows isize")
    }
}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with exactly this layout.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), Self::layout(self.len)) }
    }
}

// SAFETY: `alloc_zeroed` gives a live, zeroed block of `len` bytes aligned to
// REGION_ALIGN, owned until `drop`; `ptr` and `len` never change.
unsafe impl Region for HeapRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn heap_region_is_aligned_and_zeroed() {
        let r = HeapRegion::new(1000);
        assert_eq!(r.as_ptr() as usize % REGION_ALIGN, 0);
        assert_eq!(r.len(), 1000);
        // SAFETY: the region is valid for `len` initialised bytes.
        let bytes = unsafe { std::slice::from_raw_parts(r.as_ptr(), r.len()) };
        assert!(bytes.iter().all(|&b| b == 0));
    }
}
